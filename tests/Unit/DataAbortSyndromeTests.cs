using Hypervisor.Arch;
using Xunit;

namespace Hypervisor.Tests.Unit
{
    public class DataAbortSyndromeTests
    {
        // Builds an ESR_EL2 value from its fields, following the layout in
        // kernel/Arch/DataAbortSyndrome.cs, so each constant below is checked
        // against the field positions rather than trusted.
        private static ulong Esr(uint ec, bool il = true, bool isv = false, int sas = 0, bool sse = false,
                                 int srt = 0, bool sf = false, bool ar = false, bool vncr = false,
                                 bool fnv = false, bool ea = false, bool cm = false, bool s1ptw = false,
                                 bool wnr = false, uint fsc = 0)
        {
            ulong esr = (ulong)ec << 26;
            if (il) esr |= 1UL << 25;
            if (isv) esr |= 1UL << 24;
            esr |= (ulong)sas << 22;
            if (sse) esr |= 1UL << 21;
            esr |= (ulong)srt << 16;
            if (sf) esr |= 1UL << 15;
            if (ar) esr |= 1UL << 14;
            if (vncr) esr |= 1UL << 13;
            if (fnv) esr |= 1UL << 10;
            if (ea) esr |= 1UL << 9;
            if (cm) esr |= 1UL << 8;
            if (s1ptw) esr |= 1UL << 7;
            if (wnr) esr |= 1UL << 6;
            return esr | fsc;
        }

        [Fact]
        public void ComposedValuesMatchTheConstants()
        {
            // LDR x0 from an unmapped IPA, translation fault at level 0.
            Assert.Equal(0x93c08004UL, Esr(0x24, isv: true, sas: 3, sf: true, fsc: 0x04));
            // Some ISV=0 store (a pair, say), translation fault at level 2.
            Assert.Equal(0x92000046UL, Esr(0x24, wnr: true, fsc: 0x06));
            // STR w1, translation fault level 3.
            Assert.Equal(0x93810047UL, Esr(0x24, isv: true, sas: 2, srt: 1, wnr: true, fsc: 0x07));
            // LDRSH w2, permission fault level 3.
            Assert.Equal(0x9362000fUL, Esr(0x24, isv: true, sas: 1, sse: true, srt: 2, fsc: 0x0f));
            // LDAR x3, translation fault level 1.
            Assert.Equal(0x93c3c005UL, Esr(0x24, isv: true, sas: 3, srt: 3, sf: true, ar: true, fsc: 0x05));
            // The hypervisor's own null dereference (ExceptionClassTests).
            Assert.Equal(0x97c08006UL, Esr(0x25, isv: true, sas: 3, sf: true, fsc: 0x06));
            // Instruction abort from EL1 on a stage-1 walk, translation level 3.
            Assert.Equal(0x82000087UL, Esr(0x20, s1ptw: true, fsc: 0x07));
        }

        [Fact]
        public void DecodesAValidLoadSyndrome()
        {
            var s = new DataAbortSyndrome(0x93c08004);
            Assert.True(s.IsDataAbort);
            Assert.False(s.IsInstructionAbort);
            Assert.Equal(ExceptionClass.DataAbortLowerEl, s.Class);
            Assert.True(s.Is32BitInstruction);
            Assert.Equal(4, s.InstructionLength);
            Assert.True(s.IsInstructionSyndromeValid);
            Assert.Equal(3, s.AccessSizeLog2);
            Assert.Equal(8, s.AccessSize);
            Assert.False(s.SignExtend);
            Assert.Equal(0, s.RegisterNumber);
            Assert.True(s.Register64Bit);
            Assert.False(s.AcquireRelease);
            Assert.False(s.IsWrite);
            Assert.False(s.FarNotValid);
            Assert.False(s.OnStage1TableWalk);
            Assert.Equal(0x04u, s.StatusCode);
            Assert.Equal(FaultKind.Translation, s.Status.Kind);
            Assert.True(s.Status.HasLevel);
            Assert.Equal(0, s.Status.Level);
            Assert.True(s.Status.IsTranslation);
        }

        [Fact]
        public void DecodesASyndromeWithoutInstructionSyndrome()
        {
            var s = new DataAbortSyndrome(0x92000046);
            Assert.True(s.IsDataAbort);
            Assert.False(s.IsInstructionSyndromeValid);
            Assert.True(s.IsWrite);
            Assert.Equal(FaultKind.Translation, s.Status.Kind);
            Assert.Equal(2, s.Status.Level);
            Assert.Equal("translation fault, level 2", FaultStatusCode.Name(s.StatusCode));
        }

