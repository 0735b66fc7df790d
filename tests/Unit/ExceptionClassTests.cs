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

        [Fact]
        public void EveryClassHasAName()
        {
            for (uint ec = 0; ec < 64; ec++) Assert.False(string.IsNullOrEmpty(ExceptionClass.Name(ec)));
        }
    }
}
