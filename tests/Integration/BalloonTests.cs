using System.Linq;
using System.Text.RegularExpressions;
using Hypervisor.Tests.Support;
using Xunit;

namespace Hypervisor.Tests.Integration
{
    // The virtio balloon: the seed's demo, hostile drivers, leak-free cycles,
    // and the monitor that sets targets by hand.
    [Trait("Category", "Integration")]
    public class BalloonTests
    {
        private static long FreeAfter(string line) => long.Parse(Regex.Match(line, @"host frames free (\d+)").Groups[1].Value);

        // A gives 128 MiB back; B, booted with 128 MiB in its balloon, takes
        // them and uses them. The host has 512 MiB: both VMs at full size would
        // not fit; the balloon makes that overcommit safe.
        [Fact]
        public void SeedDemoMoves128MiBFromAToB()
        {
            var r = Qemu.Run(new[] { "--mem", "512M", Repo.Path("guest", "configs", "balloon.conf") }, timeoutSeconds: 180);
            r.AssertPasses("a", "balloon-giver");
            r.AssertPasses("b", "balloon-taker");
            Assert.Contains("given_pages=32768", r.Require("[a] TEST balloon-giver"));
            Assert.Contains("touch=abort", r.Require("[a] TEST balloon-giver"));          // a ballooned page faults
            Assert.Contains("extra_pages=32768", r.Require("[b] TEST balloon-taker"));   // 128 MiB more than before
            Assert.Contains("nonzero_words=0", r.Require("[b] TEST balloon-taker"));     // A's pattern scrubbed
            // The host is small enough that b runs out of clean frames and gets
            // some of a's, scrubbed as they are handed out: the check above
            // looked at those too.
            Assert.True(r.Stat("frames_scrubbed_on_allocation") > 0, "b should have reused frames a gave");

            // The host's free frames rise by exactly what A gave and fall as B uses it.
            long asking = FreeAfter(r.Require("[hv] balloon_move: asking vm a"));
            long received = FreeAfter(r.Require("[hv] balloon_move: received from vm a"));
            Assert.Equal(32768, received - asking);
            long inUse = FreeAfter(r.Require("[hv] balloon_move: in use by vm b"));
            Assert.True(received - inUse >= 32768);

            // Unmapping is batched (kernel/Mm/TlbBatchRule.cs): a request of
            // 1024 pages is past the per-page limit of 512, so its first 512
            // pages get a TLBI IPAS2E1IS each and the request ends with one
            // VMALLS12E1IS (32 requests, and one more at teardown).
            string a = r.Require("STAT vm=a ");
            Assert.Contains("tlbi_ipas2e1is=16384", a);
            Assert.Contains("tlbi_vmalle1is=0", a);
            Assert.Contains("tlbi_vmalls12e1is=33", a);
            Assert.Contains("balloon_frames_returned=32768", a);
            Assert.Equal(r.Stat("frames_free_start"), r.Stat("frames_free_end"));
            Assert.Equal(0, r.ExitCode);
        }

        // A driver that breaks every rule, a driver that inflates and deflates
        // 1000 times, and an ordinary VM, all at once.
        [Fact]
        public void HostileDriversAreCountedAndCyclesLeakNothing()
        {
            string conf = GuestConfig.Write(
                "vm h mem=64M image=$ELF balloon=on args=\"role=balloonfuzz\"\n" +
                "vm c mem=64M image=$ELF balloon=on args=\"role=ballooncycles\"\n" +
                "vm g mem=64M image=$ELF args=\"tests=demand,remap,walk\"\n");
            var r = Qemu.Run(new[] { conf }, timeoutSeconds: 180);
            r.AssertPasses("h", "balloon-hostile");
            r.AssertPasses("c", "balloon-cycles");
            foreach (var t in new[] { "demand", "remap", "walk" }) r.AssertPasses("g", t);

            string h = r.Require("STAT vm=h ");
            Assert.Contains("balloon_bad_pfns=3", h);            // page 0, 0xffffffff, one past RAM
            Assert.Contains("balloon_already=2", h);             // the same page twice in a request, and again
            Assert.Contains("balloon_not_ballooned=2", h);       // deflate of pages never inflated
            Assert.Contains("virtq_malformed=5", h);             // outside RAM, own ring, MMIO, past the end, loop
            Assert.Contains("balloon_malformed=8", h);           // those five, a device-writable buffer, an oversized one, a ragged one
            Assert.Contains("virtio_queue_refused=1", h);        // queue size 3
            Assert.Contains("virtio_queue_rewrite_refused=1", h); // QueueNum written while the queue is live
            Assert.Contains("virtio_notify_bad_queue=1", h);
            Assert.Contains("ballooned_touches=5", h);           // q, one page between two kept ones, three of the 1024-page request

            string c = r.Require("STAT vm=c ");
            Assert.Contains("balloon_pages=0", c);
            Assert.Matches(@"balloon_inflated=(\d+) balloon_deflated=\1 balloon_frames_returned=\1 ", c);
            Assert.Equal(r.Stat("frames_free_start"), r.Stat("frames_free_end"));
            Assert.Equal(r.Stat("heap_used_start"), r.Stat("heap_used_end"));
            Assert.Null(r.Line("[hv] PANIC"));
        }

