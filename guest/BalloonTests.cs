using Hypervisor.Boot;
using Hypervisor.Trap;

namespace Guest
{
    // The seed lecture's demo, from inside the two VMs:
    //   giver: fills its memory, then follows the balloon target, handing pages
    //          (and so host frames) back; afterwards those pages are out of its
    //          allocator, and touching one faults;
    //   taker: starts with part of its memory in the balloon (boot_balloon),
    //          waits until the host lowers its target, deflates, and then uses
    //          every page it got back, which must read as zeros (scrubbed).
    public static unsafe class BalloonTests
    {
        private const ulong GiverPattern = 0x4749564552000000;   // "GIVER"

        private static bool Start()
        {
            PagePool.Init();
            return StartDriver();
        }

        internal static bool StartDriver()
        {
            if (Program.Fdt.VirtioBase == 0 || !VirtioBalloonDriver.Probe(Program.Fdt.VirtioBase))
            {
                SelfTests.Verdict("balloon-probe", false);
                Console.Line("no virtio balloon device");
                return false;
            }
            Console.Write("balloon: driver ok, stats=");
            Console.Write(VirtioBalloonDriver.HasStats ? "yes" : "no");
            Console.Write(" target_pages=");
            Console.Dec(VirtioBalloonDriver.TargetPages);
            Console.Put('\n');
            return true;
        }

        // bench=balloon: the instructions (PMU cycles under -icount) of the
        // driver loop that moves the pages, hypervisor work included.
        private static bool Benchmarking => BootArgs.Is(Program.Args, "bench", "balloon");

        public static void Giver(bool touchBallooned)
        {
            // Use all of its memory first, then bring the driver up: the host
            // sees a VM whose every page is backed by a frame.
            PagePool.Init();
            int pages = PagePool.FreePages;
            for (int i = 0; i < pages; i++)
            {
                ulong* p = (ulong*)((ulong)PagePool.At(i) << 12);
                for (int w = 0; w < 512; w += 64) p[w] = GiverPattern | (uint)i;
            }
            if (!StartDriver()) return;
            // Wait for a target, then give until it is met.
            int rounds = 0;
            while (VirtioBalloonDriver.TargetPages == 0 && rounds++ < 100000) Cpu.Yield();
            if (Benchmarking) Bench.EnableCycleCounter();
            ulong start = Cpu.ReadCycles();
            VirtioBalloonDriver.FollowTarget();
            ulong cycles = Cpu.ReadCycles() - start;
            while ((uint)VirtioBalloonDriver.BalloonedPages < VirtioBalloonDriver.TargetPages)
            {
                VirtioBalloonDriver.FollowTarget();
                Cpu.Yield();
            }
            int given = VirtioBalloonDriver.BalloonedPages;
            if (Benchmarking) PrintBench("inflate", cycles, given);
            // None of the given pages is in the allocator any more.
            bool outOfUse = true;
            for (int i = 0; i < PagePool.FreePages; i++)
                for (int j = 0; j < given; j += 97)
                    if (PagePool.At(i) == VirtioBalloonDriver.BalloonedAt(j)) outOfUse = false;
            bool faulted = true;
            if (touchBallooned)
            {
                Traps.Expect();
                ulong v = Cpu.Load64((ulong)VirtioBalloonDriver.BalloonedAt(0) << 12);
                faulted = Traps.Taken == 1 && ((Traps.LastEsr >> 26) & 0x3f) == 0x25;
                Traps.Armed = false;
            }
            SelfTests.Verdict("balloon-giver", given > 0 && outOfUse && faulted);
            Console.Write("given_pages=");
            Console.Dec((ulong)given);
            Console.Write(" given_mib=");
            Console.Dec((ulong)given >> 8);
            Console.Write(touchBallooned ? (faulted ? " touch=abort" : " touch=NO-ABORT") : "");
            Console.Put('\n');
            // Stay until the other VMs are done, answering target changes.
            while (Hvc.Call(HypercallAbi.RunningVms).X1 > 1)
            {
                VirtioBalloonDriver.FollowTarget();
                Cpu.Yield();
            }
        }

        private static void PrintBench(string what, ulong cycles, int pages)
        {
            Console.Write("STAT bench_balloon_");
            Console.Write(what);
            Console.Write("=");
            Console.Dec(cycles);
            Console.Write(" bench_balloon_");
            Console.Write(what);
            Console.Write("_pages=");
            Console.Dec((ulong)pages);
            Console.Put('\n');
        }

        public static void Taker()
        {
            if (!Start()) return;
            // At boot the target already holds boot_balloon: give those pages
            // without ever touching them.
            VirtioBalloonDriver.FollowTarget();
            int bootBallooned = VirtioBalloonDriver.BalloonedPages;
            int usableBefore = PagePool.FreePages;
            Console.Write("balloon: booted with ");
            Console.Dec((ulong)bootBallooned);
            Console.Line(" pages in the balloon");
            // Wait until the host lowers the target, then take the pages back.
            int rounds = 0;
            while (VirtioBalloonDriver.TargetPages >= (uint)bootBallooned && rounds++ < 1000000) Cpu.Yield();
            if (Benchmarking) Bench.EnableCycleCounter();
            int before = VirtioBalloonDriver.BalloonedPages;
            ulong start = Cpu.ReadCycles();
            VirtioBalloonDriver.FollowTarget();
            ulong cycles = Cpu.ReadCycles() - start;
            while ((uint)VirtioBalloonDriver.BalloonedPages > VirtioBalloonDriver.TargetPages)
            {
                VirtioBalloonDriver.FollowTarget();
                Cpu.Yield();
            }
            if (Benchmarking) PrintBench("deflate", cycles, before - VirtioBalloonDriver.BalloonedPages);
            int usableAfter = PagePool.FreePages;
            // Use every page: fresh frames must be zero, then hold what was written.
            ulong nonZero = 0, wrong = 0;
            for (int i = 0; i < usableAfter; i++)
            {
                ulong* p = (ulong*)((ulong)PagePool.At(i) << 12);
                for (int w = 0; w < 512; w++) if (p[w] != 0) nonZero++;
                for (int w = 0; w < 512; w += 64) p[w] = 0x54414b4552000000UL | (uint)i;   // "TAKER"
            }
            for (int i = 0; i < usableAfter; i++)
            {
                ulong* p = (ulong*)((ulong)PagePool.At(i) << 12);
                for (int w = 0; w < 512; w += 64) if (p[w] != (0x54414b4552000000UL | (uint)i)) wrong++;
            }
            int extra = usableAfter - usableBefore;
            SelfTests.Verdict("balloon-taker", extra > 0 && nonZero == 0 && wrong == 0);
            Console.Write("extra_pages=");
            Console.Dec((ulong)extra);
            Console.Write(" extra_mib=");
            Console.Dec((ulong)extra >> 8);
            Console.Write(" nonzero_words=");
            Console.Dec(nonZero);
            Console.Write(" readback_errors=");
            Console.Dec(wrong);
            Console.Put('\n');
        }
    }
}
