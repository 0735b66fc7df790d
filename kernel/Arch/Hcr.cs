namespace Hypervisor.Arch
{
    // HCR_EL2, the Hypervisor Configuration Register: which guest actions trap
    // to EL2 and how the guest's world is set up. Every bit the hypervisor sets
    // is here, with the reason (Arm ARM D19.2.48 "HCR_EL2").
    public static class Hcr
    {
        public const ulong VM = 1UL << 0;    // stage-2 translation on for EL1&0: the heart of it
        public const ulong SWIO = 1UL << 1;  // data cache invalidate by set/way becomes clean+invalidate:
                                             // a guest must not discard lines that hold another VM's dirty data
        public const ulong FMO = 1UL << 3;   // physical FIQs go to EL2, the guest sees virtual FIQs
        public const ulong IMO = 1UL << 4;   // physical IRQs go to EL2, the guest sees virtual IRQs
        public const ulong AMO = 1UL << 5;   // physical SErrors go to EL2, the guest sees virtual SErrors
        public const ulong FB = 1UL << 9;    // the guest's TLB/cache maintenance is broadcast inner-shareable,
                                             // so it stays correct if its vCPU moves between CPUs
        public const ulong BSU_Inner = 1UL << 10; // the guest's barriers are at least inner-shareable, same reason
        public const ulong TWI = 1UL << 13;  // trap WFI: an idle guest gives the CPU back
        public const ulong TWE = 1UL << 14;  // trap WFE: a spinning guest gives the CPU back
        public const ulong TID3 = 1UL << 18; // trap reads of the feature ID registers: the guest sees the
                                             // features the hypervisor decided it has (IdRegisters.cs)
        public const ulong TSC = 1UL << 19;
        public const ulong TIDCP = 1UL << 20; // trap the implementation-defined registers (op0=3, CRn 11 and 15):
                                              // a CPU's own controls (caches, prefetch, errata) are not the guest's  // trap SMC: the guest must not reach the real firmware at EL3
        public const ulong TTLB = 1UL << 25; // trap guest TLB maintenance (shadow paging)
        public const ulong TVM = 1UL << 26;  // trap guest writes to translation registers (shadow paging)
        public const ulong TRVM = 1UL << 30; // trap guest reads of translation registers (shadow paging)
        public const ulong RW = 1UL << 31;   // EL1 is AArch64
        public const ulong TLOR = 1UL << 35; // trap the LORegions registers (FEAT_LOR only; hidden, so undefined)
        public const ulong TERR = 1UL << 36; // trap the RAS error records (FEAT_RAS only): another VM's errors
                                             // and the CPU's own are not the guest's

        // What every VM in stage-2 paging mode runs with.
        public const ulong GuestDefault = VM | SWIO | FMO | IMO | AMO | FB | BSU_Inner | TWI | TWE | TID3 | TSC | TIDCP | RW;
    }

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

    // SPSR values for entering a guest.
    public static class Pstate
    {
        public const ulong ModeEl1h = 0b0101;        // EL1, using SP_EL1
        public const ulong ModeEl1t = 0b0100;        // EL1, using SP_EL0
        public const ulong ModeEl0t = 0b0000;
        public const ulong DaifMasked = 0xfUL << 6;  // D, A, I, F all masked, as at reset
        public const ulong GuestEntry = ModeEl1h | DaifMasked;
    }
}