        [Fact]
        public void DecodesSignExtendingHalfwordLoad()
        {
            var s = new DataAbortSyndrome(0x9362000f);
            Assert.Equal(2, s.AccessSize);
            Assert.True(s.SignExtend);
            Assert.Equal(2, s.RegisterNumber);
            Assert.False(s.Register64Bit);
            Assert.False(s.IsWrite);
            Assert.True(s.Status.IsPermission);
            Assert.Equal(3, s.Status.Level);
        }

        [Fact]
        public void DecodesStoreAndAcquireRelease()
        {
            var store = new DataAbortSyndrome(0x93810047);
            Assert.True(store.IsWrite);
            Assert.Equal(4, store.AccessSize);
            Assert.Equal(1, store.RegisterNumber);

            var ldar = new DataAbortSyndrome(0x93c3c005);
            Assert.True(ldar.AcquireRelease);
            Assert.Equal(3, ldar.RegisterNumber);
            Assert.Equal(1, ldar.Status.Level);
        }

        [Fact]
        public void DecodesTheSingleBitFlags()
        {
            Assert.True(new DataAbortSyndrome(Esr(0x24, fnv: true)).FarNotValid);
            Assert.True(new DataAbortSyndrome(Esr(0x24, ea: true)).ExternalAbort);
            Assert.True(new DataAbortSyndrome(Esr(0x24, cm: true)).CacheMaintenance);
            Assert.True(new DataAbortSyndrome(Esr(0x24, s1ptw: true)).OnStage1TableWalk);
            Assert.True(new DataAbortSyndrome(Esr(0x24, vncr: true)).Vncr);
            Assert.True(new DataAbortSyndrome(Esr(0x24, ar: true)).AcquireRelease);

            // Each flag alone: no other accessor sees it.
            var fnv = new DataAbortSyndrome(0x92000410);
            Assert.True(fnv.FarNotValid);
            Assert.False(fnv.ExternalAbort);
            Assert.False(fnv.CacheMaintenance);
            Assert.False(fnv.IsWrite);
            Assert.Equal(FaultKind.SynchronousExternal, fnv.Status.Kind);
            Assert.False(fnv.Status.HasLevel);
        }

        [Fact]
        public void DecodesInstructionAborts()
        {
            var lower = new DataAbortSyndrome(0x82000087);
            Assert.True(lower.IsInstructionAbort);
            Assert.False(lower.IsDataAbort);
            Assert.True(lower.OnStage1TableWalk);
            Assert.Equal(FaultKind.Translation, lower.Status.Kind);
            Assert.Equal(3, lower.Status.Level);

            var same = new DataAbortSyndrome(0x8600000d);
            Assert.Equal(ExceptionClass.InstructionAbortSameEl, same.Class);
            Assert.True(same.IsInstructionAbort);
            Assert.Equal("permission fault, level 1", FaultStatusCode.Name(same.StatusCode));
        }

        [Fact]
        public void InstructionLengthFollowsIl()
        {
            var s = new DataAbortSyndrome(Esr(0x24, il: false, fsc: 0x06));
            Assert.Equal(0x90000006UL, s.Esr);
            Assert.False(s.Is32BitInstruction);
            Assert.Equal(2, s.InstructionLength);
        }

        [Fact]
        public void OtherExceptionClassesAreNeitherAbort()
        {
            var hvc = new DataAbortSyndrome(0x5a000000);
            Assert.False(hvc.IsDataAbort);
            Assert.False(hvc.IsInstructionAbort);
        }

