using System;
using System.Runtime;
using Hypervisor.Boot;
using Hypervisor.Trap;

namespace Guest
{
    // Filled in by guest/boot/entry.s.
    public struct GuestBootInfo
    {
        public ulong Dtb, HeapStart, HeapEnd, ModulesStart, ModulesEnd, TablesStart, TablesEnd, ImageStart, ImageEnd;
    }

    // The C# test guest: an EL1 kernel that runs named self-tests chosen by its
    // bootargs (tests=all or tests=a,b,c) and reports `TEST <name> PASS|FAIL`.
    public static unsafe class Program
    {
        public static FdtInfo Fdt;
        public static ulong DtbAddress, DtbSize;
        public static ulong ImageStart, ImageEnd;       // linker symbols: this image, .bss included
        private static byte[] s_args;

        // The bootargs, copied out of the device tree: the tree lies in RAM
        // above this image, which tests are free to overwrite (as a kernel
        // copies its command line before it uses its memory).
        public static ReadOnlySpan<byte> Args => s_args;

        // Whether the 4 KiB page at `page` holds what the hypervisor copied in
        // before entry (the device tree, the initrd): not fresh memory.
        public static bool HoldsBootData(ulong page)
        {
            ulong end = page + 4096;
            if (page < DtbAddress + DtbSize && DtbAddress < end) return true;
            return Fdt.HasInitrd && page < Fdt.InitrdEnd && Fdt.InitrdStart < end;
        }

        [RuntimeExport("guest_main")]
        private static void Main(GuestBootInfo* boot)
        {
            Hypervisor.Runtime.Heap.Init(boot->HeapStart, boot->HeapEnd);
            Hypervisor.Runtime.Startup.InitializeModules(boot->ModulesStart, boot->ModulesEnd);

            DtbAddress = boot->Dtb;
            ImageStart = boot->ImageStart;
            ImageEnd = boot->ImageEnd;
            uint size = Hypervisor.Boot.Fdt.TotalSizeOf(new ReadOnlySpan<byte>((void*)boot->Dtb, 40));
            DtbSize = size;
            var dtb = new ReadOnlySpan<byte>((void*)boot->Dtb, (int)size);
            if (Hypervisor.Boot.Fdt.Parse(dtb, out Fdt) != FdtStatus.Ok) Fail("cannot read my device tree");
            s_args = new byte[Fdt.BootargsOffset < 0 ? 0 : Fdt.BootargsLength];
            for (int i = 0; i < s_args.Length; i++) s_args[i] = dtb[Fdt.BootargsOffset + i];
            ReadOnlySpan<byte> args = s_args;

            Console.Write("guest up: el=");
            Console.Dec(Cpu.ReadCurrentEl() >> 2);
            Console.Write(" ram=");
            Console.Hex(Fdt.MemoryBase);
            Console.Write("+");
            Console.Dec(Fdt.MemorySize >> 20);
            Console.Write("MiB args=\"");
            Console.Write(args);
            Console.Line("\"");

            Mmu.Enable(boot->TablesStart, boot->TablesEnd, Fdt.MemoryBase, Fdt.MemorySize);
            Console.Write("stage-1 MMU on, paging=");
            Console.Line(Mmu.Mode == HypercallAbi.Paging.Direct ? "direct" : Mmu.Mode == HypercallAbi.Paging.Shadow ? "shadow" : "stage2");

            ReadOnlySpan<byte> tests = BootArgs.Get(args, "tests", out bool any);
            if (any) SelfTests.Run(tests);
            RunRole(args);
            ReadOnlySpan<byte> benchKind = BootArgs.Get(args, "bench", out bool bench);
            if (bench && Hypervisor.Boot.Fdt.BytesEqual(benchKind, "switch")) Bench.VmSwitch();
            else if (bench && Hypervisor.Boot.Fdt.BytesEqual(benchKind, "paging")) AddressSpaces.Run(true);
            else if (bench && Hypervisor.Boot.Fdt.BytesEqual(benchKind, "ipi")) SmpTests.BenchIpi();
            else if (bench && (benchKind.IsEmpty || Hypervisor.Boot.Fdt.BytesEqual(benchKind, "exits"))) Bench.Run();
            BootArgs.Get(args, "reset", out bool reset);
            if (reset) Reset();
            PowerOff();
        }

