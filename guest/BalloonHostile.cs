using Hypervisor.Trap;

namespace Guest
{
    // Balloon tests that do not follow the rules:
    //   hostile:  every kind of bad request the device must survive;
    //   cycles:   1000 inflate/deflate rounds of random sizes on touched pages;
    //   follow:   follows the host's target (set from the monitor) both ways.
    public static unsafe class BalloonHostile
    {
        private const ulong QueueSel = 0x030, QueueNum = 0x038, QueueReady = 0x044, QueueNotify = 0x050;
        private const int Inflate = 0, Deflate = 1;

        public static void Hostile()
        {
            PagePool.Init();
            if (!VirtioBalloonDriver.Probe(Program.Fdt.VirtioBase)) { SelfTests.Verdict("balloon-hostile", false); Console.Line("no device"); return; }
            uint* pfns = stackalloc uint[4];
            PagePool.TryTake(out uint p);
            PagePool.TryTake(out uint q);
            ulong ramEndPfn = (Program.Fdt.MemoryBase + Program.Fdt.MemorySize) >> 12;

            // Page numbers that are not this VM's, twice the same, twice in a row,
            // and a deflate of a page never inflated.
            pfns[0] = 0; pfns[1] = 0xffffffff; pfns[2] = (uint)ramEndPfn;
            VirtioBalloonDriver.InflatePfns(pfns, 3);
            pfns[0] = p; pfns[1] = p;
            VirtioBalloonDriver.InflatePfns(pfns, 2);
            VirtioBalloonDriver.InflatePfns(pfns, 1);
            pfns[0] = q;
            VirtioBalloonDriver.DeflatePfns(pfns, 1);

            // Descriptors pointing outside RAM, at the queue's own rings, at
            // MMIO, running past the end of memory, a loop, and a buffer the
            // device is asked to write on a queue it only reads.
            var d = stackalloc VirtioBalloonDriver.RawDescriptor[2];
            Raw(d, 0x20000000, 16, 0, 0);
            Raw(d, VirtioBalloonDriver.QueuePage(Inflate), 64, 0, 0);
            Raw(d, 0x09000000, 16, 0, 0);
            Raw(d, Program.Fdt.MemoryBase + Program.Fdt.MemorySize - 8, 0xfffffff0, 0, 0);
            Raw(d, VirtioBalloonDriver.PfnPage, 4, 1, 0);                  // NEXT to itself: a loop
            Raw(d, VirtioBalloonDriver.PfnPage, 4, 2, 0);                  // device-writable on inflate
            Raw(d, Program.Fdt.MemoryBase + (8UL << 20), 65536, 0, 0);     // 16384 page numbers: more than one request may carry
            Raw(d, VirtioBalloonDriver.PfnPage, 6, 0, 0);                  // not a whole number of page numbers

            // A live queue set up a second time: refused while it is ready.
            VirtioBalloonDriver.WriteRegister(QueueSel, Inflate);
            VirtioBalloonDriver.WriteRegister(QueueNum, 8);
            bool liveKept = VirtioBalloonDriver.ReadRegister(QueueNum) == 16;

            // A queue set up badly: size 3 (not a power of two) cannot be made
            // ready; set up properly again it works.
            VirtioBalloonDriver.WriteRegister(QueueSel, Deflate);
            VirtioBalloonDriver.WriteRegister(QueueReady, 0);
            VirtioBalloonDriver.WriteRegister(QueueNum, 3);
            VirtioBalloonDriver.WriteRegister(QueueReady, 1);
            bool refused = VirtioBalloonDriver.ReadRegister(QueueReady) == 0;
            VirtioBalloonDriver.WriteRegister(QueueNum, 16);
            VirtioBalloonDriver.WriteRegister(QueueReady, 1);
            bool repaired = VirtioBalloonDriver.ReadRegister(QueueReady) == 1;
            VirtioBalloonDriver.WriteRegister(QueueNotify, 7);              // no such queue

            // The device still works: p was ballooned above; give it back, then
            // a fresh page out and in again.
            pfns[0] = p;
            VirtioBalloonDriver.DeflatePfns(pfns, 1);
            pfns[0] = q;
            VirtioBalloonDriver.InflatePfns(pfns, 1);
            // q's neighbour p is touched now for the first time: with
            // fault_around its whole window gets frames, but never q.
            *(ulong*)((ulong)p << 12) = 5;
            Traps.Expect();
            Cpu.Load64((ulong)q << 12);
            bool qGone = Traps.Taken == 1;
            Traps.Armed = false;
            VirtioBalloonDriver.DeflatePfns(pfns, 1);
            *(ulong*)((ulong)q << 12) = 7;                                  // usable again
            bool qBack = *(ulong*)((ulong)q << 12) == 7;
            bool neighboursKept = OnePageLeavesItsNeighboursMapped(out bool split);
            bool bigGone = BigRequestLeavesNothingCached();
            SelfTests.Verdict("balloon-hostile", liveKept && refused && repaired && qGone && qBack && bigGone && neighboursKept);
            Console.Write(refused ? "bad_queue=refused" : "bad_queue=ACCEPTED");
            Console.Write(qGone ? " inflated_page=gone" : " inflated_page=STILL-MAPPED");
            Console.Write(neighboursKept ? " neighbours=kept" : " neighbours=LOST");
            Console.Write(split ? " block=split" : "");
            Console.Write(bigGone ? " big_request=gone" : " big_request=STILL-CACHED");
            Console.Line(qBack ? " deflated_page=back" : " deflated_page=MISSING");
        }

