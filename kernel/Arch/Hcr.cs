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
        public const ulong TSC = 1UL << 19;  // trap SMC: the guest must not reach the real firmware at EL3
        public const ulong TIDCP = 1UL << 20; // trap the implementation-defined registers (op0=3, CRn 11 and 15):
                                              // a CPU's own controls (caches, prefetch, errata) are not the guest's
        public const ulong TACR = 1UL << 21; // trap ACTLR_EL1, the implementation-defined auxiliary control, for
                                             // the same reason; it reads as zero and ignores writes
        public const ulong TTLB = 1UL << 25; // trap guest TLB maintenance (shadow paging)
        public const ulong TVM = 1UL << 26;  // trap guest writes to translation registers (shadow paging)
        public const ulong TRVM = 1UL << 30; // trap guest reads of translation registers (shadow paging)
        public const ulong RW = 1UL << 31;   // EL1 is AArch64
        public const ulong TLOR = 1UL << 35; // trap the LORegions registers (FEAT_LOR only; hidden, so undefined)
        public const ulong TERR = 1UL << 36; // trap the RAS error records (FEAT_RAS only): another VM's errors
                                             // and the CPU's own are not the guest's

        // What every VM in stage-2 paging mode runs with.
        public const ulong GuestDefault = VM | SWIO | FMO | IMO | AMO | FB | BSU_Inner | TWI | TWE | TID3 | TSC | TIDCP | TACR | RW;
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
