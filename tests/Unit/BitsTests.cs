using Hypervisor.Arch;
using Xunit;

namespace Hypervisor.Tests.Unit
{
    public class BitsTests
    {
        // Every position, alone and with every bit above it set too.
        [Fact]
        public void LowestSetBitFindsEveryPosition()
        {
            for (int i = 0; i < 64; i++)
            {
                Assert.Equal(i, Bits.LowestSetBit(1UL << i));
                Assert.Equal(i, Bits.LowestSetBit(ulong.MaxValue << i));
                Assert.Equal(i, Bits.LowestSetBit((1UL << i) | (1UL << 63)));
            }
        }
    }
}
