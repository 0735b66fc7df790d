using System;
using System.Runtime;
using Hypervisor.Arch;
using Hypervisor.Boot;
using Hypervisor.Console;
using Hypervisor.Mm;
using Hypervisor.Trap;

namespace Hypervisor
{
    // Filled in by boot/head.S before it calls kmain.
    public struct BootInfo
    {
        public ulong Dtb;
        public ulong ImageStart;
        public ulong ImageEnd;
        public ulong HeapStart;
        public ulong HeapEnd;
        public ulong ModulesStart;
        public ulong ModulesEnd;
        public ulong CurrentEl;
    }

    public static unsafe class Kernel
    {
        public static FrameAllocator Frames;
        public static CacheMaintenance Cache;   // the rule for it: kernel/Mm/Coherency.cs
        private static FdtInfo s_fdt;
        private static ulong s_dtb;

        [RuntimeExport("kmain")]
        private static void Main(BootInfo* boot)
        {
            // Nothing may touch a static field holding an object before these two.
            Hypervisor.Runtime.Heap.Init(boot->HeapStart, boot->HeapEnd);
            Hypervisor.Runtime.Startup.InitializeModules(boot->ModulesStart, boot->ModulesEnd);

            s_dtb = boot->Dtb;
            ReadOnlySpan<byte> dtb = DeviceTree(boot->Dtb);
            FdtStatus status = Fdt.Parse(dtb, out s_fdt);
            if (status != FdtStatus.Ok)
                Panic.Message("cannot read the device tree passed in x0");
            if (s_fdt.UartBase != 0) Pl011.SetBase(s_fdt.UartBase);

            ReadOnlySpan<byte> bootargs = Bootargs(dtb);
            FrameSetup.Init(boot, s_fdt);
            PrintBanner(boot, bootargs);
            FrameSetup.PrintStat();
            TakeSeeds(boot->Dtb);

            DeliberateFault(bootargs);

            Hypervisor.Smp.Cpus.Init(s_fdt);
            Gic.Init(s_fdt.GicDistributor, s_fdt.GicRedistributor);
            if (!Gic.Present) Psci.PowerOff();
            Hypervisor.Vm.VgicCpu.Init();
            Hypervisor.Vm.Summary.FreeFramesAtStart = Frames.FreeFrames;
            Hypervisor.Vm.VmBuilder.CreateFromBundle(s_fdt);
            if (Hypervisor.Vm.Scheduler.Count == 0)
            {
                Log.Line("[hv] no VMs to run; powering off");
                Psci.PowerOff();
            }
            Hypervisor.Monitor.Monitor.Init();
            // Taken after the VMs are built (their objects stay for the summary):
            // anything allocated from here on would be a leak on some path.
            Hypervisor.Vm.Summary.HeapAtStart = Hypervisor.Runtime.Heap.BytesInUse;
            StartOtherCpus();
            Hypervisor.Vm.Scheduler.Start();
        }

        // The firmware's entropy (and the CPU's, with FEAT_RNG) becomes the
        // key of every guest's rng-seed and kaslr-seed (kernel/Boot/
        // GuestSeeds.cs). The host tree's seeds are then wiped, as Linux
        // wipes its own after use: nothing else needs them, and a secret is
        // safest with one copy.
        // [hv] guest seeds from: rng-seed (32 bytes) kaslr-seed RNDR
        private static void TakeSeeds(ulong dtbAddress)
        {
            byte* dtb = (byte*)dtbAddress;
            var rngSeed = s_fdt.RngSeedOffset < 0 ? default : new Span<byte>(dtb + s_fdt.RngSeedOffset, s_fdt.RngSeedLength);
            ulong kaslrSeed = s_fdt.KaslrSeedOffset < 0 ? 0 : Fdt.ReadBe64(new ReadOnlySpan<byte>(dtb + s_fdt.KaslrSeedOffset, 8), 0);
            ulong rndr = (SysReg.ReadIdAa64Isar0El1() >> 60) != 0 ? SysReg.ReadRndr() : 0;
            Hypervisor.Vm.VmBuilder.Seeds = GuestSeeds.Absorb(rngSeed, kaslrSeed, rndr, SysReg.ReadCntpctEl0());
            rngSeed.Clear();
            if (s_fdt.KaslrSeedOffset >= 0) new Span<byte>(dtb + s_fdt.KaslrSeedOffset, 8).Clear();

            EntropySource from = Hypervisor.Vm.VmBuilder.Seeds.Sources;
            Log.Write("[hv] guest seeds from:");
            if ((from & EntropySource.FirmwareRngSeed) != 0)
            {
                Log.Write(" rng-seed (");
                Log.Dec((ulong)rngSeed.Length);
                Log.Write(" bytes)");
            }
            if ((from & EntropySource.FirmwareKaslrSeed) != 0) Log.Write(" kaslr-seed");
            if ((from & EntropySource.Rndr) != 0) Log.Write(" RNDR");
            if (from == EntropySource.None) Log.Write(" the counter alone (no rng-seed, kaslr-seed or RNDR): guests can guess them");
            Log.NewLine();
        }

