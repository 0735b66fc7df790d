using Hypervisor.Tests.Support;
using Xunit;

namespace Hypervisor.Tests.Integration
{
    // Memory a VM gave to its balloon, or never got (boot_balloon), stays out
    // of its reach however it asks.
    [Trait("Category", "Integration")]
    public class BalloonDebtTests
    {
        // The remap test service must not map a ballooned page again: its
        // frame went back to the host. After a deflate it may.
        [Fact]
        public void RemapRefusesABalloonedPage()
        {
            string conf = GuestConfig.Write("vm r mem=32M image=$ELF balloon=on args=\"role=remapballooned\"\n");
            var r = Qemu.Run(new[] { conf });
            r.AssertPasses("r", "remap-ballooned");
            Assert.Contains("remap_refused=1 ", r.Require("STAT vm=r "));
            Assert.Equal(r.Stat("frames_free_start"), r.Stat("frames_free_end"));
            Assert.Equal(0, r.ExitCode);
        }

        // A VM booted with 8201 of its 16384 pages in the balloon, whose guest
        // never inflates, touches every page: it gets frames for at most the
        // 8183 it was given, then aborts; the remap service refuses to back
        // another page too. 8183 is no multiple of 64: fault-around must stop
        // inside a window.
        [Fact]
        public void BootBalloonIsEnforcedWithoutADriver()
        {
            string conf = GuestConfig.Write(
                "vm o mem=64M image=$ELF balloon=on boot_balloon=32804K fault_around=64 args=\"role=bootballoon\"\n" +
                "vm g mem=32M image=$ELF args=\"tests=demand\"\n");
            var r = Qemu.Run(new[] { conf });
            r.AssertPasses("o", "boot-balloon");
            r.AssertPasses("g", "demand");
            string o = r.Require("STAT vm=o ");
            long peak = long.Parse(System.Text.RegularExpressions.Regex.Match(o, @"frames_peak=(\d+)").Groups[1].Value);
            Assert.True(peak <= 16384 - 8201, $"vm o owned {peak} frames, more than the 8183 it was given");
            Assert.Contains("balloon_owed_pages=8201 ", o);
            Assert.Matches(@"balloon_owed_refused=[1-9]\d* ", o);
            Assert.Contains("remap_refused=1 ", o);
            Assert.Equal(r.Stat("frames_free_start"), r.Stat("frames_free_end"));
            Assert.Equal(0, r.ExitCode);
        }
    }
}
