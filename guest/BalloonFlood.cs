namespace Guest
{
    // role=balloonflood: the largest notify a driver can make. The inflate
    // queue is set up with 256 entries; one chain of four descriptors names
    // the same page of 1024 page numbers four times (4096 in all, the most
    // one request may carry), and all 256 ring slots name that chain: one
    // notify asks for about a million page numbers to be read. Each round
    // checks that every slot came back (all used, none lost), then the next.
    public static unsafe class BalloonFlood
    {
        private const ulong QueueSel = 0x030, QueueNum = 0x038, QueueReady = 0x044, QueueNotify = 0x050;
        private const ulong QueueDescLow = 0x080, QueueDescHigh = 0x084, QueueDriverLow = 0x090, QueueDriverHigh = 0x094;
        private const ulong QueueDeviceLow = 0x0a0, QueueDeviceHigh = 0x0a4;
        private const int Size = 256, Inflate = 0;

        public static void Run(int rounds)
        {
            PagePool.Init();
            if (!VirtioBalloonDriver.Probe(Program.Fdt.VirtioBase)) { SelfTests.Verdict("balloon-flood", false); Console.Line("no device"); return; }
            PagePool.TryTake(out uint descPfn);
            PagePool.TryTake(out uint availPfn);
            PagePool.TryTake(out uint usedPfn);
            PagePool.TryTake(out uint listPfn);
            PagePool.TryTake(out uint victim);
            ulong desc = (ulong)descPfn << 12, avail = (ulong)availPfn << 12, used = (ulong)usedPfn << 12, list = (ulong)listPfn << 12;
            *(ulong*)((ulong)victim << 12) = 1;
            for (int i = 0; i < 1024; i++) ((uint*)list)[i] = victim;
            for (int i = 0; i < 4; i++)
            {
                byte* d = (byte*)(desc + (ulong)i * 16);
                *(ulong*)d = list;
                *(uint*)(d + 8) = 4096;
                *(ushort*)(d + 12) = (ushort)(i < 3 ? 1 : 0);          // NEXT
                *(ushort*)(d + 14) = (ushort)(i + 1);
            }
            VirtioBalloonDriver.WriteRegister(QueueSel, Inflate);
            VirtioBalloonDriver.WriteRegister(QueueReady, 0);
            VirtioBalloonDriver.WriteRegister(QueueNum, Size);
            SetAddress(QueueDescLow, QueueDescHigh, desc);
            SetAddress(QueueDriverLow, QueueDriverHigh, avail);
            SetAddress(QueueDeviceLow, QueueDeviceHigh, used);
            VirtioBalloonDriver.WriteRegister(QueueReady, 1);
            if (VirtioBalloonDriver.ReadRegister(QueueReady) != 1) { SelfTests.Verdict("balloon-flood", false); Console.Line("queue refused"); return; }
            Console.Line("flood: 256 slots x 4096 page numbers per notify");

            ushort idx = 0;
            bool allUsed = true;
            for (int round = 0; round < rounds; round++)
            {
                for (int k = 0; k < Size; k++) *(ushort*)(avail + 4 + (ulong)((idx + k) % Size) * 2) = 0;
                Cpu.Barrier();
                idx = (ushort)(idx + Size);
                *(ushort*)(avail + 2) = idx;
                Cpu.Barrier();
                VirtioBalloonDriver.WriteRegister(QueueNotify, Inflate);
                // The notify store completes once the device has used every slot.
                if (*(ushort*)(used + 2) != idx) allUsed = false;
            }
            SelfTests.Verdict("balloon-flood", allUsed);
            Console.Write("rounds=");
            Console.Dec((ulong)rounds);
            Console.Line(allUsed ? " all_slots_used=yes" : " all_slots_used=NO");
        }

        private static void SetAddress(ulong low, ulong high, ulong value)
        {
            VirtioBalloonDriver.WriteRegister(low, (uint)value);
            VirtioBalloonDriver.WriteRegister(high, (uint)(value >> 32));
        }
    }
}
