using Hypervisor.Vm;
using Xunit;

namespace Hypervisor.Tests.Unit
{
    // The scheduler wakes a waiting VM when the physical counter reaches its
    // virtual timer's deadline: CVAL + CNTVOFF, which must not wrap.
    public class VirtualTimerDeadlineTests
    {
        private const ulong On = VirtualTimerDeadline.Enable;
        private const ulong Offset = 0x1234_5678_9abc;

        [Fact]
        public void AnOrdinaryDeadlineIsCvalPlusTheOffset()
        {
            Assert.Equal(1000 + Offset, VirtualTimerDeadline.Physical(On, 1000, Offset));
        }

        [Theory]
        [InlineData(ulong.MaxValue)]
        [InlineData(ulong.MaxValue - 5)]
        [InlineData(ulong.MaxValue - Offset + 1)]
        public void ACvalNearTwoToTheSixtyFourIsNeverNotNow(ulong cval)
        {
            ulong deadline = VirtualTimerDeadline.Physical(On, cval, Offset);
            Assert.Equal(VirtualTimerDeadline.Never, deadline);
        }

        [Fact]
        public void TheLastReachableDeadlineStillCounts()
        {
            Assert.Equal(ulong.MaxValue, VirtualTimerDeadline.Physical(On, ulong.MaxValue - Offset, Offset));
            Assert.Equal(ulong.MaxValue - 1, VirtualTimerDeadline.Physical(On, ulong.MaxValue - Offset - 1, Offset));
        }

        [Theory]
        [InlineData(0UL)]                                    // disabled
        [InlineData(VirtualTimerDeadline.Enable | VirtualTimerDeadline.Imask)]
        public void AnOffOrMaskedTimerNeverFires(ulong ctl)
        {
            Assert.Equal(VirtualTimerDeadline.Never, VirtualTimerDeadline.Physical(ctl, 1000, Offset));
        }
    }
}
