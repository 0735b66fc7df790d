using Hypervisor.Arch;

namespace Guest
{
    // A virtio balloon driver over virtio-mmio (virtio 1.x, register layout
    // version 2), written the way a kernel driver is: probe, negotiate
    // features, set up the inflate, deflate and stats queues, then follow the
    // device's target (config num_pages) by handing pages to the host
    // (inflate) or taking them back (deflate).
    //
    // There is no virtual interrupt controller yet, so the driver polls: the
    // hypervisor completes a request during the notify write itself, and the
    // target is re-read between yields.
    public static unsafe class VirtioBalloonDriver
    {
        // virtio-mmio registers.
        private const ulong MagicValue = 0x000, Version = 0x004, DeviceId = 0x008;
        private const ulong DeviceFeatures = 0x010, DeviceFeaturesSel = 0x014;
        private const ulong DriverFeatures = 0x020, DriverFeaturesSel = 0x024;
        private const ulong QueueSel = 0x030, QueueNumMax = 0x034, QueueNum = 0x038, QueueReady = 0x044;
        private const ulong QueueNotify = 0x050, Status = 0x070;
        private const ulong QueueDescLow = 0x080, QueueDescHigh = 0x084, QueueDriverLow = 0x090, QueueDriverHigh = 0x094;
        private const ulong QueueDeviceLow = 0x0a0, QueueDeviceHigh = 0x0a4, Config = 0x100;

        private const uint StatusAcknowledge = 1, StatusDriver = 2, StatusDriverOk = 4, StatusFeaturesOk = 8;
        private const ulong FeatureStatsVq = 1UL << 1, FeatureDeflateOnOom = 1UL << 2, FeatureVersion1 = 1UL << 32;
        private const int InflateQueue = 0, DeflateQueue = 1, StatsQueue = 2;
        private const int QueueSize = 16;
        private const int PfnsPerRequest = 1024;             // one request (one page of PFNs) moves up to 4 MiB
        private const ushort DescWrite = 2;

        private static ulong s_base;
        private static ulong s_features;
        private static readonly ulong[] s_queuePage = new ulong[3];
        private static readonly ushort[] s_availIdx = new ushort[3];
        private static ulong s_pfnPage;
        private static ulong s_statsPage;
        private static uint[] s_ballooned;
        private static int s_balloonedCount;

        public static int BalloonedPages => s_balloonedCount;
        public static uint BalloonedAt(int i) => s_ballooned[i];

        public static bool Probe(ulong baseAddress)
        {
            s_base = baseAddress;
            if (Reg(MagicValue) != 0x74726976 || Reg(Version) != 2 || Reg(DeviceId) != 5) return false;
            SetReg(Status, 0);                                   // reset
            SetReg(Status, StatusAcknowledge);
            SetReg(Status, StatusAcknowledge | StatusDriver);
            SetReg(DeviceFeaturesSel, 0);
            ulong offered = Reg(DeviceFeatures);
            SetReg(DeviceFeaturesSel, 1);
            offered |= (ulong)Reg(DeviceFeatures) << 32;
            if ((offered & FeatureVersion1) == 0) return false;
            s_features = offered & (FeatureVersion1 | FeatureStatsVq | FeatureDeflateOnOom);
            SetReg(DriverFeaturesSel, 0);
            SetReg(DriverFeatures, (uint)s_features);
            SetReg(DriverFeaturesSel, 1);
            SetReg(DriverFeatures, (uint)(s_features >> 32));
            SetReg(Status, StatusAcknowledge | StatusDriver | StatusFeaturesOk);
            if ((Reg(Status) & StatusFeaturesOk) == 0) return false;

            s_ballooned = new uint[PagePool.TotalPages];
            if (!PagePool.TryTake(out uint pfn)) return false;
            s_pfnPage = (ulong)pfn << 12;
            if (!SetUpQueue(InflateQueue) || !SetUpQueue(DeflateQueue)) return false;
            if ((s_features & FeatureStatsVq) != 0 && !SetUpQueue(StatsQueue)) return false;
            SetReg(Status, StatusAcknowledge | StatusDriver | StatusFeaturesOk | StatusDriverOk);
            if ((s_features & FeatureStatsVq) != 0) SendStats();
            return true;
        }

        public static bool HasStats => (s_features & FeatureStatsVq) != 0;

        // What the host wants in the balloon, in pages (config num_pages).
        public static uint TargetPages => Reg(Config + 0);
        public static uint ActualPages => Reg(Config + 4);

