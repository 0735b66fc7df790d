using Hypervisor.Arch;

namespace Hypervisor.Vm
{
    // Every EL2 control register the hypervisor relies on, and who writes it.
    // On real hardware most of them come out of reset UNKNOWN (QEMU zeroes
    // them, which hides the bug), so none may be left as it was found:
    //
    //   SCTLR_EL2, MAIR/TCR/TTBR0_EL2   boot/mmu.s (the hypervisor's own MMU)
    //   VBAR_EL2, CPTR_EL2              boot/head.s (vectors; FP/SIMD not trapped,
    //                                   SVE and SME trapped: they are hidden;
    //                                   the activity monitors too, here, if present)
    //   HCR_EL2, HSTR_EL2, HACR_EL2,
    //   CNTHCTL_EL2,
    //   CNTVOFF_EL2, VPIDR_EL2,
    //   VTCR_EL2, VTTBR_EL2             here, once (HCR, CNTVOFF, VMPIDR and the
    //                                   stage-2 pair again for each VM on Load)
    //   MDCR_EL2                        DebugState.InitCpu (PMU and debug ownership)
    //   ICH_HCR_EL2, ICC_SRE_EL2        VgicCpu.InitCpu, Gic.InitCpu
    // Each CPU writes its own (InitCpu), as it comes up.
    //   CNTHP_CTL/CVAL_EL2              HypTimer (armed for each slice)
    //   HCRX_EL2, the fine-grained
    //   trap registers, MPAM's          here, those the CPU has
    //                                   (kernel/Arch/FeatureRegisters.cs)
    public static class El2Setup
    {
        private const ulong LorField = 0xfUL << 16;   // ID_AA64MMFR1_EL1.LO
        private const ulong RasField = 0xfUL << 28;   // ID_AA64PFR0_EL1.RAS
        private const ulong AmuField = 0xfUL << 44;   // ID_AA64PFR0_EL1.AMU
        private const ulong CptrTam = 1UL << 30;      // CPTR_EL2.TAM: trap the activity monitors

        // HCR_EL2 trap bits that exist only with their feature (RES0 without):
        // every VM gets them (VmBuilder), since the ID registers hide the feature.
        public static ulong FeatureTraps;

        // Once, on the boot CPU: what is decided for every CPU, then its own registers.
        public static void Init()
        {
            ulong mmfr1 = SysReg.ReadIdAa64Mmfr1El1(), pfr0 = SysReg.ReadIdAa64Pfr0El1();
            // Features the ID registers hide whose registers EL1 would reach
            // untrapped: the LORegions, the RAS error records, the activity
            // monitors. Trapped, they are undefined instructions for the guest.
            FeatureTraps = ((mmfr1 & LorField) != 0 ? Hcr.TLOR : 0) | ((pfr0 & RasField) != 0 ? Hcr.TERR : 0);
            DebugState.Init(Mdcr.Boot(SysReg.ReadPmcrEl0(), SysReg.ReadIdAa64Dfr0El1()));
            for (int i = 0; i < IdRegisters.Count; i++) IdRegisters.Decided[i] = IdRegisters.Sanitize(i, SysReg.ReadIdRegister((ulong)i));
            InitCpu();
        }

        // Every CPU, for itself (these registers are per CPU): the boot CPU
        // from Init, the others as they come up (kernel/Smp/Cpus.cs).
        public static void InitCpu()
        {
            // No guest yet: EL1 would be AArch64, nothing else asked.
            SysReg.WriteHcrEl2(Hcr.RW);
            // No trap of AArch32 CP15 registers by number: EL1 is AArch64, and
            // what the hypervisor hides it hides through the ID registers.
            SysReg.WriteHstrEl2(0);
            // The implementation-defined traps: none.
            SysReg.WriteHacrEl2(0);
            // HCRX_EL2 (every enable off), the fine-grained traps (none of
            // what guests may use, all of what the ID registers hide) and
            // MPAM's controls, where the CPU has them.
            ulong mmfr1 = SysReg.ReadIdAa64Mmfr1El1(), pfr0 = SysReg.ReadIdAa64Pfr0El1();
            ulong pfr1 = SysReg.ReadIdRegister(IdRegisters.Aa64Pfr1);
            ulong mpamidr = FeatureRegisters.HasMpam(pfr0, pfr1) ? SysReg.ReadMpamidrEl1() : 0;
            uint present = FeatureRegisters.Present(SysReg.ReadIdAa64Mmfr0El1(), mmfr1, pfr0, pfr1, mpamidr);
            for (int n = 0; n < (int)FeatureRegister.Count; n++)
                if ((present & (1u << n)) != 0) SysReg.WriteFeatureRegister((ulong)n, FeatureRegisters.Value((FeatureRegister)n));
            if ((pfr0 & AmuField) != 0) SysReg.WriteCptrEl2(SysReg.ReadCptrEl2() | CptrTam);
            // EL1 may read the physical counter (EL1PCTEN) but not program the
            // physical timer (EL1PCEN = 0): that traps (SystemRegisterTraps).
            SysReg.WriteCnthctlEl2(1);
            SysReg.WriteCntvoffEl2(0);
            SysReg.WriteVpidrEl2(SysReg.ReadMidrEl1());   // guests see the real CPU model
            SysReg.WriteVtcrEl2(0);
            SysReg.WriteVttbrEl2(0);
            DebugState.InitCpu();
            SysReg.StartCycleCounter();
            El2Clock.Init();
        }
    }
}
