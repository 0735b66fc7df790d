using System.Linq;
using System.Text.RegularExpressions;
using Hypervisor.Tests.Support;
using Xunit;

namespace Hypervisor.Tests.Integration
{
    // The seed's three ways to virtualize a guest's memory, per VM
    // (vms.conf paging=stage2|shadow|direct): the same guest, the same tests,
    // and hostile page tables for each.
    [Trait("Category", "Integration")]
    public class PagingModeTests
    {
        private static readonly string[] SelfTests = { "uart", "demand", "remap", "abort", "isv0", "psci", "walk", "hvc", "badmmio", "fpregs", "ptimer", "timerlevel", "dtbabove" };

        // Every self-test passes in every mode, loaded as ELF and as an arm64 Image.
        [Theory]
        [InlineData("shadow", "$ELF", "")]
        [InlineData("shadow", "$IMG", "kind=image")]
        [InlineData("direct", "$ELF", "")]
        [InlineData("direct", "$IMG", "kind=image")]
        public void TheGuestSuitePassesInEveryMode(string mode, string image, string kind)
        {
            string conf = GuestConfig.Write($"vm g mem=64M paging={mode} image={image} {kind} args=\"tests=all\"\n");
            var r = Qemu.Run(new[] { conf });
            Assert.Contains($"paging={mode}", r.Require("[g] stage-1 MMU on"));
            foreach (var t in SelfTests) r.AssertPasses("g", t);
            Assert.True(r.Stat("register_traps") >= 3, "TTBR0/TCR/SCTLR writes must trap");
            if (mode == "shadow")
            {
                Assert.Matches(@"shadow paging: TTBR0_EL1 0x[0-9a-f]+ \(guest\) -> 0x[0-9a-f]+ \(shadow\)", r.Require("[hv] vm g: MMU on, shadow paging"));
                // The demand test's 256 first touches came through shadow leaves.
                Assert.True(r.Stat("hidden_faults") >= 256);
                Assert.Equal(r.Stat("shadow_pages_built"), r.Stat("shadow_pages_freed"));
            }
            else
            {
                Assert.True(r.Stat("direct_batches") > 0);
                Assert.Equal(1, r.Stat("direct_refused"));   // the hole: not this VM's to map
            }
            Assert.Equal(r.Stat("frames_free_start"), r.Stat("frames_free_end"));
            Assert.Equal(r.Stat("heap_used_start"), r.Stat("heap_used_end"));
        }

        // An OS's day: four address spaces built, switched 200 times, pages
        // remapped, unmapped (each access then faults) and mapped fresh. A stale
        // translation anywhere -- shadow not following a table write, a missing
        // TLBI, a cached root gone stale -- shows up as a wrong read.
        [Theory]
        [InlineData("stage2")]
        [InlineData("shadow")]
        [InlineData("direct")]
        public void AddressSpacesStayCoherent(string mode)
        {
            string conf = GuestConfig.Write($"vm g mem=64M paging={mode} image=$ELF args=\"role=spaces\"\n");
            var r = Qemu.Run(new[] { conf }, timeoutSeconds: 90);
            r.AssertPasses("g", "spaces");
            Assert.Contains("wrong=0 unmapped_faults=64 fresh_nonzero=0", r.Require("[g] TEST spaces"));
            if (mode == "shadow")
            {
                Assert.True(r.Stat("table_write_traps") >= 192, "every remap, unmap and map is a trapped table write");
                Assert.True(r.Stat("shadow_root_hits") >= 190, "switching back to a known space must reuse its shadow");
                Assert.True(r.Stat("guest_tlbi_traps") >= 192);
            }
            if (mode == "direct") Assert.True(r.Stat("direct_updates") > 16384);
            Assert.Equal(r.Stat("frames_free_start"), r.Stat("frames_free_end"));
        }

