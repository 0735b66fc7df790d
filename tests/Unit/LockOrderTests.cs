using Hypervisor.Smp;
using Xunit;

namespace Hypervisor.Tests.Unit
{
    // The written lock order (kernel/Smp/LockOrder.cs): what a CPU may take
    // given what it holds.
    public class LockOrderTests
    {
        [Fact]
        public void ALockIsNeverTakenTwiceByOneCpu()
        {
            var held = new HeldLocks();
            Assert.True(held.TryTake(LockRank.Scheduler));
            Assert.True(held.Holds(LockRank.Scheduler));
            Assert.False(held.TryTake(LockRank.Scheduler));   // a ticket lock would wait for itself
            held.Released(LockRank.Scheduler);
            Assert.False(held.Any);
            Assert.True(held.TryTake(LockRank.Scheduler));
        }

        [Fact]
        public void OnlyLaterRanksMayBeTakenWhileHoldingOne()
        {
            // Ranks after Scheduler may nest inside it; nothing may be taken
            // while something of a later rank is held.
            Assert.True(LockOrder.MayTake(1u << 1, (LockRank)2));
            Assert.False(LockOrder.MayTake(1u << 2, LockRank.Scheduler));
            Assert.False(LockOrder.MayTake(1u << 2, (LockRank)2));
            Assert.True(LockOrder.MayTake(0, LockRank.Scheduler));
        }
    }
}