        // [hv] cpus: 2 of 2 running guests
        private static void StartOtherCpus()
        {
            int up = Hypervisor.Smp.Cpus.StartSecondaries();
            Log.Write("[hv] cpus: ");
            Log.Dec((ulong)up);
            Log.Write(" of ");
            Log.Dec((ulong)s_fdt.CpuCount);
            Log.Write(" running guests");
            if (s_fdt.CpuCount > Hypervisor.Smp.Cpus.Count) Log.Write(" (the hypervisor has stacks for 8)");
            Log.NewLine();
        }

        private static ReadOnlySpan<byte> DeviceTree(ulong address)
        {
            uint size = Fdt.TotalSizeOf(new ReadOnlySpan<byte>((void*)address, 40));
            return new ReadOnlySpan<byte>((void*)address, (int)size);
        }

        private static ReadOnlySpan<byte> Bootargs(ReadOnlySpan<byte> dtb) =>
            s_fdt.BootargsOffset < 0 ? default : dtb.Slice(s_fdt.BootargsOffset, s_fdt.BootargsLength);

        // [hv] el=2 cpus=2 ram=512MiB free=494MiB bootargs="..."
        private static void PrintBanner(BootInfo* boot, ReadOnlySpan<byte> bootargs)
        {
            Log.Write("[hv] el=");
            Log.Dec(boot->CurrentEl);
            Log.Write(" cpus=");
            Log.Dec((ulong)s_fdt.CpuCount);
            Log.Write(" ram=");
            Log.Size(s_fdt.MemorySize);
            Log.Write(" free=");
            Log.Size((ulong)Frames.FreeFrames * FrameAllocator.FrameSize);
            Log.Write(" bootargs=\"");
            Log.Write(bootargs);
            Log.Line("\"");
            Log.Write("[hv] image ");
            Log.Hex(boot->ImageStart);
            Log.Write("-");
            Log.Hex(boot->ImageEnd);
            Log.Write(" dtb ");
            Log.Hex(s_dtb);
            if (s_fdt.HasInitrd)
            {
                Log.Write(" bundle ");
                Log.Hex(s_fdt.InitrdStart);
                Log.Write("-");
                Log.Hex(s_fdt.InitrdEnd);
            }
            Log.NewLine();
        }

        // `fault=null` dereferences a null object reference from C#;
        // `fault=undef` executes an undefined instruction. Both must end in a
        // PANIC line that names the exception class (tests check it).
        private static void DeliberateFault(ReadOnlySpan<byte> bootargs)
        {
            if (BootArgs.Is(bootargs, "fault", "null"))
            {
                Log.Line("[hv] fault=null: reading a field through a null reference");
                Victim v = NullVictim(bootargs.Length);
                Log.Dec(v.Value);
            }
            else if (BootArgs.Is(bootargs, "fault", "undef"))
            {
                Log.Line("[hv] fault=undef: executing UDF #0");
                Cpu.UndefinedInstruction();
            }
        }

        private sealed class Victim { public ulong Value; }
        private static Victim s_victim;

        // Returns the (null) static through a path the compiler cannot fold, so
        // the field read really is a load from a small address.
        private static Victim NullVictim(int salt) => salt >= 0 ? s_victim : new Victim();
    }
}