        // role=secret|snoop|own|spin|undef|hvcfuzz: multi-VM tests (IsolationTests.cs).
        private static void RunRole(ReadOnlySpan<byte> args)
        {
            ReadOnlySpan<byte> role = BootArgs.Get(args, "role", out bool any);
            if (!any) return;
            if (Hypervisor.Boot.Fdt.BytesEqual(role, "secret")) IsolationTests.Secret();
            else if (Hypervisor.Boot.Fdt.BytesEqual(role, "snoop")) IsolationTests.Snoop(BootArgs.Is(args, "wait", "alone"));
            else if (Hypervisor.Boot.Fdt.BytesEqual(role, "own")) IsolationTests.Own(ParseNumber(BootArgs.Get(args, "seed", out _)), ParseNumber(BootArgs.Get(args, "rounds", out _)));
            else if (Hypervisor.Boot.Fdt.BytesEqual(role, "spin")) IsolationTests.Spin();
            else if (Hypervisor.Boot.Fdt.BytesEqual(role, "undef")) IsolationTests.BrokenVectors();
            else if (Hypervisor.Boot.Fdt.BytesEqual(role, "hvcfuzz")) IsolationTests.HypercallFuzz();
            else if (Hypervisor.Boot.Fdt.BytesEqual(role, "giver")) BalloonTests.Giver(BootArgs.Is(args, "touch", "1"));
            else if (Hypervisor.Boot.Fdt.BytesEqual(role, "taker")) BalloonTests.Taker();
            else if (Hypervisor.Boot.Fdt.BytesEqual(role, "balloonfuzz")) BalloonHostile.Hostile();
            else if (Hypervisor.Boot.Fdt.BytesEqual(role, "ballooncycles")) BalloonHostile.Cycles();
            else if (Hypervisor.Boot.Fdt.BytesEqual(role, "follow")) BalloonHostile.Follow();
            else if (Hypervisor.Boot.Fdt.BytesEqual(role, "mmiofuzz")) BalloonHostile.MmioFuzz();
            else if (Hypervisor.Boot.Fdt.BytesEqual(role, "gicfuzz")) BalloonHostile.GicFuzz();
            else if (Hypervisor.Boot.Fdt.BytesEqual(role, "echo")) IsolationTests.Echo();
            else if (Hypervisor.Boot.Fdt.BytesEqual(role, "spaces")) AddressSpaces.Run(false);
            else if (Hypervisor.Boot.Fdt.BytesEqual(role, "shadowfuzz")) PagingHostile.ShadowFuzz();
            else if (Hypervisor.Boot.Fdt.BytesEqual(role, "shadowbomb")) PagingHostile.ShadowBomb();
            else if (Hypervisor.Boot.Fdt.BytesEqual(role, "badroot")) PagingHostile.BadRoot();
            else if (Hypervisor.Boot.Fdt.BytesEqual(role, "walkrules")) PagingHostile.WalkRules();
            else if (Hypervisor.Boot.Fdt.BytesEqual(role, "sleeper")) Interrupts.Sleeper();
            else if (Hypervisor.Boot.Fdt.BytesEqual(role, "ptimerswitch")) Interrupts.PhysicalTimerAcrossASwitch();
            else if (Hypervisor.Boot.Fdt.BytesEqual(role, "pmu")) CpuStateTests.Pmu();
            else if (Hypervisor.Boot.Fdt.BytesEqual(role, "hidden")) CpuStateTests.Hidden();
            else if (Hypervisor.Boot.Fdt.BytesEqual(role, "regfuzz")) SysRegFuzz.Fuzz();
            else if (Hypervisor.Boot.Fdt.BytesEqual(role, "regkeep")) SysRegFuzz.Keep();
            else if (Hypervisor.Boot.Fdt.BytesEqual(role, "actlr")) SysRegFuzz.AuxiliaryControl();
            else if (Hypervisor.Boot.Fdt.BytesEqual(role, "debug")) CpuStateTests.Debug(ParseNumber(BootArgs.Get(args, "seed", out _)));
            else if (Hypervisor.Boot.Fdt.BytesEqual(role, "gicleftovers")) Interrupts.Leftovers();
            else if (Hypervisor.Boot.Fdt.BytesEqual(role, "directfuzz")) PagingHostile.DirectFuzz();
            else if (Hypervisor.Boot.Fdt.BytesEqual(role, "balloonflood")) BalloonFlood.Run((int)ParseNumber(BootArgs.Get(args, "rounds", out _)));
            else if (Hypervisor.Boot.Fdt.BytesEqual(role, "timerprobe")) TimerProbe.Run((int)ParseNumber(BootArgs.Get(args, "rounds", out _)), ParseNumber(BootArgs.Get(args, "period_us", out _)));
            else if (Hypervisor.Boot.Fdt.BytesEqual(role, "remapballooned")) BalloonDebts.RemapBallooned();
            else if (Hypervisor.Boot.Fdt.BytesEqual(role, "bootballoon")) BalloonDebts.BootBalloonTouch();
            else if (Hypervisor.Boot.Fdt.BytesEqual(role, "shadowstorm")) ShadowStorm.Run(ParseNumber(BootArgs.Get(args, "ms", out _)));
            else if (Hypervisor.Boot.Fdt.BytesEqual(role, "smp")) SmpTests.Run();
            else if (Hypervisor.Boot.Fdt.BytesEqual(role, "ipistorm")) SmpTests.Storm();
            else if (Hypervisor.Boot.Fdt.BytesEqual(role, "balloontouch")) SmpTests.BalloonTouch();
            else if (Hypervisor.Boot.Fdt.BytesEqual(role, "compute")) IsolationTests.Compute(ParseNumber(BootArgs.Get(args, "millions", out _)));
            else if (Hypervisor.Boot.Fdt.BytesEqual(role, "fpswitch")) IsolationTests.FpSwitch(ParseNumber(BootArgs.Get(args, "seed", out _)));
            else Fail("unknown role");
        }

        private static ulong ParseNumber(ReadOnlySpan<byte> digits)
        {
            ulong v = 0;
            for (int i = 0; i < digits.Length && digits[i] >= '0' && digits[i] <= '9'; i++) v = v * 10 + (ulong)(digits[i] - '0');
            return v;
        }

        // Asks to be started again from the image (PSCI SYSTEM_RESET).
        public static void Reset()
        {
            Console.Line("guest done: SYSTEM_RESET");
            Hvc.Call(PsciAbi.SystemReset);
            while (true) { }
        }

        public static void PowerOff()
        {
            Console.Line("guest done: SYSTEM_OFF");
            Hvc.Call(PsciAbi.SystemOff);
            while (true) { }
        }

        public static void Fail(string why)
        {
            Console.Write("TEST guest FAIL ");
            Console.Line(why);
            PowerOff();
        }

        [RuntimeExport("rt_fatal")]
        private static void RuntimeFatal(char* message, int length)
        {
            Console.Write("TEST runtime FAIL ");
            for (int i = 0; i < length; i++) Console.Put(message[i]);
            Console.Put('\n');
            PowerOff();
        }
    }
}
