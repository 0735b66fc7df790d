using System;
using System.Runtime;
using System.Runtime.CompilerServices;
using Hypervisor.Arch;
using Hypervisor.Trap;

namespace Guest
{
    // role=smp: a VM with several vCPUs (vms.conf cpus=N), tested from the
    // inside. vCPU 0 checks PSCI's answers (an unknown MPIDR, a vCPU already
    // on, an entry point outside RAM), starts every other vCPU with CPU_ON,
    // then sends SGIs with every kind of target (a list, itself, all, IRM=1
    // "all but me", a range selector or Aff1 naming nobody, a vCPU that does
    // not exist), one INTID per kind, and has vCPU 1 send one too. Every vCPU
    // counts what it takes (ICC_IAR1_EL1); at the end each count must be
    // exactly what the architecture's routing rule says: a missing SGI or
    // one delivered to a vCPU it did not name fails. Then every secondary
    // turns itself off (CPU_OFF) and AFFINITY_INFO must say so.
    //
    // role=ipistorm: vCPU 0 sends SGIs to vCPU 1 as fast as it can, forever
    // (a hostile guest; other VMs must keep running).
    public static unsafe class SmpTests
    {
        [RuntimeImport("*", "read_secondary_start")][MethodImpl(MethodImplOptions.InternalCall)] private static extern ulong SecondaryStart();
        [RuntimeImport("*", "read_mpidr_el1")][MethodImpl(MethodImplOptions.InternalCall)] private static extern ulong ReadMpidr();
        [RuntimeImport("*", "read_mair_el1")][MethodImpl(MethodImplOptions.InternalCall)] private static extern ulong ReadMair();
        [RuntimeImport("*", "load_acquire64")][MethodImpl(MethodImplOptions.InternalCall)] private static extern ulong LoadAcquire(ulong* p);
        [RuntimeImport("*", "store_release64")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void StoreRelease(ulong* p, ulong v);

        // One block of 32 words per vCPU (the first five read by guest/boot/smp.s).
        private const int StackTop = 0, Mair = 1, Tcr = 2, Ttbr0 = 3, Sctlr = 4;
        private const int Alive = 5, SeenMpidr = 6, Quit = 7, SendSgi = 8, Counts = 16;   // Counts: INTIDs 0..15
        private const int BlockWords = 32, StackBytes = 16384;
        private const ulong GicrBase = Mmu.GicGva + 0xa0000, GicrStride = 0x20000, SgiFrame = 0x10000;

        private static ulong* s_blocks;
        private static bool s_benchmark;

        public static void Run()
        {
            int n = Program.Fdt.CpuCount;
            if (n < 2) { SelfTests.Verdict("smp", false); Console.Line("needs cpus=2 or more"); return; }
            bool ok = PsciRefusals(n);
            Prepare(n);
            EnableSgis(0);
            for (int v = 1; v < n; v++) ok &= Start(v);
            ok &= Ipis(n);
            // stay=on: leave them on, so the VM's power-off or reset finds
            // vCPUs in other CPUs (or waiting) to bring out first.
            Hypervisor.Boot.BootArgs.Get(Program.Args, "stay", out bool stay);
            for (int v = 1; v < n && !stay; v++) { StoreRelease(&s_blocks[v * BlockWords + Quit], 1); Wake(v); }
            for (int v = 1; v < n && !stay; v++) ok &= WaitOff(v);
            SelfTests.Verdict("smp", ok);
            Console.Write("vcpus=");
            Console.Dec((ulong)n);
            Console.Put('\n');
        }

        public static void Storm()
        {
            Prepare(2);
            EnableSgis(0);
            Start(1);
            Console.Line("sending SGIs to vCPU 1 forever");
            while (true) Cpu.WriteSgi1r(1UL << 24 | 2);   // INTID 1, target list {1}
        }

        // bench=ipi (cpus=2, make bench): SGI ping-pong between vCPU 0 and 1,
        // each waiting in WFI for the other's SGI: the trapped ICC_SGI1R_EL1
        // write, the target made pending and woken (on its own physical CPU:
        // the kick SGI and its exit; on a shared one: a vCPU switch), its
        // list register filled. Per one-way trip, in instructions under
        // -icount shift=0 (the virtual counter, 16 instructions a tick at
        // 62.5 MHz). A receiver that polls cannot be measured there: QEMU
        // runs the CPUs of an -icount machine in turn, not at once.
        public static void BenchIpi()
        {
            s_benchmark = true;
            Prepare(2);
            EnableSgis(0);
            Start(1);
            const int Rounds = 200;
            ulong waking = PingPong(Rounds);
            Console.Write("BENCH ipi waking=");
            Console.Dec(waking);
            Console.Put('\n');
        }

        private static ulong PingPong(int rounds)
        {
            // Settle: the peer has taken the mode change.
            ulong settle = Cpu.ReadVirtualCount() + Cpu.ReadCounterFrequency() / 100;
            while (Cpu.ReadVirtualCount() < settle) DrainOwn();
            ulong t0 = Cpu.ReadVirtualCount();
            for (int i = 0; i < rounds; i++)
            {
                Cpu.WriteSgi1r(1UL << 24 | 2);                // SGI 1 to vCPU 1
                while (true)
                {
                    Cpu.WaitForInterrupt();
                    ulong intid = Cpu.ReadIccIar1() & 0xffffff;
                    if (intid == 1023) continue;
                    Cpu.WriteIccEoir1(intid);
                    if (intid == 2) break;                    // its answer
                }
            }
            ulong ticks = Cpu.ReadVirtualCount() - t0;
            return ticks * (1000000000UL / Cpu.ReadCounterFrequency()) / (ulong)(2 * rounds);
        }

        private static void DrainOwn()
        {
            while (true)
            {
                ulong intid = Cpu.ReadIccIar1() & 0xffffff;
                if (intid == 1023) return;
                Cpu.WriteIccEoir1(intid);
            }
        }

        // vCPU 1's side: answer SGI 1 with SGI 2 to vCPU 0, waiting in WFI.
        private static void Answer(ulong* block)
        {
            while (LoadAcquire(&block[Quit]) == 0)
            {
                Cpu.WaitForInterrupt();
                ulong intid = Cpu.ReadIccIar1() & 0xffffff;
                if (intid == 1023) continue;
                Cpu.WriteIccEoir1(intid);
                if (intid == 1) Cpu.WriteSgi1r(2UL << 24 | 1);   // SGI 2 to vCPU 0
            }
        }

        // ---- vCPU 1 as a second pair of eyes ----

        // Mode (block[Job]) of a secondary: 0 SGIs, 1 check memory, 2 touch a page.
        private const int Job = 9, Region = 10, Pages = 11, Seed = 12, Reads = 13, Wrong = 14, Faults = 15;
        private static bool s_catchFaults;

        // role=own with cpus=2: vCPU 1 checks the same pages as vCPU 0
        // until StopChecker; a mismatch is a stale or foreign translation
        // seen from another physical CPU.
        public static bool StartChecker(ulong region, int pages, ulong seed)
        {
            Prepare(2);
            ulong* b = s_blocks + BlockWords;
            b[Job] = 1; b[Region] = region; b[Pages] = (ulong)pages; b[Seed] = seed;
            Cpu.Barrier();
            return Start(1);
        }

        public static ulong StopChecker()
        {
            ulong* b = s_blocks + BlockWords;
            StoreRelease(&b[Quit], 1);
            WaitOff(1);
            Console.Write("checker reads=");
            Console.Dec(LoadAcquire(&b[Reads]));
            Console.Write(" wrong=");
            Console.Dec(LoadAcquire(&b[Wrong]));
            Console.Put('\n');
            return LoadAcquire(&b[Wrong]) + (LoadAcquire(&b[Reads]) == 0 ? 1UL : 0);
        }

        // role=balloontouch (cpus=2, balloon=on): vCPU 1 reads a page over
        // and over while vCPU 0 gives that page to the balloon. Once the
        // inflate has returned, no read of vCPU 1 may see the page any more:
        // each must fault (an abort the hypervisor injects); a read that
        // still returns the data, or anything else, came through a stale
        // translation on the other CPU.
        public static void BalloonTouch()
        {
            PagePool.Init();
            ulong page = (ulong)PagePool.At(0) << 12;
            const ulong Pattern = 0x544f554348000000;            // "TOUCH"
            for (int w = 0; w < 512; w++) ((ulong*)page)[w] = Pattern;
            if (!BalloonTests.StartDriver()) return;
            Prepare(2);
            ulong* b = s_blocks + BlockWords;
            b[Job] = 2; b[Region] = page; b[Seed] = Pattern;
            s_catchFaults = true;
            Cpu.Barrier();
            bool ok = Start(1);
            while (LoadAcquire(&b[Reads]) < 1000) { }
            uint pfn = (uint)(page >> 12);
            ok &= VirtioBalloonDriver.InflatePfns(&pfn, 1);
            ulong readsAtInflate = LoadAcquire(&b[Reads]), faultsAtInflate = LoadAcquire(&b[Faults]);
            while (LoadAcquire(&b[Faults]) < faultsAtInflate + 1000) { }
            StoreRelease(&b[Quit], 1);
            ok &= WaitOff(1);
            ulong readsAfter = LoadAcquire(&b[Reads]) - readsAtInflate, wrong = LoadAcquire(&b[Wrong]);
            // One read may have loaded before the TLBI and counted after.
            ok &= readsAfter <= 1 && wrong == 0;
            SelfTests.Verdict("balloontouch", ok);
            Console.Write("reads_before=");
            Console.Dec(readsAtInflate);
            Console.Write(" reads_after=");
            Console.Dec(readsAfter);
            Console.Write(" faults=");
            Console.Dec(LoadAcquire(&b[Faults]));
            Console.Write(" wrong=");
            Console.Dec(wrong);
            Console.Put('\n');
        }

        // The guest's exception handler asks first: a data abort on a
        // secondary during balloontouch is counted and stepped over.
        public static bool CatchSecondaryFault(GuestFrame* frame)
        {
            if (!s_catchFaults || (ReadMpidr() & 0xff) == 0) return false;
            ulong* b = s_blocks + (int)(ReadMpidr() & 0xff) * BlockWords;
            StoreRelease(&b[Faults], LoadAcquire(&b[Faults]) + 1);
            frame->Elr += 4;
            return true;
        }

        private static void Check(ulong* block)
        {
            ulong region = block[Region], seed = block[Seed];
            int pages = (int)block[Pages];
            while (LoadAcquire(&block[Quit]) == 0)
            {
                for (int pg = 0; pg < pages; pg++)
                    for (int i = 0; i < 512; i += 16)
                        if (((ulong*)(region + (ulong)pg * 4096))[i] != IsolationTests.Mix(seed, pg, i))
                            StoreRelease(&block[Wrong], block[Wrong] + 1);
                StoreRelease(&block[Reads], block[Reads] + 1);
            }
        }

        private static void Touch(ulong* block)
        {
            ulong page = block[Region], pattern = block[Seed];
            while (LoadAcquire(&block[Quit]) == 0)
            {
                ulong faults = LoadAcquire(&block[Faults]);
                ulong v = Cpu.Load64(page);
                if (LoadAcquire(&block[Faults]) != faults) continue;   // it faulted: v is nothing
                if (v == pattern) StoreRelease(&block[Reads], block[Reads] + 1);
                else StoreRelease(&block[Wrong], block[Wrong] + 1);
            }
        }

        // ---- PSCI ----

        private static bool PsciRefusals(int n)
        {
            bool ok = true;
            ok &= Expect("CPU_ON of myself", Psci(PsciAbi.CpuOn64, 0, SecondaryStart(), 0), PsciAbi.AlreadyOn);
            ok &= Expect("CPU_ON of an unknown MPIDR", Psci(PsciAbi.CpuOn64, 0x100, SecondaryStart(), 0), PsciAbi.InvalidParameters);
            ok &= Expect("CPU_ON of vCPU n", Psci(PsciAbi.CpuOn64, (ulong)n, SecondaryStart(), 0), PsciAbi.InvalidParameters);
            ok &= Expect("CPU_ON entry outside RAM", Psci(PsciAbi.CpuOn64, 1, 0x1000, 0), PsciAbi.InvalidAddress);
            ok &= Expect("CPU_ON entry not aligned", Psci(PsciAbi.CpuOn64, 1, SecondaryStart() + 2, 0), PsciAbi.InvalidAddress);
            ok &= Expect("AFFINITY_INFO of an off vCPU", Psci(PsciAbi.AffinityInfo64, 1, 0, 0), (long)PsciAbi.AffinityOff);
            ok &= Expect("AFFINITY_INFO of myself", Psci(PsciAbi.AffinityInfo64, 0, 0, 0), (long)PsciAbi.AffinityOn);
            ok &= Expect("AFFINITY_INFO of an unknown MPIDR", Psci(PsciAbi.AffinityInfo64, 0x100, 0, 0), PsciAbi.InvalidParameters);
            return ok;
        }

        private static long Psci(ulong fid, ulong a1, ulong a2, ulong a3) => (long)Hvc.Call(fid, a1, a2, a3).X0;

        private static bool Expect(string what, long got, long want)
        {
            if (got == want) return true;
            Console.Write("smp: ");
            Console.Write(what);
            Console.Write(": got ");
            Console.SignedDec(got);
            Console.Write(", want ");
            Console.SignedDec(want);
            Console.Put('\n');
            return false;
        }

        // ---- starting and stopping secondaries ----

        private static void Prepare(int n)
        {
            ulong* blocks = (ulong*)Hypervisor.Runtime.Heap.Allocate((ulong)(n * BlockWords * 8));
            byte* stacks = (byte*)Hypervisor.Runtime.Heap.Allocate((ulong)(n * StackBytes));
            for (int i = 0; i < n * BlockWords; i++) blocks[i] = 0;
            for (int v = 0; v < n; v++)
            {
                ulong* b = blocks + v * BlockWords;
                b[StackTop] = ((ulong)(stacks + (v + 1) * StackBytes)) & ~15UL;
                b[Mair] = ReadMair();
                b[Tcr] = Cpu.ReadTcr();
                b[Ttbr0] = Cpu.ReadTtbr0();
                b[Sctlr] = Cpu.ReadSctlr();
            }
            s_blocks = blocks;
            Cpu.Barrier();
        }

        private static bool Start(int v)
        {
            ulong* b = s_blocks + v * BlockWords;
            if (!Expect("CPU_ON", Psci(PsciAbi.CpuOn64, (ulong)v, SecondaryStart(), (ulong)b), PsciAbi.Success)) return false;
            bool up = WaitFor(&b[Alive], 1);
            if (!up) { Console.Write("smp: vCPU "); Console.Dec((ulong)v); Console.Line(" did not come up"); return false; }
            bool ok = Expect("its MPIDR", (long)LoadAcquire(&b[SeenMpidr]), v);
            ok &= Expect("CPU_ON of a vCPU that is on", Psci(PsciAbi.CpuOn64, (ulong)v, SecondaryStart(), (ulong)b), PsciAbi.AlreadyOn);
            ok &= Expect("AFFINITY_INFO of a vCPU that is on", Psci(PsciAbi.AffinityInfo64, (ulong)v, 0, 0), (long)PsciAbi.AffinityOn);
            return ok;
        }

        private static bool WaitOff(int v)
        {
            ulong deadline = Cpu.ReadVirtualCount() + 10 * Cpu.ReadCounterFrequency();   // returns as soon as it holds
            while (Cpu.ReadVirtualCount() < deadline)
                if (Psci(PsciAbi.AffinityInfo64, (ulong)v, 0, 0) == (long)PsciAbi.AffinityOff) return true;
            Console.Write("smp: vCPU ");
            Console.Dec((ulong)v);
            Console.Line(" is still on after CPU_OFF");
            return false;
        }

        // Polls `*p` (while taking this vCPU's own SGIs) for up to 10 s.
        private static bool WaitFor(ulong* p, ulong value)
        {
            ulong deadline = Cpu.ReadVirtualCount() + 10 * Cpu.ReadCounterFrequency();   // returns as soon as it holds
            while (Cpu.ReadVirtualCount() < deadline)
            {
                if (LoadAcquire(p) == value) return true;
                TakeSgis(s_blocks);
            }
            return false;
        }

        // ---- SGIs ----

        // INTIDs 0-15 in group 1 at the vCPU's own redistributor, its
        // interface taking every priority.
        private static void EnableSgis(int v)
        {
            ulong rd = GicrBase + (ulong)v * GicrStride;
            Mmio.Write32(rd + 0x14, 0);                               // GICR_WAKER: awake
            Mmio.Write32(rd + SgiFrame + 0x80, Mmio.Read32(rd + SgiFrame + 0x80) | 0xffff);
            for (int i = 0; i < 16; i++) Mmio.Write8(rd + SgiFrame + 0x400 + (ulong)i, 0xa0);
            Mmio.Write32(rd + SgiFrame + 0x100, 0xffff);
            Mmio.Write32(Mmu.GicGva, 2);                              // GICD_CTLR.EnableGrp1
            Cpu.WriteIccPmr(0xff);
            Cpu.WriteIccIgrpen1(1);
        }

        // Every SGI pending for this vCPU, counted in its block.
        private static void TakeSgis(ulong* block)
        {
            while (true)
            {
                ulong intid = Cpu.ReadIccIar1() & 0xffffff;
                if (intid == 1023) return;
                if (intid < 16) StoreRelease(&block[Counts + (int)intid], LoadAcquire(&block[Counts + (int)intid]) + 1);
                Cpu.WriteIccEoir1(intid);
            }
        }

        // What each kind of target must reach, checked against the counts.
        private static bool Ipis(int n)
        {
            var expected = new ulong[8 * 16];
            ulong all = (1UL << n) - 1;
            Send(n, expected, 1, 1UL << 1, 0);                        // vCPU 1
            Send(n, expected, 2, 1UL << 0, 0);                        // myself
            Send(n, expected, 3, all, 0);                             // everyone, by list
            Send(n, expected, 4, 0, 1);                               // IRM = 1: all but me
            Send(n, expected, 5, 1UL | 1UL << (n - 1), 0);            // first and last
            Send(n, expected, 6, 0xaaaa & all, 0);                    // the odd ones
            Send(n, expected, 7, 0xffffUL | 1UL << 44, 0);            // RS = 1: Aff0 16..31, nobody
            Send(n, expected, 8, all | 1UL << 16, 0);                 // Aff1 = 1: nobody
            if (n < 16) Send(n, expected, 9, 1UL << n, 0);            // a vCPU that does not exist
            // vCPU 1 sends "all but me": everyone but vCPU 1.
            for (int v = 0; v < n; v++) if (v != 1) expected[v * 16 + 10]++;
            StoreRelease(&s_blocks[1 * BlockWords + SendSgi], 10UL << 24 | 1UL << 40);
            Wake(1);
            // Until everything expected has arrived (an emulated CPU on a busy
            // host may wait long for its turn), then a little longer, so that
            // anything misrouted arrives too.
            ulong deadline = Cpu.ReadVirtualCount() + 10 * Cpu.ReadCounterFrequency();
            while (Cpu.ReadVirtualCount() < deadline && !AllArrived(n, expected)) TakeSgis(s_blocks);
            ulong settle = Cpu.ReadVirtualCount() + Cpu.ReadCounterFrequency() / 20;
            while (Cpu.ReadVirtualCount() < settle) TakeSgis(s_blocks);
            bool ok = true;
            for (int v = 0; v < n; v++)
                for (int intid = 1; intid <= 10; intid++)
                {
                    ulong got = LoadAcquire(&s_blocks[v * BlockWords + Counts + intid]);
                    if (got == expected[v * 16 + intid]) continue;
                    ok = false;
                    Console.Write("smp: vCPU ");
                    Console.Dec((ulong)v);
                    Console.Write(" took SGI ");
                    Console.Dec((ulong)intid);
                    Console.Write(" ");
                    Console.Dec(got);
                    Console.Write(" times, want ");
                    Console.Dec(expected[v * 16 + intid]);
                    Console.Put('\n');
                }
            return ok;
        }

        private static bool AllArrived(int n, ulong[] expected)
        {
            for (int v = 0; v < n; v++)
                for (int intid = 1; intid <= 10; intid++)
                    if (LoadAcquire(&s_blocks[v * BlockWords + Counts + intid]) < expected[v * 16 + intid]) return false;
            return true;
        }

        // SGI 15 (never counted) to vCPU v: it looks at its block again.
        private static void Wake(int v) => Cpu.WriteSgi1r(15UL << 24 | 1UL << v);

        // ICC_SGI1R_EL1 = targets | INTID << 24 | IRM << 40; the expected
        // receivers by the architecture's rule (sender: vCPU 0).
        private static void Send(int n, ulong[] expected, int intid, ulong targets, ulong irm)
        {
            ulong value = (targets & 0xffff) | (targets & (0xfUL << 44)) | ((targets >> 16) & 0xff) << 16 | (ulong)intid << 24 | irm << 40;
            ulong rs = (value >> 44) & 0xf, aff1 = (value >> 16) & 0xff;
            for (int v = 0; v < n; v++)
            {
                bool reaches = irm == 1 ? v != 0 : aff1 == 0 && rs == (ulong)(v >> 4) && ((value >> (v & 15)) & 1) != 0;
                if (reaches) expected[v * 16 + intid]++;
            }
            Cpu.WriteSgi1r(value);
            TakeSgis(s_blocks);
        }

        // ---- a secondary ----

        [RuntimeExport("guest_secondary")]
        private static void Secondary(ulong* block)
        {
            int v = (int)(ReadMpidr() & 0xff);
            StoreRelease(&block[SeenMpidr], ReadMpidr() & 0xff00ffffff);
            EnableSgis(v);
            StoreRelease(&block[Alive], 1);
            if (s_benchmark) { Answer(block); return; }
            if (block[Job] == 1 || block[Job] == 2)
            {
                if (block[Job] == 1) Check(block); else Touch(block);
                Hvc.Call(PsciAbi.CpuOff);
            }
            while (LoadAcquire(&block[Quit]) == 0)
            {
                ulong send = LoadAcquire(&block[SendSgi]);
                if (send != 0)
                {
                    StoreRelease(&block[SendSgi], 0);
                    Cpu.WriteSgi1r(send);
                }
                Cpu.WaitForInterrupt();
                TakeSgis(block);
            }
            Hvc.Call(PsciAbi.CpuOff);
            while (true) Cpu.WaitForInterrupt();   // CPU_OFF does not return
        }
    }
}
