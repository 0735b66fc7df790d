using System.Runtime;
using System.Runtime.CompilerServices;
using Hypervisor.Arch;

namespace Hypervisor.Vm
{
    // The debug registers: breakpoints and watchpoints (DBGB/W{V,C}R<n>_EL1)
    // and the OS lock. (MDSCR_EL1, which enables them, is in every vCPU's
    // context already: boot/context.s.) They are EL1 state a guest
    // programs for itself, and the world switch does not save them on every
    // exit: left in the CPU, one VM's breakpoints would fire in the next, and
    // the next could read them back. So they belong to the VM that uses them,
    // and only such VMs pay for moving them:
    //
    //   a VM starts trapped (MDCR_EL2.TDA, TDOSA): its first access to any of
    //     them exits, the hypervisor loads the VM's own values (all clear, the
    //     OS lock locked, as after a reset) and stops trapping, and the access
    //     runs again, natively. Linux takes that exit once, when it unlocks
    //     the OS lock at boot; the C# guest never does.
    //   on a VM switch (Load): the CPU's current owner's values are saved if
    //     the next VM is someone else; the next VM gets its own values if it
    //     is an owner, or a clean set (nothing enabled, OS lock locked) and
    //     the traps again if it is not.
    //   a stopped or reset VM's values are dropped; a clean set is loaded if
    //     they were in the CPU.
    //
    // MDRAR_EL1 (the debug ROM's address, MDCR_EL2.TDRA) always traps and reads
    // as zero: there is no memory-mapped debug for a guest.
    //
    // Not moved: the claim tags (DBGCLAIMSET/CLR_EL1), eight bits of software
    // convention, because QEMU does not model them (even at EL2 they are an
    // undefined instruction there); two owner VMs on real hardware see each
    // other's claim bits. Nor the DCC (DBGDTR*, MDCCSR), a channel to an
    // external debugger that holds no state of the guest's own.
    public sealed unsafe class DebugState
    {
        [RuntimeImport("*", "debug_save")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void SaveHardware(ulong* words, int breakpoints, int watchpoints);
        [RuntimeImport("*", "debug_restore")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void RestoreHardware(ulong* words, int breakpoints, int watchpoints);

        private const int Words = 65, OsLockWord = 64;
        private static int s_breakpoints, s_watchpoints;
        private static ulong s_mdcr;                  // MDCR_EL2 without the debug traps
        private static DebugState s_clean;            // what a VM that is not an owner finds
        // Whose values a CPU holds (null: the clean set): PhysicalCpu.DebugInCpu.

        private readonly ulong[] _words = new ulong[Words];
        public bool InUse;                            // this VM has touched its debug registers
        public ulong Claims;                          // times it took ownership (once per boot/reset)

        public DebugState() => Reset();

        // Once, at boot: the CPU's numbers of breakpoints and watchpoints, a
        // clean set loaded, and MDCR_EL2 (the PMU the hypervisor's, debug
        // registers trapped until a VM uses them).
        public static void Init(ulong mdcr)
        {
            ulong dfr0 = SysReg.ReadIdAa64Dfr0El1();
            s_breakpoints = (int)((dfr0 >> 12) & 0xf) + 1;
            s_watchpoints = (int)((dfr0 >> 20) & 0xf) + 1;
            s_mdcr = mdcr & ~Mdcr.DebugTraps;
            s_clean = new DebugState();
        }

        // Every CPU as it comes up: the clean set loaded, the traps on.
        public static void InitCpu() => LoadClean(Hypervisor.Smp.Cpus.This);

        public void Reset()
        {
            for (int i = 0; i < Words; i++) _words[i] = 0;
            _words[OsLockWord] = 1;
            InUse = false;
            if (Hypervisor.Smp.Cpus.This.DebugInCpu == this) LoadClean(Hypervisor.Smp.Cpus.This);
        }

        // The VM's first access to a trapped debug register. Returns with its
        // values in the CPU and the traps off: the access is to run again.
        public void TakeOwnership()
        {
            InUse = true;
            Claims++;
            Switch(this);
        }

        // A vCPU leaves this CPU: its values go back to it, and the CPU gets
        // the clean set, so a vCPU that next runs on another CPU finds its own.
        // Inlined into every switch: a CPU with the clean set has nothing to do.
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        public static void PutDown(Hypervisor.Smp.PhysicalCpu cpu)
        {
            if (cpu.DebugInCpu != null) PutDownOwned(cpu);
        }

        private static void PutDownOwned(Hypervisor.Smp.PhysicalCpu cpu)
        {
            fixed (ulong* w = cpu.DebugInCpu._words) SaveHardware(w, s_breakpoints, s_watchpoints);
            LoadClean(cpu);
        }

        // VM switch: make `next` the VM whose debug view the CPU shows.
        public static void Switch(DebugState next) => Switch(next, Hypervisor.Smp.Cpus.This);

        // Inlined into every switch: the common case, neither VM ever touched
        // its debug registers, costs two loads.
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        public static void Switch(DebugState next, Hypervisor.Smp.PhysicalCpu cpu)
        {
            if (cpu.DebugInCpu != next && (cpu.DebugInCpu != null || next.InUse)) SwitchOwned(next, cpu);
        }

        private static void SwitchOwned(DebugState next, Hypervisor.Smp.PhysicalCpu cpu)
        {
            DebugState inCpu = cpu.DebugInCpu;
            if (inCpu != null) fixed (ulong* w = inCpu._words) SaveHardware(w, s_breakpoints, s_watchpoints);
            if (next.InUse)
            {
                fixed (ulong* w = next._words) RestoreHardware(w, s_breakpoints, s_watchpoints);
                cpu.DebugInCpu = next;
                SysReg.WriteMdcrEl2(s_mdcr);
            }
            else if (inCpu != null)
            {
                LoadClean(cpu);
            }
        }

        private static void LoadClean(Hypervisor.Smp.PhysicalCpu cpu)
        {
            fixed (ulong* w = s_clean._words) RestoreHardware(w, s_breakpoints, s_watchpoints);
            cpu.DebugInCpu = null;
            SysReg.WriteMdcrEl2(s_mdcr | Mdcr.DebugTraps);
        }
    }
}