        // Ctrl-T gives the console to the VM: what is typed then reaches its
        // emulated UART; Ctrl-T again brings the monitor back.
        [Fact]
        public void ConsoleFocusMovesBetweenMonitorAndVm()
        {
            string conf = GuestConfig.Write("vm e mem=32M image=$ELF args=\"role=echo\"\n");
            var r = Qemu.Run(new[] { conf }, timeoutSeconds: 60, input: new[]
            {
                ("[e] echo: type a line", "vms\r\u0014hello vm\r"),
                ("[e] echo: got 'hello vm'", "\u0014vms\r\u0014bye\r"),
            });
            r.Require("[hv] console focus: vm e");
            r.Require("[e] echo: got 'hello vm'");
            r.Require("[hv] console focus: monitor");
            Assert.Equal(2, r.Lines.Count(l => l.StartsWith("[hv] monitor> vms")));   // typed while the monitor had focus
            r.Require("[e] echo: got 'bye'");
            Assert.Null(r.Line("[e] echo: got 'vms'"));
            Assert.Equal(0, r.ExitCode);
        }

        // Thousands of random reads and writes over the emulated UART and the
        // virtio window, aligned or not: each completes or aborts, the
        // hypervisor and the other VM carry on, and the device works after a reset.
        [Fact]
        public void RandomMmioAccessesGetDefinedAnswers()
        {
            string conf = GuestConfig.Write(
                "vm m mem=64M image=$ELF balloon=on args=\"role=mmiofuzz\"\n" +
                "vm g mem=64M image=$ELF args=\"tests=uart,demand,psci\"\n");
            var r = Qemu.Run(new[] { conf }, timeoutSeconds: 120);
            r.AssertPasses("m", "mmiofuzz");
            foreach (var t in new[] { "uart", "demand", "psci" }) r.AssertPasses("g", t);
            Assert.True(r.Stat("injected_aborts") > 100, "the fuzzer should have hit refused accesses");
            Assert.Null(r.Line("[hv] PANIC"));
            Assert.Equal(0, r.ExitCode);
        }

        // The monitor on the serial console: list VMs, set a balloon target by
        // hand (the guest follows it), show counters and a walk, reject junk.
        [Fact]
        public void MonitorSetsTargetsAndShowsState()
        {
            string conf = GuestConfig.Write("vm a mem=128M image=$ELF balloon=on args=\"role=follow\"\n");
            var r = Qemu.Run(new[] { conf }, timeoutSeconds: 120, input: new[]
            {
                ("[a] balloon: driver ok", "vms\rballoon a 64M\r"),
                ("[a] TEST balloon-follow ", "stats a\rwalk a 0x40080000\rfrobnicate\rballoon nobody 1M\rballoon a 0\r"),
            });
            Assert.Matches(@"\[hv\] vm a (running|runnable) mem=128MiB vmid=\d+ cpu=\d+ paging=stage2 frames=\d+ ballooned_pages=0", r.Require("[hv] vm a r"));
            r.Require("[hv] host frames free=");
            r.Require("[hv] balloon a: target 16384 pages (64MiB)");
            Assert.Contains("pages=16384", r.Require("[a] TEST balloon-follow PASS"));
            Assert.Contains("balloon_pages=16384", r.Lines.First(l => l.StartsWith("STAT vm=a ") && l.Contains("balloon_pages=16384")));
            r.Require("[hv] walk vm=a gva=0x0000000040080000");
            r.Require("[hv] monitor: unknown command 'frobnicate'");
            r.Require("[hv] monitor: no VM named 'nobody'");
            r.Require("[hv] balloon a: target 0 pages");
            r.AssertPasses("a", "balloon-follow-back");
            Assert.Equal(0, r.ExitCode);
        }
    }
}