        // One page given away between two the guest keeps: it aborts, and its
        // neighbours keep their contents without a single new stage-2 fault
        // (they stayed mapped). The three sit in the middle of a 2 MiB region
        // the tests above left alone: with backing=blocks that is one stage-2
        // block, which the device splits (one block fewer).
        private static bool OnePageLeavesItsNeighboursMapped(out bool split)
        {
            split = false;
            const int Look = 1536;
            uint* taken = stackalloc uint[Look];
            int n = PagePool.TakeMany(taken, Look);
            int at = -1;
            for (int i = 768; i + 1 < n && at < 0; i++)
                if (taken[i] % 512 == 256 && taken[i - 1] == taken[i] - 1 && taken[i + 1] == taken[i] + 1) at = i;
            if (at < 0) { PagePool.GiveMany(taken, n); return false; }
            uint* pfns = stackalloc uint[3];
            for (int k = 0; k < 3; k++) pfns[k] = taken[at - 1 + k];
            for (int k = at + 2; k < n; k++) taken[k - 3] = taken[k];   // the rest goes back
            PagePool.GiveMany(taken, n - 3);
            ulong before = (ulong)pfns[0] << 12, page = (ulong)pfns[1] << 12, after = (ulong)pfns[2] << 12;
            *(ulong*)before = 0x1111;
            *(ulong*)page = 0x2222;
            *(ulong*)after = 0x3333;
            ulong blocks = Hvc.Counter(HypercallAbi.Counter.Stage2Blocks);
            ulong faults = Hvc.Counter(HypercallAbi.Counter.Stage2Faults);
            if (!VirtioBalloonDriver.InflatePfns(pfns + 1, 1)) return false;
            bool gone = Aborts(pfns[1]);
            bool kept = *(ulong*)before == 0x1111 && *(ulong*)after == 0x3333;
            bool noFault = Hvc.Counter(HypercallAbi.Counter.Stage2Faults) == faults;
            ulong blocksNow = Hvc.Counter(HypercallAbi.Counter.Stage2Blocks);
            split = blocks > 1 && blocksNow == blocks - 1;
            return gone && kept && noFault && (blocks <= 1 || split);
        }

        // One request of 1024 pages, every one of them just touched, so the
        // TLB holds their translations. Past the per-page limit
        // (kernel/Mm/TlbBatchRule.cs) only the request's final VMID-wide
        // TLBI removes them: without it the last pages would still be
        // reachable. The first and the last page must both abort.
        private static bool BigRequestLeavesNothingCached()
        {
            const int N = 1024;
            uint* pfns = stackalloc uint[N];
            int n = PagePool.TakeMany(pfns, N);
            if (n != N) return false;
            for (int i = 0; i < N; i++) *(ulong*)((ulong)pfns[i] << 12) = (ulong)i;
            ulong sum = 0;
            for (int i = N - 64; i < N; i++) sum += *(ulong*)((ulong)pfns[i] << 12);   // the last ones: surely cached
            if (!VirtioBalloonDriver.InflatePfns(pfns, N)) return false;
            bool gone = Aborts(pfns[N - 1]) && Aborts(pfns[N / 2 + 1]) && Aborts(pfns[0]);
            return gone && sum != 0;
        }

        private static bool Aborts(uint pfn)
        {
            Traps.Expect();
            Cpu.Load64((ulong)pfn << 12);
            bool taken = Traps.Taken == 1;
            Traps.Armed = false;
            return taken;
        }

