using Hypervisor.Arch;
using Hypervisor.Smp;

namespace Hypervisor.Vm
{
    // What the hypervisor's own work costs each VM, counted by the hardware,
    // never by a guest. PMU event counter 0 counts instructions retired at
    // EL2 only (boot/sysreg.s): while a guest runs it stands still, so its
    // advance between two readings is exactly the hypervisor's work in
    // between: exit entry, dispatch, handlers, restore, and the scheduler.
    //
    // Readings are taken when a vCPU comes into a CPU (Start), when it
    // leaves, and at every scheduling point while it stays (Charge): the
    // instructions in between are its VM's. The idle loop is nobody's
    // (Scheduler.IdleUntilRunnable charges before it and starts again
    // after). Nothing is read on the exit path itself, so counting costs the
    // exits nothing; the price is that the scheduler's work at a switch goes
    // to the VM that leaves.
    //
    // The counter exists where PMCR_EL0.N > 0 and counts where PMCEID0_EL0
    // says event 0x08 is implemented (QEMU: only with -icount). It is 32
    // bits wide on Armv8.0 PMUs; differences are taken modulo 2^32, which
    // is right as long as a vCPU is charged at least every 4 billion EL2
    // instructions (every slice is far less).
    public static class El2Clock
    {
        public static bool Available;

        private const ulong InstRetired = 1UL << 8;   // PMCEID0_EL0 bit for event 0x08

        public static void Init()
        {
            Available = ((SysReg.ReadPmcrEl0() >> 11) & 0x1f) != 0 && (SysReg.ReadPmceid0El0() & InstRetired) != 0;
        }

        private static uint Now() => (uint)SysReg.ReadPmevcntr0El0();

        // A reading for Since: the parts of a balloon VM's work are timed
        // this way (VmCounters.El2Balloon*), around the code that does them.
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        public static uint Mark() => Available ? Now() : 0;

        // Instructions at EL2 since `mark` (0 without the counter).
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        public static ulong Since(uint mark) => Available ? Now() - mark : 0;

        // `cpu` starts counting for the vCPU it has just loaded.
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        public static void Start(PhysicalCpu cpu)
        {
            if (Available) cpu.El2Mark = Now();
        }

        // The loaded vCPU's VM gets what the CPU did since the last reading.
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        public static void Charge(PhysicalCpu cpu)
        {
            Vcpu loaded = cpu.Loaded;
            if (!Available || loaded == null) return;
            uint now = Now();
            loaded.Vm.Counters.El2Instructions += now - cpu.El2Mark;
            cpu.El2Mark = now;
        }
    }
}