        // Inflates or deflates until `actual` matches the target; returns the change.
        public static int FollowTarget()
        {
            uint target = TargetPages;
            int moved = 0;
            while ((uint)s_balloonedCount < target)
            {
                int n = Inflate((int)(target - (uint)s_balloonedCount));
                if (n == 0) break;
                moved += n;
            }
            while ((uint)s_balloonedCount > target)
            {
                int n = Deflate((int)((uint)s_balloonedCount - target));
                if (n == 0) break;
                moved -= n;
            }
            if (HasStats) RefillStatsIfTaken();
            return moved;
        }

        // Up to PfnsPerRequest pages from the guest's pool to the host. The
        // page numbers go straight into the list of ballooned pages, and that
        // part of the list is the request buffer (the heap is identity-mapped,
        // so its address is a guest-physical one).
        private static int Inflate(int wanted)
        {
            int n;
            fixed (uint* list = s_ballooned)
            {
                uint* slot = list + s_balloonedCount;
                n = PagePool.TakeMany(slot, wanted < PfnsPerRequest ? wanted : PfnsPerRequest);
                if (n == 0) return 0;
                Submit(InflateQueue, (ulong)slot, (uint)(n * 4), false);
                s_balloonedCount += n;
            }
            SetReg(Config + 4, (uint)s_balloonedCount);        // actual
            return n;
        }

        // Up to PfnsPerRequest pages back from the host into the pool: the last
        // ones in the list, sent from the list itself.
        private static int Deflate(int wanted)
        {
            int n = wanted < PfnsPerRequest ? wanted : PfnsPerRequest;
            if (n > s_balloonedCount) n = s_balloonedCount;
            if (n == 0) return 0;
            fixed (uint* list = s_ballooned)
            {
                uint* slot = list + s_balloonedCount - n;
                Submit(DeflateQueue, (ulong)slot, (uint)(n * 4), false);
                PagePool.GiveMany(slot, n);
            }
            s_balloonedCount -= n;
            SetReg(Config + 4, (uint)s_balloonedCount);
            return n;
        }

        // The stats queue holds one buffer the device keeps until it wants
        // fresh numbers; when it hands it back, the driver refills it.
        private static ushort s_statsUsedSeen;

        private static void SendStats()
        {
            byte* b = (byte*)s_statsPage;
            PutStat(b, 0, 4, (ulong)PagePool.FreePages * 4096);          // VIRTIO_BALLOON_S_MEMFREE
            PutStat(b, 1, 5, Program.Fdt.MemorySize);                     // VIRTIO_BALLOON_S_MEMTOT
            PutStat(b, 2, 6, (ulong)PagePool.FreePages * 4096);          // VIRTIO_BALLOON_S_AVAIL
            AddBuffer(StatsQueue, s_statsPage, 3 * 10, false);
            SetReg(QueueNotify, StatsQueue);
        }

        private static void RefillStatsIfTaken()
        {
            ushort used = *(ushort*)(s_queuePage[StatsQueue] + UsedOffset + 2);
            if (used == s_statsUsedSeen) return;
            s_statsUsedSeen = used;
            SendStats();
        }

        private static void PutStat(byte* b, int index, ushort tag, ulong value)
        {
            byte* e = b + index * 10;
            *(ushort*)e = tag;
            for (int i = 0; i < 8; i++) e[2 + i] = (byte)(value >> (8 * i));
        }

        // Queue memory: one page per queue, descriptor table at 0, available
        // ring at 512, used ring at 1024 (alignments 16, 2, 4 are met).
        private const ulong AvailOffset = 512, UsedOffset = 1024;

        private static bool SetUpQueue(int index)
        {
            if (!PagePool.TryTake(out uint pfn)) return false;
            ulong page = (ulong)pfn << 12;
            for (int i = 0; i < 512; i++) ((ulong*)page)[i] = 0;
            s_queuePage[index] = page;
            if (index == StatsQueue)
            {
                if (!PagePool.TryTake(out uint stats)) return false;
                s_statsPage = (ulong)stats << 12;
            }
            SetReg(QueueSel, (uint)index);
            uint max = Reg(QueueNumMax);
            if (max < QueueSize) return false;
            SetReg(QueueNum, QueueSize);
            SetReg(QueueDescLow, (uint)page);
            SetReg(QueueDescHigh, (uint)(page >> 32));
            SetReg(QueueDriverLow, (uint)(page + AvailOffset));
            SetReg(QueueDriverHigh, (uint)((page + AvailOffset) >> 32));
            SetReg(QueueDeviceLow, (uint)(page + UsedOffset));
            SetReg(QueueDeviceHigh, (uint)((page + UsedOffset) >> 32));
            SetReg(QueueReady, 1);
            return Reg(QueueReady) == 1;
        }