        [Theory]
        [InlineData(0x00u, FaultKind.AddressSize, true, 0)]
        [InlineData(0x03u, FaultKind.AddressSize, true, 3)]
        [InlineData(0x04u, FaultKind.Translation, true, 0)]
        [InlineData(0x05u, FaultKind.Translation, true, 1)]
        [InlineData(0x06u, FaultKind.Translation, true, 2)]
        [InlineData(0x07u, FaultKind.Translation, true, 3)]
        [InlineData(0x08u, FaultKind.AccessFlag, true, 0)]
        [InlineData(0x0bu, FaultKind.AccessFlag, true, 3)]
        [InlineData(0x0cu, FaultKind.Permission, true, 0)]
        [InlineData(0x0fu, FaultKind.Permission, true, 3)]
        [InlineData(0x10u, FaultKind.SynchronousExternal, false, 0)]
        [InlineData(0x11u, FaultKind.TagCheck, false, 0)]
        [InlineData(0x12u, FaultKind.SynchronousExternalOnWalk, true, -2)]
        [InlineData(0x13u, FaultKind.SynchronousExternalOnWalk, true, -1)]
        [InlineData(0x14u, FaultKind.SynchronousExternalOnWalk, true, 0)]
        [InlineData(0x17u, FaultKind.SynchronousExternalOnWalk, true, 3)]
        [InlineData(0x18u, FaultKind.ParityOrEcc, false, 0)]
        [InlineData(0x1bu, FaultKind.ParityOrEccOnWalk, true, -1)]
        [InlineData(0x1du, FaultKind.ParityOrEccOnWalk, true, 1)]
        [InlineData(0x21u, FaultKind.Alignment, false, 0)]
        [InlineData(0x22u, FaultKind.GranuleProtectionOnWalk, true, -2)]
        [InlineData(0x23u, FaultKind.GranuleProtectionOnWalk, true, -1)]
        [InlineData(0x26u, FaultKind.GranuleProtectionOnWalk, true, 2)]
        [InlineData(0x28u, FaultKind.GranuleProtection, false, 0)]
        [InlineData(0x29u, FaultKind.AddressSize, true, -1)]
        [InlineData(0x2au, FaultKind.Translation, true, -2)]
        [InlineData(0x2bu, FaultKind.Translation, true, -1)]
        [InlineData(0x2cu, FaultKind.AddressSize, true, -2)]
        [InlineData(0x30u, FaultKind.TlbConflict, false, 0)]
        [InlineData(0x31u, FaultKind.UnsupportedAtomicUpdate, false, 0)]
        [InlineData(0x34u, FaultKind.ImplementationDefined, false, 0)]
        [InlineData(0x35u, FaultKind.ImplementationDefined, false, 0)]
        [InlineData(0x19u, FaultKind.Reserved, false, 0)]
        [InlineData(0x20u, FaultKind.Reserved, false, 0)]
        [InlineData(0x3fu, FaultKind.Reserved, false, 0)]
        public void ClassifiesFaultStatusCodes(uint code, FaultKind kind, bool hasLevel, int level)
        {
            FaultStatus status = FaultStatusCode.Classify(code);
            Assert.Equal(kind, status.Kind);
            Assert.Equal(hasLevel, status.HasLevel);
            if (hasLevel) Assert.Equal(level, status.Level);
        }

        [Theory]
        [InlineData(0x04u, "translation fault, level 0")]
        [InlineData(0x07u, "translation fault, level 3")]
        [InlineData(0x09u, "access flag fault, level 1")]
        [InlineData(0x0eu, "permission fault, level 2")]
        [InlineData(0x01u, "address size fault, level 1")]
        [InlineData(0x2bu, "translation fault")]
        [InlineData(0x10u, "synchronous external abort")]
        [InlineData(0x15u, "synchronous external abort on table walk")]
        [InlineData(0x21u, "alignment fault")]
        [InlineData(0x30u, "TLB conflict abort")]
        [InlineData(0x3fu, "reserved fault status")]
        public void NamesFaultStatusCodes(uint code, string name)
        {
            Assert.Equal(name, FaultStatusCode.Name(code));
        }

        [Fact]
        public void EveryCodeAndKindHasAName()
        {
            for (uint code = 0; code < 64; code++) Assert.False(string.IsNullOrEmpty(FaultStatusCode.Name(code)));
            for (int kind = 0; kind <= (int)FaultKind.ImplementationDefined; kind++)
                Assert.False(string.IsNullOrEmpty(FaultStatusCode.KindName((FaultKind)kind)));
        }

        [Theory]
        // The PL011 on QEMU virt at IPA 0x09000000: HPFAR holds IPA[51:12] = 0x9000
        // in bits [43:4], i.e. 0x90000; the guest VA's low 12 bits give the offset.
        [InlineData(0x0000000000090000UL, 0xffff000008000018UL, 0x0000000009000018UL)]
        // HPFAR_EL2.NS (bit 63) and the RES0 bits [3:0] do not leak into the IPA.
        [InlineData(0x800000000009000fUL, 0x0000000000000ffcUL, 0x0000000009000ffcUL)]
        // The top of a 52-bit IPA space: every FIPA bit set.
        [InlineData(0x00000ffffffffff0UL, 0x0000000000000123UL, 0x000ffffffffff123UL)]
        // Page-aligned access: FAR's page bits are ignored entirely.
        [InlineData(0x0000000000401230UL, 0x0000000012345000UL, 0x0000000040123000UL)]
        public void ComputesTheFaultingIpa(ulong hpfar, ulong far, ulong ipa)
        {
            Assert.Equal(ipa, DataAbortSyndrome.IntermediatePhysicalAddress(hpfar, far));
        }
    }
}
