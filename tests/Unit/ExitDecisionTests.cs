using Hypervisor.Vm;
using Xunit;

namespace Hypervisor.Tests.Unit
{
    // The run loop acts on what a handler returns (kernel/Vm/ExitAction.cs):
    // these are the decisions it is given.
    public class ExitDecisionTests
    {
        [Theory]
        [InlineData(ExitAction.Resume)]
        [InlineData(ExitAction.Yield)]
        [InlineData(ExitAction.Wait)]
        [InlineData(ExitAction.Reset)]
        public void ARecordedStopWinsOverWhatTheHandlerReturned(ExitAction returned)
        {
            Assert.Equal(ExitAction.Stop, ExitDecision.Final(returned, "shadow page pool exhausted"));
        }

        [Theory]
        [InlineData(ExitAction.Resume)]
        [InlineData(ExitAction.Yield)]
        [InlineData(ExitAction.Wait)]
        [InlineData(ExitAction.Stop)]
        [InlineData(ExitAction.Reset)]
        public void WithoutARequestTheHandlersAnswerStands(ExitAction returned)
        {
            Assert.Equal(returned, ExitDecision.Final(returned, null));
        }

        [Fact]
        public void WfiWaitsOnlyWhenNothingIsPending()
        {
            Assert.Equal(ExitAction.Wait, ExitDecision.ForWfi(interruptPending: false));
            Assert.Equal(ExitAction.Resume, ExitDecision.ForWfi(interruptPending: true));
        }

        [Fact]
        public void YieldGivesTheCpuAwayOnlyToSomeone()
        {
            Assert.Equal(ExitAction.Yield, ExitDecision.ForYield(othersRunnable: true));
            Assert.Equal(ExitAction.Resume, ExitDecision.ForYield(othersRunnable: false));
        }
    }
}