        // Shadow mode, hostile tables: entries naming GPAs outside RAM, in the
        // hypervisor's trap window, tables outside RAM, a self-referencing
        // table, 3000 random descriptors. Nothing outside the VM is ever read,
        // and the guest sees exactly what it sees with hardware stage 2.
        [Fact]
        public void ShadowNeverMapsWhatTheGuestDoesNotOwn()
        {
            string conf = GuestConfig.Write(
                "vm s mem=64M paging=shadow image=$ELF args=\"role=shadowfuzz\"\n" +
                "vm n mem=64M paging=stage2 image=$ELF args=\"role=shadowfuzz\"\n" +
                "vm good mem=32M image=$ELF args=\"tests=demand,remap,walk\"\n");
            var r = Qemu.Run(new[] { conf }, timeoutSeconds: 120);
            r.AssertPasses("s", "shadowfuzz");
            r.AssertPasses("n", "shadowfuzz");
            foreach (var t in new[] { "demand", "remap", "walk" }) r.AssertPasses("good", t);
            // Same faults, same count of injected aborts, with shadow and with stage 2.
            string Verdict(string vm) => Regex.Match(r.Require($"[{vm}] TEST shadowfuzz"), "cases=.*").Value;
            Assert.Equal(Verdict("n"), Verdict("s"));
            Assert.Equal(r.Stat("frames_free_start"), r.Stat("frames_free_end"));
        }

        // Shadow paging against a root table outside RAM: the walk goes
        // through the trap window, the guest's fetches abort down to its own
        // vector, and the VM is stopped for the loop. It never reaches host
        // memory, the other VM passes its tests, nothing leaks.
        [Fact]
        public void ShadowStopsAVmWhoseRootIsOutsideRam()
        {
            string conf = GuestConfig.Write(
                "vm root mem=32M paging=shadow image=$ELF args=\"role=badroot\"\n" +
                "vm good mem=32M image=$ELF args=\"tests=demand,remap,walk\"\n");
            var r = Qemu.Run(new[] { conf });
            r.Require("[root] badroot: TTBR0_EL1");
            Assert.Contains("exception loop", r.Require("[hv] vm root stopped"));
            Assert.Null(r.Line("[root] badroot: STILL RUNNING"));
            foreach (var t in new[] { "demand", "remap", "walk" }) r.AssertPasses("good", t);
            Assert.Null(r.Line("[hv] PANIC"));
            Assert.Equal(r.Stat("frames_free_start"), r.Stat("frames_free_end"));
            Assert.Equal(0, r.ExitCode);
        }

        // The walk rules (kernel/Paging/WalkRules.cs) in both modes whose
        // tables the hypervisor vouches for: big-endian walks (the endianness
        // escape), non-cacheable or non-shareable walks and other granules are
        // refused at the MSR with an undefined instruction, each with a line;
        // EL0 endianness and top-byte-ignore are taken. A stage-2 VM may set
        // EE: its own stage 2 bounds what any walk can reach.
        [Fact]
        public void WalkRulesRefuseEverySettingThatChangesHowTablesAreRead()
        {
            string conf = GuestConfig.Write(
                "vm sh mem=32M paging=shadow image=$ELF args=\"role=walkrules\"\n" +
                "vm di mem=32M paging=direct image=$ELF args=\"role=walkrules\"\n");
            var r = Qemu.Run(new[] { conf }, timeoutSeconds: 90);
            foreach (var vm in new[] { "sh", "di" })
            {
                r.AssertPasses(vm, "walkrules");
                Assert.Contains("cases=8 refused=8 counted=8 allowed=taken registers=unchanged", r.Require($"[{vm}] TEST walkrules"));
                Assert.Contains("big-endian", r.Require($"[hv] vm {vm}: SCTLR_EL1 write refused"));
            }
            r.Require("[di] walkrules: a byte-swapped table entry stored");
            Assert.Null(r.Line("[hv] PANIC"));
            Assert.Equal(r.Stat("frames_free_start"), r.Stat("frames_free_end"));
        }

