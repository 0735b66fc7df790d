using Hypervisor.Arch;
using Xunit;

namespace Hypervisor.Tests.Unit
{
    public class ExceptionClassTests
    {
        [Theory]
        [InlineData(0x97c08006UL, 0x25u, "data abort at EL2")]
        [InlineData(0x02000000UL, 0x00u, "unknown reason (undefined instruction)")]
        [InlineData(0x5a000000UL, 0x16u, "HVC")]
        [InlineData(0x93c08004UL, 0x24u, "data abort from a lower EL")]
        [InlineData(0xf2000000UL, 0x3cu, "BRK instruction")]
        public void DecodesClassAndName(ulong esr, uint ec, string name)
        {
            Assert.Equal(ec, ExceptionClass.Of(esr));
            Assert.Equal(name, ExceptionClass.Name(ec));
        }

        // WFx's ISS.TI: WFIT and WFET (FEAT_WFxT, hidden from guests) are
        // the two with a timeout, WFE and WFET the two that yield.
        [Theory]
        [InlineData(0x06000000UL, false, false)]   // WFI (EC 0x01, IL set)
        [InlineData(0x06000001UL, true, false)]    // WFE
        [InlineData(0x06000002UL, false, true)]    // WFIT
        [InlineData(0x06000003UL, true, true)]     // WFET
        public void WfxKindsFromTheSyndrome(ulong esr, bool wfe, bool timeout)
        {
            Assert.Equal(wfe, ExceptionClass.IsWfe(esr));
            Assert.Equal(timeout, ExceptionClass.IsWfxWithTimeout(esr));
        }

        [Fact]
        public void EveryClassHasAName()
        {
            for (uint ec = 0; ec < 64; ec++) Assert.False(string.IsNullOrEmpty(ExceptionClass.Name(ec)));
        }

        // The exits of features a guest is not given get an undefined
        // instruction (GuestExits' default case asks IsAbsentFeature before it
        // stops a VM): exactly these classes, and none the hypervisor handles
        // itself or that only EL2's own code raises.
        [Fact]
        public void AbsentFeatureTrapsAreExactlyThese()
        {
            var absent = new System.Collections.Generic.HashSet<uint> { 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0c, 0x14, 0x19, 0x1d };
            for (uint ec = 0; ec < 64; ec++)
                Assert.Equal(absent.Contains(ec), ExceptionClass.IsAbsentFeature(ec));
            foreach (uint handled in new[] { ExceptionClass.Unknown, ExceptionClass.WfiWfe, ExceptionClass.Hvc64, ExceptionClass.Smc64,
                                             ExceptionClass.SysReg64, ExceptionClass.DataAbortLowerEl, ExceptionClass.InstructionAbortLowerEl })
                Assert.False(ExceptionClass.IsAbsentFeature(handled));
        }
    }
}
