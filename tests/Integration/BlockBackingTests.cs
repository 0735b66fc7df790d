using System.Linq;
using Hypervisor.Tests.Support;
using Xunit;

namespace Hypervisor.Tests.Integration
{
    // backing=blocks (vms.conf): a VM's RAM backed up front by 1 GiB and
    // 2 MiB stage-2 blocks (GuestMemory.BackWithBlocks). Everything the
    // demand-paged VM does must work the same, and the balloon must be able
    // to take single pages out of a block.
    [Trait("Category", "Integration")]
    public class BlockBackingTests
    {
        private static void AssertBlocks(RunResult r, string vm, string shape)
        {
            string line = r.Require($"[hv] vm {vm}: mem=");
            Assert.Contains($"backing=blocks ({shape})", line);
        }

        // The whole self-test suite, on RAM that is 32 blocks of 2 MiB from
        // the start: no demand faults, the same contents, remap and walks
        // through split blocks, and every frame back at the end.
        [Fact]
        public void SelfTestsPassOnBlocks()
        {
            string conf = GuestConfig.Write("vm g mem=64M image=$ELF backing=blocks args=\"tests=all\"\n");
            var r = Qemu.Run(new[] { conf }, timeoutSeconds: 120);
            AssertBlocks(r, "g", "0 x 1G, 32 x 2M, 0 x 4K");
            foreach (string t in new[] { "uart", "demand", "remap", "abort", "isv0", "psci", "walk", "hvc", "badmmio", "fpregs", "ptimer", "timerlevel", "dtbabove" })
                r.AssertPasses("g", t);
            Assert.Contains("stage2_faults=0", r.Require("[g] TEST demand"));
            Assert.Equal(r.Stat("frames_free_start"), r.Stat("frames_free_end"));
            Assert.Equal(0, r.ExitCode);
        }

        // A 1 GiB VM on a host with a free, 1 GiB aligned run gets one level-1
        // block; the remap test then needs one page of it and splits it.
        [Fact]
        public void AGibibyteVmGetsOneLevelOneBlock()
        {
            string conf = GuestConfig.Write("vm g mem=1G image=$ELF backing=blocks args=\"tests=demand,remap,walk\"\n");
            var r = Qemu.Run(new[] { "--mem", "2560M", conf }, timeoutSeconds: 120);
            AssertBlocks(r, "g", "1 x 1G, 0 x 2M, 0 x 4K");
            foreach (string t in new[] { "demand", "remap", "walk" }) r.AssertPasses("g", t);
            Assert.Equal(r.Stat("frames_free_start"), r.Stat("frames_free_end"));
        }

        // The isolation test with the secret in blocks and the snooper in
        // blocks: fresh blocks are zeroed, nothing of A shows in B, also
        // when B's blocks are A's old frames.
        [Theory]
        [InlineData(false)]
        [InlineData(true)]
        public void NoVmSeesAnotherVmsMemory(bool afterA)
        {
            string conf = GuestConfig.Write(
                "vm a mem=64M image=$ELF backing=blocks args=\"role=secret\"\n" +
                $"vm b mem=64M image=$BIN kind=raw backing=blocks args=\"role=snoop{(afterA ? " wait=alone" : "")}\"\n");
            var r = Qemu.Run(new[] { conf }, timeoutSeconds: 120);
            r.AssertPasses("a", "secret");
            r.AssertPasses("b", "snoop");
            Assert.Equal(r.Stat("frames_free_start"), r.Stat("frames_free_end"));
        }

        // The seed's balloon demo with the giver on blocks: its 128 MiB leave
        // page by page, each split out of its block, and the taker gets them.
        [Fact]
        public void BalloonDemoFromABlockBackedVm()
        {
            string conf = GuestConfig.Write(
                "hv balloon_move=a:b:128M\n" +
                "vm a mem=256M image=$ELF balloon=on backing=blocks args=\"role=giver touch=1\"\n" +
                "vm b mem=256M image=$ELF balloon=on boot_balloon=128M args=\"role=taker\"\n");
            var r = Qemu.Run(new[] { "--mem", "640M", conf }, timeoutSeconds: 240);
            AssertBlocks(r, "a", "0 x 1G, 128 x 2M, 0 x 4K");
            r.AssertPasses("a", "balloon-giver");
            r.AssertPasses("b", "balloon-taker");
            Assert.Contains("touch=abort", r.Require("[a] TEST balloon-giver"));
            Assert.Contains("nonzero_words=0", r.Require("[b] TEST balloon-taker"));
            Assert.Contains("balloon_frames_returned=32768", r.Require("STAT vm=a "));
            Assert.Equal(r.Stat("frames_free_start"), r.Stat("frames_free_end"));
        }

        // One page inflated from the middle of a block: it aborts, its two
        // neighbours keep their contents with no new fault, and the block
        // became a table (one block fewer). The rest of the hostile driver's
        // checks pass on blocks too.
        [Fact]
        public void InflatingOnePageSplitsItsBlockAndKeepsTheRest()
        {
            string conf = GuestConfig.Write("vm h mem=64M image=$ELF balloon=on backing=blocks args=\"role=balloonfuzz\"\n");
            var r = Qemu.Run(new[] { conf }, timeoutSeconds: 120);
            r.AssertPasses("h", "balloon-hostile");
            string verdict = r.Require("[h] TEST balloon-hostile");
            Assert.Contains("neighbours=kept block=split", verdict);
            Assert.Contains("big_request=gone", verdict);
            Assert.Equal(r.Stat("frames_free_start"), r.Stat("frames_free_end"));
        }

        // Every reset gives the blocks back and takes them again (the remap
        // test splits one each time): nothing leaks, the heap does not grow.
        [Fact]
        public void ResetsRebuildTheBlocksAndLeakNothing()
        {
            string conf = GuestConfig.Write("vm r mem=32M image=$ELF backing=blocks args=\"tests=demand,remap reset\" resets=20\n");
            var r = Qemu.Run(new[] { conf }, timeoutSeconds: 180);
            Assert.Equal(21, r.Lines.Count(l => l.StartsWith("[r] TEST remap PASS")));
            Assert.Equal(21, r.Lines.Count(l => l.StartsWith("[r] TEST demand PASS") && l.Contains("stage2_faults=0")));
            Assert.Equal(r.Stat("frames_free_start"), r.Stat("frames_free_end"));
            Assert.Equal(r.Stat("heap_used_start"), r.Stat("heap_used_end"));
        }

        // backing=blocks is for stage-2 VMs whose memory is all theirs from
        // the start: refused, with a reason, elsewhere.
        [Fact]
        public void BlocksAreRefusedWhereTheyCannotWork()
        {
            string conf = GuestConfig.Write(
                "vm s mem=64M image=$ELF paging=shadow backing=blocks args=\"tests=uart\"\n" +
                "vm o mem=64M image=$ELF balloon=on boot_balloon=16M backing=blocks args=\"tests=uart\"\n" +
                "vm g mem=64M image=$ELF args=\"tests=uart\"\n");
            var r = Qemu.Run(new[] { conf }, timeoutSeconds: 60);
            Assert.Equal(2, r.Lines.Count(l => l.Contains("not started: backing=blocks needs paging=stage2 and no boot_balloon")));
            r.AssertPasses("g", "uart");
        }
    }
}