        private static void Raw(VirtioBalloonDriver.RawDescriptor* d, ulong addr, uint length, ushort flags, ushort next)
        {
            d[0].Addr = addr; d[0].Length = length; d[0].Flags = flags; d[0].Next = next;
            VirtioBalloonDriver.RawRequest(Inflate, d, 1);
        }

        // Random reads and writes all over the UART and the virtio window:
        // any offset, any value, aligned or not. Each either completes or
        // comes back as an abort the guest catches; afterwards the balloon
        // device still works from a fresh reset.
        public static void MmioFuzz()
        {
            PagePool.Init();
            ulong state = 0x2545f4914f6cdd1d, aborts = 0, done = 0;
            const int Accesses = 4000;
            for (int i = 0; i < Accesses; i++)
            {
                IsolationTests.Next(ref state);
                bool virtio = (state & 1) != 0;
                ulong offset = (state >> 8) % (virtio ? 0x200UL : 0x1000UL);
                ulong address = (virtio ? Program.Fdt.VirtioBase : Console.UartBase) + offset;
                // Never write the UART data register: that would print noise.
                if (!virtio && offset < 4) continue;
                Traps.Expect();
                if ((state & 2) != 0) Hypervisor.Arch.Mmio.Write32(address, (uint)(state >> 32));
                else Cpu.Load32(address);
                if (Traps.Taken != 0) aborts++;
                done++;
            }
            Traps.Armed = false;
            bool works = VirtioBalloonDriver.Probe(Program.Fdt.VirtioBase);
            uint* pfns = stackalloc uint[1];
            bool moved = false;
            if (works && PagePool.TryTake(out pfns[0]))
            {
                *(ulong*)((ulong)pfns[0] << 12) = 1;
                moved = VirtioBalloonDriver.InflatePfns(pfns, 1) && VirtioBalloonDriver.DeflatePfns(pfns, 1);
            }
            SelfTests.Verdict("mmiofuzz", works && moved);
            Console.Write("accesses=");
            Console.Dec(done);
            Console.Write(" aborts=");
            Console.Dec(aborts);
            Console.Line(works ? " device=works" : " device=BROKEN");
        }

        // role=gicfuzz: first the trapped SGI register, exactly: an SGI to
        // this vCPU becomes pending in its redistributor, SGIs routed to
        // anyone else (another Aff1, Aff2 or Aff3, range selector 1, IRM =
        // "all but me", an empty list) do not. Then random 8- and 32-bit reads
        // and writes all over the virtual GIC's distributor and redistributor
        // (enables, pendings, priorities, routing, reserved space), and random
        // values into all three SGI registers. Each completes or aborts; the
        // guest, which never unmasks IRQs, carries on and prints its verdict.
        public static void GicFuzz()
        {
            ulong pending = Mmu.GicGva + 0xa0000 + 0x10000 + 0x200;     // GICR_ISPENDR0 (SGI_base frame)
            ulong clearPending = pending + 0x80;                         // GICR_ICPENDR0
            Hypervisor.Arch.Mmio.Write32(clearPending, 0xffff);
            Cpu.WriteSgi1r(3UL << 24 | 1);                               // INTID 3 to target list {0}: this vCPU
            Cpu.WriteSgi1r(4UL << 24 | 1UL << 16 | 1);                   // Aff1 = 1
            Cpu.WriteSgi1r(5UL << 24 | 1UL << 40 | 1);                   // IRM = 1
            Cpu.WriteSgi1r(6UL << 24 | 1UL << 44 | 1);                   // RS = 1
            Cpu.WriteSgi1r(7UL << 24 | 1UL << 32 | 1);                   // Aff2 = 1
            Cpu.WriteSgi1r(8UL << 24 | 1UL << 48 | 1);                   // Aff3 = 1
            Cpu.WriteSgi1r(9UL << 24 | 2);                               // target list {1}
            Cpu.WriteSgi0r(10UL << 24 | 1);                              // group 0, to this vCPU
            uint sgis = Hypervisor.Arch.Mmio.Read32(pending) & 0xffff;
            bool selfOnly = sgis == (1u << 3 | 1u << 10);
            Hypervisor.Arch.Mmio.Write32(clearPending, 0xffff);

            ulong state = 0x853c49e6748fea9b, aborts = 0, done = 0;
            const int Accesses = 6000;
            for (int i = 0; i < Accesses; i++)
            {
                IsolationTests.Next(ref state);
                bool redistributor = (state & 1) != 0;
                ulong offset = (state >> 8) % (redistributor ? 0x20000UL : 0x10000UL);
                ulong address = Mmu.GicGva + (redistributor ? 0xa0000UL : 0) + offset;
                Traps.Expect();
                if ((state & 6) == 2) Hypervisor.Arch.Mmio.Write32(address & ~3UL, (uint)(state >> 32));
                else if ((state & 6) == 4) Hypervisor.Arch.Mmio.Write8(address, (byte)(state >> 40));
                else Hypervisor.Arch.Mmio.Read32(address & ~3UL);
                if (Traps.Taken != 0) aborts++;
                done++;
            }
            Traps.Armed = false;
            const int SgiWrites = 3000;
            for (int i = 0; i < SgiWrites; i++)
            {
                IsolationTests.Next(ref state);
                if (i % 3 == 0) Cpu.WriteSgi1r(state);
                else if (i % 3 == 1) Cpu.WriteAsgi1r(state);
                else Cpu.WriteSgi0r(state);
            }
            // Still a working VM: hypercalls and the UART answer.
            bool alive = (long)Hvc.Call(HypercallAbi.Null).X0 == 0;
            SelfTests.Verdict("gicfuzz", alive && selfOnly);
            Console.Write("accesses=");
            Console.Dec(done);
            Console.Write(" aborts=");
            Console.Dec(aborts);
            Console.Write(" sgi_writes=");
            Console.Dec(SgiWrites);
            Console.Write(selfOnly ? " sgi_routing=self-only" : " sgi_routing=WRONG pending=");
            if (!selfOnly) Console.Hex(sgis);
            Console.Put('\n');
        }

