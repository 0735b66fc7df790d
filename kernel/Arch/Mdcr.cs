namespace Hypervisor.Arch
{
    // MDCR_EL2, the Monitor Debug Configuration Register: who owns the PMU
    // and the debug registers (Arm ARM D19.3.15 "MDCR_EL2"). Neither is
    // switched on every exit, so the guest must not reach them unwatched:
    // the PMU is the hypervisor's (guests are told they have none: ID
    // registers, IdRegisters.cs) and the debug registers move with the VM
    // that uses them (kernel/Vm/DebugState.cs).
    public static class Mdcr
    {
        public const ulong HpmnMask = 0x1f;   // event counters in the guest's range: all (they trap anyway)
        public const ulong TPMCR = 1UL << 5;  // trap PMCR_EL0
        public const ulong TPM = 1UL << 6;    // trap every other PMU register: the guest has no PMU
        public const ulong TDA = 1UL << 9;    // trap the debug registers (breakpoints, watchpoints, MDSCR,
                                              // claim tags, DCC) until the VM first uses them
        public const ulong TDOSA = 1UL << 10; // trap the OS lock and power-down registers, the same way
        public const ulong TDRA = 1UL << 11;  // trap the debug ROM address register: it reads as zero
        public const ulong TPMS = 1UL << 14;  // trap the statistical profiling (SPE) registers (FEAT_SPE only)
        public const ulong TTRF = 1UL << 19;  // trap the trace filter controls (FEAT_TRF only)
        // E2PB and E2TB left 0: the profiling and trace buffers belong to EL2,
        // and EL1's accesses to their registers trap.

        public const ulong DebugTraps = TDA | TDOSA;

        // At boot, from PMCR_EL0 (its N counters) and ID_AA64DFR0_EL1 (which
        // of the feature-dependent traps exist: RES0 bits stay 0). SPE and
        // trace are hidden from guests (IdRegisters.cs); these make their
        // registers undefined too, instead of reachable and shared.
        public static ulong Boot(ulong pmcr, ulong dfr0)
        {
            ulong mdcr = ((pmcr >> 11) & HpmnMask) | TPMCR | TPM | TDRA | DebugTraps;
            if (((dfr0 >> 32) & 0xf) != 0) mdcr |= TPMS;   // PMSVer
            if (((dfr0 >> 40) & 0xf) != 0) mdcr |= TTRF;   // TraceFilt
            return mdcr;
        }
    }
}
