using Hypervisor.Mm;

namespace Hypervisor.Arch
{
    // What a guest is told about its CPU. With HCR_EL2.TID3 every read of
    // the feature ID registers (op0=3, op1=0, CRn=0, CRm=1..7) exits here, and
    // the guest sees the real value with every feature the hypervisor does not
    // virtualize taken out. A feature left in would be a promise: its
    // registers would hold state that crosses from one VM to the next, or its
    // instructions would trap with nobody to answer.
    //
    //   hidden (field reads as "not implemented"):
    //     PMU (PMUVer, AArch32 PerfMon)   the hypervisor counts with it
    //                                     itself; its registers trap (MDCR_EL2.TPM/TPMCR)
    //                                     and give the guest an undefined instruction
    //     SPE, TRBE, trace, BRBE          profiling and trace buffers write to memory
    //                                     behind stage 2's back
    //     SVE, SME                        their registers are not switched
    //     MTE, RAS, AMU, MPAM, SEL2, RME,
    //     LOR, NMI, GCS and the rest of
    //     ID_AA64PFR1 but BTI and SSBS     state or traps the hypervisor does not handle
    //     pointer authentication          its keys are EL1 registers not switched
    //     what HCRX_EL2 = 0 turns off     MOPS, LS64, the 128-bit system registers and
    //                                     instructions, FPMR and FP8 (ID_AA64PFR2,
    //                                     ID_AA64FPFR0), TCR2/SCTLR2 and everything
    //                                     else ID_AA64MMFR3 and MMFR4 describe (PIE,
    //                                     POE, AIE, D128...): their registers are
    //                                     EL1 state not switched, and with FEAT_FGT
    //                                     the fine-grained traps (El2Setup) make them
    //                                     undefined instructions
    //     WFET/WFIT (WFxT)                the WFx exit keeps no timeout: they are
    //                                     undefined instructions (GuestExits)
    //     hardware update of the Access
    //     flag in table entries (HAFT)    needs TCR2_EL1; HAFDBS reads at most "DBM"
    //     Debugv8p9                       MDSELR_EL1 is not switched; DebugVer reads
    //                                     at most v8.8
    //     SCXTNUM_EL0/EL1 (CSV2_2,        not switched, and HCR_EL2.EnSCXT = 0 traps
    //     CSV2_1p2)                       them: CSV2 and CSV2_frac read at most 1
    //   capped: PARange                   at the VM's 40-bit IPA space (Stage2Layout)
    //   passed as they are: everything else (the base ISA, atomics, crypto,
    //     debug breakpoints and watchpoints, which move with the VM that uses
    //     them, the memory model fields, the GIC system-register interface).
    public static class IdRegisters
    {
        // Index n = (CRm - 1) * 8 + op2 of the register (boot/sysreg.s
        // read_id_register reads the real one: SysReg.ReadIdRegister).
        public const int IdPfr0 = 0, IdDfr0 = 2;
        public const int Aa64Pfr0 = 24, Aa64Pfr1 = 25, Aa64Pfr2 = 26, Aa64Zfr0 = 28, Aa64Smfr0 = 29, Aa64Fpfr0 = 31;
        public const int Aa64Dfr0 = 32, Aa64Dfr1 = 33, Aa64Isar1 = 41, Aa64Isar2 = 42;
        public const int Aa64Mmfr0 = 48, Aa64Mmfr1 = 49, Aa64Mmfr3 = 51, Aa64Mmfr4 = 52;
        public const int Count = 56;

        // What every guest reads, decided once at boot from the boot CPU's
        // registers (El2Setup.Init): the same values on every vCPU wherever
        // it runs, and a trapped read is one table lookup. (Linux reads
        // ID_AA64ISAR0_EL1 tens of thousands of times while it boots, before
        // its CPU features are final: each read is an exit.)
        public static readonly ulong[] Decided = new ulong[Count];

        public static bool IsIdRegister(int op0, int op1, int crn, int crm) => op0 == 3 && op1 == 0 && crn == 0 && crm >= 1 && crm <= 7;
        public static int Index(int crm, int op2) => (crm - 1) * 8 + op2;

        // The value a guest sees for the real value `real` (pure: host-tested).
        public static ulong Sanitize(int index, ulong real)
        {
            switch (index)
            {
                case IdPfr0: return real & ~(F(20) | F(28));                       // AMU, RAS (AArch32 view)
                case IdDfr0: return real & ~(F(24));                           // PerfMon
                // RAS, SVE, SEL2, MPAM, AMU, RME; CSV2 at most 1 (2 brings SCXTNUM_ELx)
                case Aa64Pfr0: return AtMost(real & ~(F(28) | F(32) | F(36) | F(40) | F(44) | F(52)), 56, 1);
                // BT, SSBS, CSV2_frac (at most 1: CSV2_1p2 brings SCXTNUM_ELx) only
                case Aa64Pfr1: return AtMost(real & (F(0) | F(4) | F(32)), 32, 1);
                case Aa64Pfr2:
                case Aa64Zfr0:
                case Aa64Smfr0:
                case Aa64Fpfr0:
                case Aa64Dfr1:
                case Aa64Mmfr3:
                case Aa64Mmfr4: return 0;
                // DebugVer (at most v8.8), BRPs, WRPs, CTX_CMPs, DoubleLock
                // only: no PMU, SPE, trace, trace buffer, BRBE, multi-threaded PMU.
                case Aa64Dfr0: return AtMost(real & (F(0) | F(12) | F(20) | F(28) | F(36)), 0, DebugV8p8);
                case Aa64Isar1: return real & ~(F(4) | F(8) | F(24) | F(28) | F(60));             // APA, API, GPA, GPI, LS64
                // WFxT, GPA3, APA3, MOPS, PAC_frac, SYSREG_128, SYSINSTR_128
                case Aa64Isar2: return real & ~(F(0) | F(8) | F(12) | F(16) | F(24) | F(32) | F(36));
                case Aa64Mmfr1: return AtMost(real & ~F(16), 0, HafdbsDirtyBit);       // LO; HAFDBS
                // PARange: the VM's IPA size, not the host's physical one.
                case Aa64Mmfr0: return AtMost(real, 0, Stage2Layout.PARangeForBits(Stage2Layout.GuestIpaBits));
                default: return real;
            }
        }

        // The 4-bit ID field at `shift`: its mask, and its value in `value`.
        private static ulong F(int shift) => 0xFUL << shift;
        public static ulong Field(ulong value, int shift) => (value >> shift) & 0xF;

        private const ulong DebugV8p8 = 0xA, HafdbsDirtyBit = 2;

        // An unsigned ID field capped at `most`: a later version promises
        // everything the earlier ones do and more.
        private static ulong AtMost(ulong value, int shift, ulong most) =>
            Field(value, shift) > most ? (value & ~F(shift)) | (most << shift) : value;
    }
}