        // A table tree built to explode the shadow: the VM is stopped with a
        // reason, its shadow pages go back, the other VM is unaffected.
        [Fact]
        public void ShadowPoolExhaustionStopsOnlyThatVm()
        {
            string conf = GuestConfig.Write(
                "vm bomb mem=32M paging=shadow image=$ELF args=\"role=shadowbomb\"\n" +
                "vm good mem=32M image=$ELF args=\"tests=demand,walk\"\n");
            var r = Qemu.Run(new[] { conf });
            Assert.Contains("shadow page pool exhausted", r.Require("[hv] vm bomb stopped"));
            Assert.Null(r.Line("[bomb] TEST shadowbomb FAIL"));
            r.AssertPasses("good", "demand");
            r.AssertPasses("good", "walk");
            Assert.Null(r.Line("[hv] PANIC"));
            Assert.Equal(r.Stat("frames_free_start"), r.Stat("frames_free_end"));
        }

        // Direct mode, hostile updates: another VM's frame, a hypervisor frame,
        // its own table writable, devices it has not (GIC ITS, flash), RAM as a block, a half-valid batch,
        // malformed calls, pin/unpin abuse, a TTBR naming no pinned root. All
        // refused, counted, nothing half-applied; the VM carries on.
        [Fact]
        public void DirectRefusesEveryUnsafeUpdate()
        {
            string conf = GuestConfig.Write(
                "vm d mem=64M paging=direct image=$ELF args=\"role=directfuzz\"\n" +
                "vm good mem=64M image=$ELF args=\"tests=demand,remap\"\n");
            var r = Qemu.Run(new[] { conf }, timeoutSeconds: 90);
            r.AssertPasses("d", "directfuzz");
            Assert.Contains("half_batch=refused", r.Require("[d] TEST directfuzz"));
            r.AssertPasses("good", "demand");
            r.AssertPasses("good", "remap");
            Assert.True(r.Stat("direct_refused") >= 24);
            Assert.Equal(r.Stat("frames_free_start"), r.Stat("frames_free_end"));
        }

        // The many-VMs isolation test with one VM per mode at once: the secret
        // holder and the snoop in different modes, both ways round.
        [Theory]
        [InlineData("direct", "shadow", "stage2")]
        [InlineData("shadow", "direct", "stage2")]
        [InlineData("stage2", "shadow", "direct")]
        public void IsolationHoldsAcrossModes(string secretMode, string snoopMode, string thirdMode)
        {
            string conf = GuestConfig.Write(
                $"vm a mem=64M paging={secretMode} image=$ELF args=\"role=secret\"\n" +
                $"vm b mem=64M paging={snoopMode} image=$BIN kind=raw args=\"role=snoop\"\n" +
                $"vm c mem=48M paging={thirdMode} image=$ELF args=\"role=own seed=7\"\n");
            var r = Qemu.Run(new[] { "--mem", "512M", conf }, timeoutSeconds: 150);
            r.AssertPasses("a", "secret");
            r.AssertPasses("b", "snoop");
            r.AssertPasses("c", "own");
            Assert.True(r.Stat("vm_switches") > 6, "the VMs did not interleave");
            Assert.Equal(r.Stat("frames_free_start"), r.Stat("frames_free_end"));
        }

        // A mode VM resets a few times: its shadow or pinned tables go with it.
        [Theory]
        [InlineData("shadow")]
        [InlineData("direct")]
        public void ResetsLeakNothing(string mode)
        {
            string conf = GuestConfig.Write($"vm r mem=48M paging={mode} image=$ELF args=\"role=spaces reset\" resets=3\n");
            var r = Qemu.Run(new[] { conf }, timeoutSeconds: 120);
            Assert.Equal(4, r.Lines.Count(l => l.StartsWith("[r] TEST spaces PASS")));
            Assert.Equal(r.Stat("frames_free_start"), r.Stat("frames_free_end"));
            Assert.Equal(r.Stat("heap_used_start"), r.Stat("heap_used_end"));
        }
    }
}
