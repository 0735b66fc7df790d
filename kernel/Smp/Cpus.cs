using System.Runtime;
using System.Runtime.CompilerServices;
using Hypervisor.Arch;
using Hypervisor.Boot;
using Hypervisor.Console;
using Hypervisor.Vm;

namespace Hypervisor.Smp
{
    // One physical CPU's own data. Everything here is about this CPU only
    // (which VM's registers it holds, whose debug registers, its GIC frame);
    // it is found through TPIDR_EL2 (Cpus.This), never through a global
    // "current".
    public sealed unsafe class PhysicalCpu
    {
        public readonly int Index;               // 0 = the boot CPU; TPIDR_EL2 and the stack slot
        public readonly ulong Mpidr;             // affinity (Aff3 in bits 39:32, Aff2..Aff0 in 23:0)
        public ulong Redistributor;              // its GICR frame (kernel/Arch/Gic.cs)
        public bool Online;                      // it came up (written under the scheduler lock)
        public bool Idle;                        // asleep in the idle loop: a kick (SGI) wakes it
        public bool GicUp;                       // its GIC CPU interface is on: an SGI can wake it
        public Vcpu Loaded;                      // the vCPU whose registers are in it (null: none)
        public TrapFrame* EntryFrame;            // Loaded's register frame: what its exit path enters
        public readonly ulong StackTop;          // where its EL2 stack starts (C# runs there on every exit)
        public uint El2Mark;                     // El2Clock's reading when Loaded was last charged
        public DebugState DebugInCpu;            // whose debug registers it holds (null: a clean set)
        public bool VirtualPpiOff;               // the virtual timer's PPI disabled at its redistributor
        public HeldLocks Locks;
        public ulong IdleSleeps;                 // times it had nothing to run and slept
        public ulong Switches;                   // vCPUs it loaded (Scheduler.Load)

        // vCPUs of the VM whose lock it holds that an exit handler woke or
        // turned on (bit n: Vcpus[n]), for the scheduler once that lock is
        // released (Scheduler.Notice, kernel/Smp/LockOrder.cs).
        public uint Noticed;
        public Hypervisor.Vm.VirtualMachine NoticedVm;

        // The console line it is putting together (kernel/Console/Log.cs).
        public readonly byte[] Line = new byte[200];
        public int LineLength;

        public PhysicalCpu(int index, ulong mpidr)
        {
            Index = index;
            Mpidr = mpidr;
            StackTop = Cpus.StackTopOf(index);
        }
    }

    // The physical CPUs: found in the host device tree, started with PSCI
    // CPU_ON through the conduit the tree names, each running the same
    // scheduler (kernel/Vm/Scheduler.cs), with the locks of kernel/Smp/LockOrder.cs.
    public static unsafe class Cpus
    {
        public const ulong AffinityMask = 0xff00ffffffUL;   // MPIDR_EL1's Aff3..Aff0
        public const uint KickIntid = 0;                     // SGI 0: "look at the run queue"
        private const ulong PsciCpuOn64 = 0xC4000003;
        private const ulong IsarAtomic = 0xfUL << 20;        // ID_AA64ISAR0_EL1.Atomic: 2 = LSE

        [RuntimeImport("*", "read_tpidr_el2")][MethodImpl(MethodImplOptions.InternalCall)] private static extern ulong ReadTpidrEl2();
        [RuntimeImport("*", "cpu_stack_top")][MethodImpl(MethodImplOptions.InternalCall)] internal static extern ulong StackTopOf(int index);
        [RuntimeImport("*", "read_secondary_entry")][MethodImpl(MethodImplOptions.InternalCall)] private static extern ulong SecondaryEntry();

        private static PhysicalCpu[] s_cpus;
        private static bool s_psciHvc;

        // The leaf locks (kernel/Smp/LockOrder.cs), made at boot (the heap
        // must not grow once VMs run) and put to use when the second CPU
        // starts. The scheduler's and each VM's are their owners'.
        public static SpinLock FramesLock, HeapLock, ConsoleLock;

        public static int Count => s_cpus.Length;
        public static PhysicalCpu At(int i) => s_cpus[i];

        // With one CPU it is the boot CPU's, without reading TPIDR_EL2: the
        // exit path asks on every exit. SpinLock.Smp is set before any other
        // CPU is started, so a secondary never takes the shortcut.
        public static PhysicalCpu This
        {
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            get => SpinLock.Smp ? s_cpus[(int)ReadTpidrEl2()] : s_boot;
        }

        private static PhysicalCpu s_boot;
        public static PhysicalCpu Boot => s_boot;

