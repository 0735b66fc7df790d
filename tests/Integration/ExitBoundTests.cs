using System.Text.RegularExpressions;
using Hypervisor.Tests.Support;
using Xunit;

namespace Hypervisor.Tests.Integration
{
    // Hostile guests that ask for a lot of work in one exit: the work per exit
    // is bounded, so a neighbour's timer still wakes it on time, and nothing
    // the hostile guest asked for is lost.
    [Trait("Category", "Integration")]
    public class ExitBoundTests
    {
        private static long Field(string line, string key) => long.Parse(Regex.Match(line, key + @"=(\d+)").Groups[1].Value);

        // f fills all 256 slots of a 256-entry inflate queue with one chain
        // of 4096 page numbers and notifies, 30 times (about a million page
        // numbers per notify); t beside it sleeps 300 times for 1 ms on its
        // virtual timer and reports its worst lateness. Virtual time is
        // instructions (-icount), so the figures do not depend on the host.
        // With the balloon's per-exit budget t is at most about 0.1 ms late;
        // without it one notify is one exit of about 25 ms, and t waits for it.
        [Fact]
        public void BalloonFloodDoesNotDelayAnotherVmsTimer()
        {
            string conf = GuestConfig.Write(
                "vm f mem=64M image=$ELF balloon=on args=\"role=balloonflood rounds=30\"\n" +
                "vm t mem=32M image=$ELF args=\"role=timerprobe rounds=300 period_us=1000\"\n");
            var r = Qemu.Run(new[] { "--icount", conf }, timeoutSeconds: 180);
            r.AssertPasses("f", "balloon-flood");
            r.AssertPasses("t", "timer-lateness");
            long worstUs = Field(r.Require("[t] TEST timer-lateness"), "worst_us");
            Assert.True(worstUs < 2000, $"t woke up to {worstUs} us late: an exit of f ran that long");
            string f = r.Require("STAT vm=f ");
            // Every slot of every round was taken: 30 x 256 x 4096 page
            // numbers, one inflated, the rest counted as already ballooned.
            Assert.Contains("balloon_inflated=1 ", f);
            Assert.Contains($"balloon_already={30L * 256 * 4096 - 1} ", f);
            Assert.True(Field(f, "balloon_budget_stops") >= 30 * 256 / 2, "the notifies should have been split into many exits");
            Assert.Null(r.Line("[hv] PANIC"));
            Assert.Equal(0, r.ExitCode);
        }
    }
}
