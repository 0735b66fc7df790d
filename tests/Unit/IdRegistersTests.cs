using Hypervisor.Arch;
using Xunit;

namespace Hypervisor.Tests.Unit
{
    // What a guest reads of the feature ID registers (kernel/Arch/IdRegisters.cs).
    public class IdRegistersTests
    {
        private static ulong Field(ulong value, int shift) => (value >> shift) & 0xf;

        [Fact]
        public void HiddenFeaturesReadAsAbsentWhateverTheCpuHas()
        {
            ulong dfr0 = IdRegisters.Sanitize(IdRegisters.Aa64Dfr0, ~0UL);
            Assert.Equal(0UL, Field(dfr0, 8));    // PMUVer
            Assert.Equal(0UL, Field(dfr0, 4));    // TraceVer
            Assert.Equal(0UL, Field(dfr0, 32));   // PMSVer (SPE)
            Assert.Equal(0UL, Field(dfr0, 44));   // TraceBuffer
            Assert.Equal(0UL, Field(dfr0, 52));   // BRBE
            ulong pfr0 = IdRegisters.Sanitize(IdRegisters.Aa64Pfr0, ~0UL);
            foreach (int shift in new[] { 28, 32, 36, 40, 44, 52 }) Assert.Equal(0UL, Field(pfr0, shift));   // RAS SVE SEL2 MPAM AMU RME
            ulong pfr1 = IdRegisters.Sanitize(IdRegisters.Aa64Pfr1, ~0UL);
            Assert.Equal(0UL, Field(pfr1, 8));    // MTE
            Assert.Equal(0UL, Field(pfr1, 24));   // SME
            ulong isar1 = IdRegisters.Sanitize(IdRegisters.Aa64Isar1, ~0UL);
            foreach (int shift in new[] { 4, 8, 24, 28 }) Assert.Equal(0UL, Field(isar1, shift));   // APA API GPA GPI
            Assert.Equal(0UL, IdRegisters.Sanitize(IdRegisters.Aa64Zfr0, ~0UL));
            Assert.Equal(0UL, IdRegisters.Sanitize(IdRegisters.Aa64Smfr0, ~0UL));
            Assert.Equal(0UL, Field(IdRegisters.Sanitize(IdRegisters.Aa64Mmfr1, ~0UL), 16));   // LO
            Assert.Equal(0UL, Field(IdRegisters.Sanitize(IdRegisters.IdDfr0, ~0UL), 24));      // PerfMon
        }

