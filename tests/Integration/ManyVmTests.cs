using System.Linq;
using System.Text;
using Hypervisor.Tests.Support;
using Xunit;

namespace Hypervisor.Tests.Integration
{
    // Several VMs at once: time slices, isolation, VMID reuse, hostile guests,
    // restarts without leaks.
    [Trait("Category", "Integration")]
    public class ManyVmTests
    {
        // A fills its RAM with a secret; B reads all of its own RAM and probes
        // every 64 KiB of IPA space above it (where A's frames lie in host
        // memory). B must never see the secret, must read zeros in fresh pages,
        // and must get an abort for every IPA outside its RAM.
        [Theory]
        [InlineData("a-first", false, 1)]
        [InlineData("b-first", false, 1)]
        [InlineData("a-gone", true, 1)]     // B starts reading only after A powered off: it gets A's scrubbed frames
        [InlineData("a-first", false, 2)]   // both at once, each on its own CPU
        [InlineData("a-gone", true, 2)]
        public void NoVmSeesAnotherVmsMemory(string order, bool afterA, int cpus)
        {
            string a = "vm a mem=64M image=$ELF args=\"role=secret\"\n";
            string b = $"vm b mem=64M image=$BIN kind=raw args=\"role=snoop{(afterA ? " wait=alone" : "")}\"\n";
            string conf = GuestConfig.Write(order == "b-first" ? b + a : a + b);
            var r = Qemu.Run(new[] { "--smp", cpus.ToString(), conf }, timeoutSeconds: 120);
            r.AssertPasses("a", "secret");
            r.AssertPasses("b", "snoop");
            if (cpus == 1 && !afterA) Assert.True(r.Stat("vm_switches") > 4, "the two VMs did not interleave");
            Assert.Equal(r.Stat("frames_free_start"), r.Stat("frames_free_end"));
            Assert.Equal(0, r.ExitCode);
        }

        // Eight VMs share a 2-bit VMID space (three usable VMIDs): almost every
        // switch renews a VMID, many start a new generation. Each VM checks after
        // every switch that it still reads its own data.
        [Fact]
        public void EightVmsSurviveVmidRollovers()
        {
            var conf = new StringBuilder("hv vmid_bits=2 slice_ms=2\n");
            for (int i = 1; i <= 8; i++) conf.Append($"vm v{i} mem=64M image=$ELF args=\"role=own seed={i}\"\n");
            var r = Qemu.Run(new[] { "--mem", "1G", GuestConfig.Write(conf.ToString()) }, timeoutSeconds: 120);
            r.Require("[hv] vmid=2-bit (VTCR_EL2.VS=0)");
            for (int i = 1; i <= 8; i++) r.AssertPasses($"v{i}", "own");
            Assert.True(r.Stat("vmid_rollovers") > 10, "expected many VMID generations");
            Assert.Equal(r.Stat("frames_free_start"), r.Stat("frames_free_end"));
        }

        // A VM that spins forever with interrupts masked, one whose exception
        // vector faults, and one that throws random hypercalls: each affects
        // only itself; the well-behaved VM finishes all its tests.
        [Fact]
        public void HostileGuestsAffectOnlyThemselves()
        {
            string conf = GuestConfig.Write(
                "vm spin mem=32M image=$ELF args=\"role=spin\"\n" +
                "vm undef mem=32M image=$ELF args=\"role=undef\"\n" +
                "vm fuzz mem=32M image=$ELF args=\"role=hvcfuzz\"\n" +
                "vm good mem=64M image=$ELF args=\"tests=demand,remap,walk,psci,isv0\"\n");
            var r = Qemu.Run(new[] { conf }, timeoutSeconds: 120, stopWhen: lines =>
                lines.Any(l => l.StartsWith("[hv] vm good stopped")) &&
                lines.Any(l => l.StartsWith("[hv] vm fuzz stopped")) &&
                lines.Any(l => l.StartsWith("[hv] vm undef stopped")));
            Assert.True(r.StoppedByTest, "the other VMs did not finish while spin spun:\n" + r.Tail());
            foreach (var t in new[] { "demand", "remap", "walk", "psci", "isv0" }) r.AssertPasses("good", t);
            r.AssertPasses("fuzz", "hvcfuzz");
            Assert.Contains("guest exception loop", r.Require("[hv] vm undef stopped"));
            r.Require("[spin] spinning forever");
            Assert.Null(r.Line("[hv] vm spin stopped"));
            Assert.Null(r.Line("[hv] PANIC"));
        }

        // SYSTEM_RESET tears a VM down and builds it again from its image: 100
        // times for each of two VMs, after which free frames and heap bytes are
        // exactly what they were.
        [Fact]
        public void HundredResetsLeakNothing()
        {
            string conf = GuestConfig.Write(
                "vm r mem=32M image=$ELF args=\"tests=demand reset\" resets=100\n" +
                "vm s mem=32M image=$BIN kind=raw args=\"tests=remap reset\" resets=100\n");
            var r = Qemu.Run(new[] { conf }, timeoutSeconds: 180);
            Assert.Equal(101, r.Lines.Count(l => l.StartsWith("[r] TEST demand PASS")));
            Assert.Equal(101, r.Lines.Count(l => l.StartsWith("[s] TEST remap PASS")));
            Assert.Contains("allowance used up", r.Require("[hv] vm r stopped"));
            Assert.Equal(r.Stat("frames_free_start"), r.Stat("frames_free_end"));
            Assert.Equal(r.Stat("heap_used_start"), r.Stat("heap_used_end"));
            Assert.Null(r.Line("[hv] WARNING"));
            Assert.Equal(0, r.ExitCode);
        }

        // Each VM's 32 SIMD registers survive being switched out for another VM
        // holding different values (the q16/q17 slots of the exit frame and
        // the full FP state of the vCPU context must line up).
        [Fact]
        public void SimdRegistersSurviveVmSwitches()
        {
            string conf = GuestConfig.Write(
                "vm f1 mem=32M image=$ELF args=\"role=fpswitch seed=1\"\n" +
                "vm f2 mem=32M image=$ELF args=\"role=fpswitch seed=2\"\n");
            var r = Qemu.Run(new[] { "--smp", "1", conf });   // one CPU: they take turns on it
            r.AssertPasses("f1", "fpswitch");
            r.AssertPasses("f2", "fpswitch");
            Assert.True(r.Stat("vm_switches") >= 50);
        }

        [Fact]
        public void SummaryCountsExitsByClass()
        {
            string conf = GuestConfig.Write("vm g mem=64M image=$ELF args=\"tests=uart,abort,psci\"\n");
            var r = Qemu.Run(new[] { conf });
            string stat = r.Require("STAT vm=g ");
            foreach (var key in new[] { "exits_hvc=", "exits_smc=2", "exits_dabt=", "exits_iabt=", "exits_wfx=", "exits_sysreg=", "exits_irq=", "stage2_faults=", "tlbi_ipas2e1is=", "tlbi_vmalls12e1is=1", "frames_peak=" })
                Assert.Contains(key, stat);
            Assert.True(r.Stat("exits_hvc") >= 12);
        }
    }
}
