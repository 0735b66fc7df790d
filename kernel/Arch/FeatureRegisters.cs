namespace Hypervisor.Arch
{
    // The EL2 control registers that exist only with their feature. Like the
    // others (kernel/Vm/El2Setup.cs) they come out of reset UNKNOWN on real
    // hardware, and QEMU's zeros hide that; a CPU model without the feature
    // hides the code too, so host tests check the plan (FeatureRegistersTests).
    // Each CPU writes every one its ID registers say it has, as it comes up;
    // El2Setup.InitCpu writes them, through boot/sysreg.s
    // write_feature_register, which takes the index of this enum.
    //
    //   HCRX_EL2 (FEAT_HCX)         0: every enable off (TCR2_EL1, SCTLR2_EL1,
    //                               MOPS, LS64, FPMR, the 128-bit registers...),
    //                               which the ID registers hide (IdRegisters)
    //   HFGRTR, HFGWTR, HFGITR,
    //   HDFGRTR, HDFGWTR_EL2        0 (FEAT_FGT); the five ..2_EL2 ones 0 too
    //                               (FEAT_FGT2). A fine-grained trap bit named
    //                               after a register traps it when 1; one named
    //                               nXXX (nPIR_EL1, nPOR_EL1, nGCS_EL1,
    //                               nACCDATA_EL1, nBRBCTL_EL1...) traps when 0.
    //                               All zero: nothing a guest may use is trapped
    //                               finely (HCR_EL2 and MDCR_EL2 decide), and the
    //                               registers of newer features, which the ID
    //                               registers hide and the world switch does not
    //                               move, trap and become undefined instructions
    //                               (SystemRegisterTraps). Left as found, a
    //                               register like PIR_EL1 could be written by one
    //                               VM and read by the next.
    //   MPAM2_EL2 (FEAT_MPAM)       TRAPMPAM0EL1 | TRAPMPAM1EL1: MPAM is hidden,
    //                               and no VM may choose its own cache and
    //                               bandwidth partition
    //   MPAMHCR_EL2 (if HAS_HCR)    TRAP_MPAMIDR_EL1 only: MPAMIDR_EL1 traps too,
    //                               and no virtual partition mapping
    //   MPAM1_EL1, MPAM0_EL1        0: guests' accesses in the default partition
    //
    // Writing them at EL2 needs firmware to have let EL2 have them
    // (SCR_EL3.HXEn, FGTEn, FGTEn2; MPAM3_EL3.TRAPLOWER = 0): Linux's arm64
    // boot protocol asks that of firmware, and this image boots by it.
    public enum FeatureRegister
    {
        Hcrx, Hfgrtr, Hfgwtr, Hfgitr, Hdfgrtr, Hdfgwtr,
        Hfgrtr2, Hfgwtr2, Hfgitr2, Hdfgrtr2, Hdfgwtr2,
        Mpam2, Mpamhcr, Mpam1El1, Mpam0El1,
        Count
    }

    public static class FeatureRegisters
    {
        public const ulong TrapMpam1El1 = 1UL << 48, TrapMpam0El1 = 1UL << 49;   // MPAM2_EL2
        public const ulong TrapMpamidrEl1 = 1UL << 31;                          // MPAMHCR_EL2
        public const ulong MpamidrHasHcr = 1UL << 17;                           // MPAMIDR_EL1.HAS_HCR

        // FEAT_MPAM, as ID_AA64PFR0_EL1.MPAM (major) or ID_AA64PFR1_EL1.MPAM_frac (v0.1) says.
        public static bool HasMpam(ulong pfr0, ulong pfr1) => IdRegisters.Field(pfr0, 40) != 0 || IdRegisters.Field(pfr1, 16) != 0;

        // The registers this CPU has (bit n: FeatureRegister n), from its
        // ID_AA64MMFR0/MMFR1/PFR0/PFR1_EL1, and MPAMIDR_EL1 where it has MPAM
        // (0 otherwise).
        public static uint Present(ulong mmfr0, ulong mmfr1, ulong pfr0, ulong pfr1, ulong mpamidr)
        {
            uint present = 0;
            if (IdRegisters.Field(mmfr1, 40) != 0) present |= Bit(FeatureRegister.Hcrx);
            ulong fgt = IdRegisters.Field(mmfr0, 56);
            if (fgt >= 1) present |= Range(FeatureRegister.Hfgrtr, FeatureRegister.Hdfgwtr);
            if (fgt >= 2) present |= Range(FeatureRegister.Hfgrtr2, FeatureRegister.Hdfgwtr2);
            if (HasMpam(pfr0, pfr1))
            {
                present |= Bit(FeatureRegister.Mpam2) | Bit(FeatureRegister.Mpam1El1) | Bit(FeatureRegister.Mpam0El1);
                if ((mpamidr & MpamidrHasHcr) != 0) present |= Bit(FeatureRegister.Mpamhcr);
            }
            return present;
        }

        // The value each is given.
        public static ulong Value(FeatureRegister register)
        {
            if (register == FeatureRegister.Mpam2) return TrapMpam0El1 | TrapMpam1El1;
            if (register == FeatureRegister.Mpamhcr) return TrapMpamidrEl1;
            return 0;
        }

        private static uint Bit(FeatureRegister r) => 1u << (int)r;
        private static uint Range(FeatureRegister first, FeatureRegister last) => ((1u << ((int)last + 1)) - 1) & ~((1u << (int)first) - 1);
    }
}