        // Features whose enables HCRX_EL2 = 0 turns off, whose registers the
        // world switch does not move, or whose instructions the hypervisor
        // would answer wrongly: absent, whatever the CPU has.
        [Fact]
        public void NewerFeaturesTheHypervisorTurnsOffReadAsAbsent()
        {
            ulong isar1 = IdRegisters.Sanitize(IdRegisters.Aa64Isar1, ~0UL);
            Assert.Equal(0UL, Field(isar1, 60));                       // LS64
            ulong isar2 = IdRegisters.Sanitize(IdRegisters.Aa64Isar2, ~0UL);
            foreach (int shift in new[] { 0, 8, 12, 16, 24, 32, 36 })  // WFxT GPA3 APA3 MOPS PAC_frac SYSREG_128 SYSINSTR_128
                Assert.Equal(0UL, Field(isar2, shift));
            Assert.Equal(0xfUL, Field(isar2, 20));                     // BC: an instruction like any other
            Assert.Equal(0xfUL, Field(isar2, 52));                     // CSSC
            foreach (int index in new[] { IdRegisters.Aa64Pfr2, IdRegisters.Aa64Fpfr0, IdRegisters.Aa64Mmfr3, IdRegisters.Aa64Mmfr4 })
                Assert.Equal(0UL, IdRegisters.Sanitize(index, ~0UL));
            // Hardware Access-flag update in table entries (HAFT, 3) needs
            // TCR2_EL1: at most hardware dirty-bit management (2) is left.
            Assert.Equal(2UL, Field(IdRegisters.Sanitize(IdRegisters.Aa64Mmfr1, 3), 0));
            Assert.Equal(2UL, Field(IdRegisters.Sanitize(IdRegisters.Aa64Mmfr1, 4), 0));
            Assert.Equal(1UL, Field(IdRegisters.Sanitize(IdRegisters.Aa64Mmfr1, 1), 0));
            // Debug v8.9 (0xB) brings MDSELR_EL1, which is not switched.
            Assert.Equal(0xAUL, Field(IdRegisters.Sanitize(IdRegisters.Aa64Dfr0, 0xB), 0));
            Assert.Equal(0x9UL, Field(IdRegisters.Sanitize(IdRegisters.Aa64Dfr0, 0x9), 0));
            // CSV2_2 and CSV2_1p2 bring SCXTNUM_ELx, which are not switched.
            Assert.Equal(1UL, Field(IdRegisters.Sanitize(IdRegisters.Aa64Pfr0, 2UL << 56), 56));
            Assert.Equal(1UL, Field(IdRegisters.Sanitize(IdRegisters.Aa64Pfr0, 1UL << 56), 56));
            Assert.Equal(1UL, Field(IdRegisters.Sanitize(IdRegisters.Aa64Pfr1, 2UL << 32), 32));
            // PARange: the VM's 40-bit IPA space (0b0010), whatever the host has.
            Assert.Equal(2UL, Field(IdRegisters.Sanitize(IdRegisters.Aa64Mmfr0, 0x1125), 0));   // 48-bit host
            Assert.Equal(0x1122UL, IdRegisters.Sanitize(IdRegisters.Aa64Mmfr0, 0x1124));          // cortex-a72, 44 bits
            Assert.Equal(40, Hypervisor.Mm.Stage2Layout.PARangeBits((uint)Field(IdRegisters.Sanitize(IdRegisters.Aa64Mmfr0, 6), 0)));
            // The rest of the capped register is untouched (LO, 19:16, is 0 here).
            Assert.Equal(0x1111_1111_1120_1122UL, IdRegisters.Sanitize(IdRegisters.Aa64Mmfr1, 0x1111_1111_1120_1122UL));
        }

        [Fact]
        public void WhatTheGuestMayUseIsPassedAsItIs()
        {
            // cortex-a72's ID_AA64DFR0_EL1: debug v8, 6 breakpoints, 4 watchpoints, PMUv3.
            ulong dfr0 = IdRegisters.Sanitize(IdRegisters.Aa64Dfr0, 0x10305106);
            Assert.Equal(0x10305006UL, dfr0);
            ulong pfr0 = 0x0000_0000_0100_2222UL;   // EL0-EL3 AArch64/32, FP, AdvSIMD, GIC sysregs
            Assert.Equal(pfr0, IdRegisters.Sanitize(IdRegisters.Aa64Pfr0, pfr0));
            ulong isar0 = 0x0000_0000_0001_1120UL;
            Assert.Equal(isar0, IdRegisters.Sanitize(40, isar0));
        }

        [Theory]
        [InlineData(3, 0, 0, 1, true)]    // ID_PFR0_EL1
        [InlineData(3, 0, 0, 7, true)]    // ID_AA64MMFR*
        [InlineData(3, 0, 0, 0, false)]   // MIDR_EL1 and friends: not TID3's
        [InlineData(3, 0, 0, 8, false)]
        [InlineData(3, 1, 0, 1, false)]
        public void TheTrappedSpaceIsCrm1To7(int op0, int op1, int crn, int crm, bool id)
        {
            Assert.Equal(id, IdRegisters.IsIdRegister(op0, op1, crn, crm));
        }

        // MDCR_EL2 at boot: the PMU and debug traps always; SPE's and the
        // trace filter's only where the CPU has them (RES0 otherwise).
        [Fact]
        public void MdcrTrapsWhatExistsAndNothingElse()
        {
            ulong pmcr = 6UL << 11;                                   // six event counters
            ulong plain = Mdcr.Boot(pmcr, 0x10305106);               // cortex-a72: no SPE, no TRF
            Assert.Equal(6UL, plain & Mdcr.HpmnMask);
            Assert.Equal(Mdcr.TPM | Mdcr.TPMCR | Mdcr.TDA | Mdcr.TDOSA | Mdcr.TDRA, plain & ~Mdcr.HpmnMask);
            ulong withSpe = Mdcr.Boot(pmcr, 0x10305106 | 1UL << 32 | 1UL << 40);
            Assert.Equal(Mdcr.TPMS | Mdcr.TTRF, withSpe & ~plain);
        }
    }
}