        // One buffer, one descriptor (slot = the ring position), then notify
        // and wait until the device has used it.
        private static void Submit(int queue, ulong gpa, uint length, bool deviceWrites)
        {
            ulong page = s_queuePage[queue];
            ushort usedBefore = *(ushort*)(page + UsedOffset + 2);
            AddBuffer(queue, gpa, length, deviceWrites);
            SetReg(QueueNotify, (uint)queue);
            // The call between reads makes the compiler load the index afresh each time.
            while (*(ushort*)(page + UsedOffset + 2) == usedBefore) Cpu.Yield();
        }

        private static void AddBuffer(int queue, ulong gpa, uint length, bool deviceWrites)
        {
            ulong page = s_queuePage[queue];
            ushort idx = s_availIdx[queue];
            int slot = idx % QueueSize;
            byte* desc = (byte*)(page + (ulong)slot * 16);
            *(ulong*)desc = gpa;
            *(uint*)(desc + 8) = length;
            *(ushort*)(desc + 12) = deviceWrites ? DescWrite : (ushort)0;
            *(ushort*)(desc + 14) = 0;
            *(ushort*)(page + AvailOffset + 4 + (ulong)slot * 2) = (ushort)slot;
            Cpu.Barrier();                                       // ring entry before the index
            s_availIdx[queue] = (ushort)(idx + 1);
            *(ushort*)(page + AvailOffset + 2) = (ushort)(idx + 1);
            Cpu.Barrier();
        }

        // Direct inflate/deflate of given page numbers (the cycle test drives
        // the device itself instead of following a target).
        public static bool InflatePfns(uint* pfns, int n) => Move(InflateQueue, pfns, n);
        public static bool DeflatePfns(uint* pfns, int n) => Move(DeflateQueue, pfns, n);

        private static bool Move(int queue, uint* pfns, int n)
        {
            if (n <= 0 || n > PfnsPerRequest) return false;
            uint* dst = (uint*)s_pfnPage;
            for (int i = 0; i < n; i++) dst[i] = pfns[i];
            Submit(queue, s_pfnPage, (uint)(n * 4), false);
            return true;
        }

        // For the hostile test: a request made of hand-written descriptors
        // (slot i gets raw[i]), head in slot 0; waits until the device has
        // answered it (the device uses even the malformed ones).
        public struct RawDescriptor { public ulong Addr; public uint Length; public ushort Flags, Next; }

        public static void RawRequest(int queue, RawDescriptor* raw, int count)
        {
            ulong page = s_queuePage[queue];
            for (int i = 0; i < count; i++)
            {
                byte* d = (byte*)(page + (ulong)i * 16);
                *(ulong*)d = raw[i].Addr;
                *(uint*)(d + 8) = raw[i].Length;
                *(ushort*)(d + 12) = raw[i].Flags;
                *(ushort*)(d + 14) = raw[i].Next;
            }
            ushort usedBefore = *(ushort*)(page + UsedOffset + 2);
            ushort idx = s_availIdx[queue];
            *(ushort*)(page + AvailOffset + 4 + (ulong)(idx % QueueSize) * 2) = 0;
            Cpu.Barrier();
            s_availIdx[queue] = (ushort)(idx + 1);
            *(ushort*)(page + AvailOffset + 2) = (ushort)(idx + 1);
            Cpu.Barrier();
            SetReg(QueueNotify, (uint)queue);
            for (int spin = 0; spin < 1000 && *(ushort*)(page + UsedOffset + 2) == usedBefore; spin++) Cpu.Yield();
        }

        public static ulong QueuePage(int queue) => s_queuePage[queue];
        public static ulong PfnPage => s_pfnPage;
        public static uint ReadRegister(ulong offset) => Reg(offset);
        public static void WriteRegister(ulong offset, uint value) => SetReg(offset, value);

        private static uint Reg(ulong offset) => Mmio.Read32(s_base + offset);
        private static void SetReg(ulong offset, uint value) => Mmio.Write32(s_base + offset, value);
    }
}
