using Hypervisor.Tests.Support;
using Xunit;

namespace Hypervisor.Tests.Integration
{
    // The virtual GIC against a hostile guest: SGIs routed every way (only
    // those naming this vCPU may become pending), thousands of random reads
    // and writes over its distributor and redistributor (8 and 32 bits, any
    // offset, reserved space too) and random values in the SGI registers. Each completes or aborts; that VM and the
    // one beside it carry on, and nothing panics.
    [Trait("Category", "Integration")]
    public class VirtualGicTests
    {
        [Fact]
        public void RandomGicAccessesAffectOnlyThatVm()
        {
            string conf = GuestConfig.Write(
                "vm f mem=32M image=$ELF args=\"role=gicfuzz\"\n" +
                "vm g mem=32M image=$ELF args=\"tests=uart,demand,walk\"\n");
            var r = Qemu.Run(new[] { conf });
            string verdict = r.Require("[f] TEST gicfuzz PASS");
            Assert.Contains("accesses=6000", verdict);
            Assert.Contains("sgi_writes=3000 sgi_routing=self-only", verdict);
            foreach (var t in new[] { "uart", "demand", "walk" }) r.AssertPasses("g", t);
            Assert.Null(r.Line("[hv] PANIC"));
            Assert.Equal(r.Stat("frames_free_start"), r.Stat("frames_free_end"));
        }

        // One VM leaves everything it can in the CPU interface: an active
        // priority that masks every interrupt, list registers full and more
        // SGIs waiting (ICH_HCR_EL2.UIE), then yields and powers off. The VM
        // beside it sleeps on its timer twenty times, and after the first has
        // nothing else to run: with ICH_AP1R0 carried over its timer would
        // never be taken; with ICH_HCR_EL2 left enabled after the stop the
        // maintenance interrupt would hold the idle CPU forever.
        [Fact]
        public void NoCpuInterfaceStateCrossesVmsOrOutlivesOne()
        {
            string conf = GuestConfig.Write(
                "vm left mem=32M image=$ELF args=\"role=gicleftovers\"\n" +
                "vm sleep mem=32M image=$ELF args=\"role=sleeper\"\n");
            var r = Qemu.Run(new[] { conf }, timeoutSeconds: 60);
            Assert.EndsWith("yes", r.Require("[left] gicleftovers:"));
            r.Require("[hv] vm left stopped: SYSTEM_OFF");
            r.AssertPasses("sleep", "sleeper");
            Assert.Contains("foreign_active_priorities=0", r.Require("[sleep] TEST sleeper"));
            Assert.Null(r.Line("[hv] PANIC"));
            Assert.Equal(0, r.ExitCode);
        }

        // The emulated physical timer's deadline passes while its VM waits
        // for the CPU behind a spinner: its line is high when it runs again,
        // not a slice later.
        [Fact]
        public void APhysicalTimerDueWhileDescheduledIsPendingOnReturn()
        {
            string conf = GuestConfig.Write(
                "vm t mem=32M image=$ELF args=\"role=ptimerswitch\"\n" +
                "vm s mem=32M image=$ELF args=\"role=spin\"\n");
            var r = Qemu.Run(new[] { "--smp", "1", conf }, timeoutSeconds: 60,
                stopWhen: lines => System.Linq.Enumerable.Any(lines, l => l.StartsWith("[t] TEST ptimerswitch", System.StringComparison.Ordinal)));
            r.AssertPasses("t", "ptimerswitch");
            Assert.Null(r.Line("[hv] PANIC"));
        }
    }
}