        // On the boot CPU, before any other runs: one PhysicalCpu per CPU the
        // device tree lists (up to MaxCpus), the boot CPU first.
        public static void Init(in FdtInfo fdt)
        {
            SpinLock.UseLse = (SysReg.ReadIdAa64Isar0El1() & IsarAtomic) >= (2UL << 20) ? 1u : 0u;
            FramesLock = new SpinLock(LockRank.Frames);
            HeapLock = new SpinLock(LockRank.Heap);
            ConsoleLock = new SpinLock(LockRank.Console);
            s_psciHvc = fdt.PsciUsesHvc;
            ulong boot = SysReg.ReadMpidrEl1() & AffinityMask;
            int listed = fdt.CpuCount < FdtInfo.MaxCpus ? fdt.CpuCount : FdtInfo.MaxCpus;
            int n = 1;
            for (int i = 0; i < listed; i++) if ((fdt.Mpidr[i] & AffinityMask) != boot) n++;
            if (n > FdtInfo.MaxCpus) n = FdtInfo.MaxCpus;
            s_cpus = new PhysicalCpu[n];
            s_cpus[0] = new PhysicalCpu(0, boot);
            s_cpus[0].Online = true;
            s_boot = s_cpus[0];
            for (int i = 0, next = 1; i < listed && next < n; i++)
                if ((fdt.Mpidr[i] & AffinityMask) != boot) { s_cpus[next] = new PhysicalCpu(next, fdt.Mpidr[i] & AffinityMask); next++; }
        }

        // PSCI CPU_ON for every other CPU, each waited for at most a second:
        // one that fails or does not come up is reported and left off.
        // Returns how many CPUs run guests, the boot CPU included.
        public static int StartSecondaries()
        {
            int up = 1;
            if (s_cpus.Length > 1) Share();
            for (int i = 1; i < s_cpus.Length; i++)
            {
                PhysicalCpu cpu = s_cpus[i];
                if (s_psciHvc)
                {
                    // HVC from EL2 would come back to the hypervisor itself:
                    // firmware that wants HVC expects to be called from EL1.
                    Report(cpu, "left off: the host's PSCI method is hvc, unreachable from EL2", 0);
                    continue;
                }
                long status = (long)Cpu.SmcCall(PsciCpuOn64, cpu.Mpidr, SecondaryEntry(), (ulong)i);
                if (status != 0)
                {
                    Report(cpu, "CPU_ON failed, PSCI status ", status);
                    continue;
                }
                if (WaitOnline(cpu)) up++;
                else Report(cpu, "did not come up within a second", 0);
            }
            return up;
        }

        // Before anyone else can run: from here on what several CPUs reach
        // is locked.
        private static void Share()
        {
            Hypervisor.Kernel.Frames.Guard = FramesLock;
            Hypervisor.Runtime.Heap.UseLock(&TakeHeapLock, &ReleaseHeapLock);
            Log.UseLock(ConsoleLock);
            SpinLock.Smp = true;
        }

        private static void TakeHeapLock() => HeapLock.Acquire();
        private static void ReleaseHeapLock() => HeapLock.Release();

        private static bool WaitOnline(PhysicalCpu cpu)
        {
            ulong deadline = SysReg.ReadCntpctEl0() + SysReg.ReadCntfrqEl0();
            while (SysReg.ReadCntpctEl0() < deadline)
            {
                Scheduler.Lock.Acquire();
                bool online = cpu.Online;
                Scheduler.Lock.Release();
                if (online) return true;
            }
            return false;
        }

        private static void Report(PhysicalCpu cpu, string what, long status)
        {
            Log.Write("[hv] cpu ");
            Log.Dec((ulong)cpu.Index);
            Log.Write(" (MPIDR ");
            Log.Hex(cpu.Mpidr);
            Log.Write("): ");
            Log.Write(what);
            if (status != 0) Log.Dec((ulong)(-status));
            Log.NewLine();
        }

        // secondary_entry (boot/smp.s) lands here, on the CPU's own stack with
        // its MMU on and TPIDR_EL2 = index: the per-CPU half of what the boot
        // CPU did in kmain, then the scheduler. Never returns.
        [RuntimeExport("ksecondary")]
        private static void SecondaryMain(ulong index)
        {
            Scheduler.Lock.Acquire();
            PhysicalCpu cpu = s_cpus[(int)index];
            El2Setup.InitCpu();
            if (!Gic.InitCpu(cpu))
            {
                // No interrupts, so no slices and no kicks: it stays parked,
                // and the boot CPU reports it as not come up.
                Scheduler.Lock.Release();
                while (true) Cpu.WaitForEvent();
            }
            VgicCpu.InitCpu();
            cpu.Online = true;
            Scheduler.Lock.Release();
            Scheduler.Start();
        }

        // Wakes the CPUs asleep in the idle loop (but this one): a VM became
        // runnable that one of them may take, or that is loaded in it.
        public static int IdleCount;                         // CPUs asleep in the idle loop (under the scheduler lock)

        // (The test inlined: every VM switch asks, and a CPU is rarely idle.)
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        public static void KickIdle()
        {
            if (IdleCount != 0) KickIdleCpus();
        }

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
        private static void KickIdleCpus()
        {
            PhysicalCpu me = This;
            for (int i = 0; i < s_cpus.Length; i++)
            {
                PhysicalCpu cpu = s_cpus[i];
                if (cpu != me && cpu.Idle && cpu.Online) Gic.SendSgi(cpu.Mpidr, KickIntid);
            }
        }
    }
}