        // 1000 rounds: touch n random-count pages, inflate them (their frames go
        // back to the host), deflate them, touch them again (fresh frames).
        public static void Cycles()
        {
            PagePool.Init();
            if (!VirtioBalloonDriver.Probe(Program.Fdt.VirtioBase)) { SelfTests.Verdict("balloon-cycles", false); Console.Line("no device"); return; }
            uint* pfns = stackalloc uint[256];
            ulong state = 0x9e3779b97f4a7c15, moved = 0;
            bool ok = true;
            const int Rounds = 1000;
            for (int round = 0; round < Rounds; round++)
            {
                IsolationTests.Next(ref state);
                int n = 1 + (int)(state % 256);
                for (int i = 0; i < n; i++)
                {
                    if (!PagePool.TryTake(out pfns[i])) { ok = false; n = i; break; }
                    *(ulong*)((ulong)pfns[i] << 12) = (ulong)round;
                }
                VirtioBalloonDriver.InflatePfns(pfns, n);
                VirtioBalloonDriver.DeflatePfns(pfns, n);
                for (int i = 0; i < n; i++)
                {
                    ulong* page = (ulong*)((ulong)pfns[i] << 12);
                    if (*page != 0) ok = false;                  // a deflated page comes back zeroed
                    PagePool.Give(pfns[i]);
                }
                moved += (ulong)n;
            }
            SelfTests.Verdict("balloon-cycles", ok);
            Console.Write("rounds=");
            Console.Dec(Rounds);
            Console.Write(" pages_moved=");
            Console.Dec(moved);
            Console.Put('\n');
        }

        // Follows the target: waits for a non-zero one (typed in the monitor),
        // meets it, then waits for it to go back to zero and meets that too.
        public static void Follow()
        {
            PagePool.Init();
            if (!VirtioBalloonDriver.Probe(Program.Fdt.VirtioBase)) { SelfTests.Verdict("balloon-follow", false); Console.Line("no device"); return; }
            Console.Line("balloon: driver ok, following the target");
            while (VirtioBalloonDriver.TargetPages == 0) Cpu.Yield();
            while ((uint)VirtioBalloonDriver.BalloonedPages != VirtioBalloonDriver.TargetPages)
            {
                VirtioBalloonDriver.FollowTarget();
                Cpu.Yield();
            }
            SelfTests.Verdict("balloon-follow", VirtioBalloonDriver.ActualPages == VirtioBalloonDriver.TargetPages);
            Console.Write("pages=");
            Console.Dec((ulong)VirtioBalloonDriver.BalloonedPages);
            Console.Put('\n');
            while (VirtioBalloonDriver.TargetPages != 0) { VirtioBalloonDriver.FollowTarget(); Cpu.Yield(); }
            VirtioBalloonDriver.FollowTarget();
            SelfTests.Verdict("balloon-follow-back", VirtioBalloonDriver.BalloonedPages == 0);
            Console.Line("pages=0");
        }
    }
}
