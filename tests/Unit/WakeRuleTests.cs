using Hypervisor.Vm;
using Xunit;

namespace Hypervisor.Tests.Unit
{
    // What Scheduler.Notice does for a vCPU (kernel/Vm/WakeRule.cs): the
    // decision that keeps wake-ups and CPU_ON from being lost between CPUs.
    public class WakeRuleTests
    {
        [Theory]
        [InlineData(VmState.Running)]
        [InlineData(VmState.Waiting)]
        [InlineData(VmState.Off)]
        public void AVcpuInAnotherCpuGetsThatCpuKicked(VmState state)
        {
            Assert.Equal(Wake.KickItsCpu, WakeRule.For(state, loadedSomewhere: true, loadedHere: false, poweredOn: true, vmEnding: false));
            // In this CPU: the exit path refills its list registers itself.
            Assert.Equal(Wake.Nothing, WakeRule.For(state, loadedSomewhere: true, loadedHere: true, poweredOn: true, vmEnding: false));
        }

        [Fact]
        public void AWaitingVcpuInNoCpuBecomesRunnable()
        {
            Assert.Equal(Wake.MakeRunnable, WakeRule.For(VmState.Waiting, false, false, poweredOn: true, vmEnding: false));
            Assert.Equal(Wake.Nothing, WakeRule.For(VmState.Runnable, false, false, true, false));
            Assert.Equal(Wake.Nothing, WakeRule.For(VmState.Stopped, false, false, true, true));
        }

        [Fact]
        public void AnOffVcpuRunsOnlyOnceTheGuestTurnedItOnAndItsVmGoesOn()
        {
            Assert.Equal(Wake.MakeRunnable, WakeRule.For(VmState.Off, false, false, poweredOn: true, vmEnding: false));
            Assert.Equal(Wake.Nothing, WakeRule.For(VmState.Off, false, false, poweredOn: false, vmEnding: false));   // an SGI to an off vCPU
            Assert.Equal(Wake.Nothing, WakeRule.For(VmState.Off, false, false, poweredOn: true, vmEnding: true));    // put off by a stop or reset
        }

        // vCPU 1 calls CPU_OFF on CPU A; before A has put it down, vCPU 0
        // turns it on again from CPU B. Played in both orders of who takes
        // the scheduler lock first: it ends runnable either way.
        [Theory]
        [InlineData(true)]
        [InlineData(false)]
        public void CpuOnRacingCpuOffIsNotLost(bool onNoticedBeforeUnload)
        {
            var state = VmState.Running;
            bool loaded = true, poweredOn = false;        // A's handler: CPU_OFF
            poweredOn = true;                             // B's handler: CPU_ON
            if (onNoticedBeforeUnload)
                Assert.Equal(Wake.KickItsCpu, WakeRule.For(state, loaded, loadedHere: false, poweredOn, vmEnding: false));
            // A's TurnOff: off, out of the CPU, then its own notice.
            state = VmState.Off;
            loaded = false;
            Wake afterUnload = WakeRule.For(state, loaded, false, poweredOn, false);
            Assert.Equal(Wake.MakeRunnable, afterUnload);
            state = VmState.Runnable;
            if (!onNoticedBeforeUnload)
                Assert.Equal(Wake.Nothing, WakeRule.For(state, loaded, false, poweredOn, false));   // B's notice comes late: nothing twice
        }
    }
}
