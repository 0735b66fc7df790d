using System.Linq;
using System.Text.RegularExpressions;
using Hypervisor.Tests.Support;
using Xunit;

namespace Hypervisor.Tests.Integration
{
    // Several physical CPUs and VMs with several vCPUs (kernel/Smp/,
    // kernel/Vm/Vcpu.cs): PSCI bring-up, SGIs between vCPUs on the same and
    // on different physical CPUs, Linux with four CPUs, a hostile IPI storm,
    // and stop and reset of a VM whose vCPUs are spread over CPUs.
    [Trait("Category", "Integration")]
    public class SmpTests
    {
        private const string Console = "args=\"console=ttyAMA0";

        // guest/SmpTests.cs checks PSCI's answers and every SGI routing kind
        // from the inside; on one physical CPU all four vCPUs share it, on
        // four each has its own.
        [Theory]
        [InlineData(1)]
        [InlineData(2)]
        [InlineData(4)]
        public void VcpusComeUpAndIpisReachExactlyTheirTargets(int cpus)
        {
            string conf = GuestConfig.Write("vm s mem=32M cpus=4 image=$ELF args=\"role=smp\"\n");
            var r = Qemu.Run(new[] { "--smp", cpus.ToString(), conf }, timeoutSeconds: 120);
            r.AssertPasses("s", "smp");
            r.Require($"[hv] cpus: {cpus} of {cpus} running guests");
            for (int v = 1; v < 4; v++) r.Require($"[hv] vm s: vcpu {v} on at ");
            Assert.True(r.Stat("sgis_sent") >= 10);
            Assert.Equal(r.Stat("frames_free_start"), r.Stat("frames_free_end"));
            Assert.Equal(r.Stat("heap_used_start"), r.Stat("heap_used_end"));
            Assert.Null(r.Line("[hv] PANIC"));
            Assert.Equal(0, r.ExitCode);
        }

        // Unmodified Linux with cpus=4 on four physical CPUs: it finds four
        // redistributors, brings every CPU online through PSCI, and each of
        // them does work (guest/linux/tests/smp.sh).
        [Fact]
        public void LinuxBringsFourCpusOnlineAndUsesThemAll()
        {
            string conf = GuestConfig.Write($"vm linux mem=256M cpus=4 $LINUX {Console} test=smp\"\n");
            var r = Qemu.Run(new[] { "--smp", "4", conf }, timeoutSeconds: 240);
            Assert.Contains(r.Lines, l => l.Contains("smp: Brought up 1 node, 4 CPUs"));
            for (int c = 1; c < 4; c++) Assert.Contains(r.Lines, l => l.Contains($"GICv3: CPU{c}: found redistributor {c} region 0:"));
            Assert.StartsWith("[linux] linux-test smp PASS cpus=4 online=0-3", r.Require("[linux] linux-test smp"));
            Assert.DoesNotContain(r.Lines, l => Regex.IsMatch(l, @"\] (WARNING|Oops|BUG|Kernel panic)"));
            r.Require("[hv] vm linux stopped: SYSTEM_OFF");
            Assert.Equal(r.Stat("frames_free_start"), r.Stat("frames_free_end"));
        }

        // Two Linux VMs of two vCPUs each and a C# guest: five vCPUs on two
        // CPUs, so they also move between CPUs. (Two 4-vCPU Linux VMs on
        // four emulated CPUs take minutes on a 2-core host: Linux's
        // stop_machine spins until every one of its vCPUs runs at once.)
        [Fact]
        public void TwoLinuxVmsAndACSharpGuestShareTwoCpus()
        {
            string conf = GuestConfig.Write(
                $"vm la mem=256M cpus=2 $LINUX {Console} test=workload\"\n" +
                $"vm lb mem=256M cpus=2 $LINUX {Console} test=workload\"\n" +
                "vm c mem=32M image=$ELF args=\"tests=demand,remap,walk\"\n");
            var r = Qemu.Run(new[] { "--smp", "2", conf }, timeoutSeconds: 240);
            foreach (var vm in new[] { "la", "lb" })
            {
                Assert.Contains(r.Lines, l => l.StartsWith($"[{vm}]") && l.Contains("smp: Brought up 1 node, 2 CPUs"));
                Assert.StartsWith($"[{vm}] linux-test workload PASS", r.Require($"[{vm}] linux-test workload"));
                r.Require($"[hv] vm {vm} stopped: SYSTEM_OFF");
            }
            foreach (var t in new[] { "demand", "remap", "walk" }) r.AssertPasses("c", t);
            Assert.Equal(r.Stat("frames_free_start"), r.Stat("frames_free_end"));
        }

        // The seed's demo between two Linux VMs of two vCPUs each: 128 MiB
        // leave a through its balloon and reach b through b's.
        [Fact]
        public void TwoVcpuLinuxVmsMove128MiBThroughTheirBalloons()
        {
            string conf = GuestConfig.Write(
                "hv balloon_move=a:b:128M\n" +
                $"vm a mem=256M cpus=2 balloon=on fault_around=64 $LINUX {Console} test=giver\"\n" +
                $"vm b mem=256M cpus=2 balloon=on boot_balloon=128M fault_around=64 $LINUX {Console} test=taker\"\n");
            var r = Qemu.Run(new[] { "--smp", "2", conf }, timeoutSeconds: 300);
            Assert.StartsWith("[a] linux-test giver PASS", r.Require("[a] linux-test giver"));
            Assert.StartsWith("[b] linux-test taker PASS", r.Require("[b] linux-test taker"));
            r.Require("[hv] balloon_move: handed to vm b 32768 pages (128MiB)");
            Assert.Contains("ballooned_touches=0", r.Require("STAT vm=b "));
            Assert.Equal(r.Stat("frames_free_start"), r.Stat("frames_free_end"));
        }

        // A VM whose vCPU 0 sends SGIs to its vCPU 1 without pause: another
        // VM beside it still finishes its tests.
        [Fact]
        public void AnIpiStormDoesNotStarveAnotherVm()
        {
            string conf = GuestConfig.Write(
                "vm storm mem=32M cpus=2 image=$ELF args=\"role=ipistorm\"\n" +
                "vm good mem=32M image=$ELF args=\"tests=demand,remap,walk\"\n");
            var r = Qemu.Run(new[] { "--smp", "2", conf }, timeoutSeconds: 120,
                stopWhen: lines => lines.Any(l => l.StartsWith("[hv] vm good stopped")));
            Assert.True(r.StoppedByTest, "the good VM did not finish beside the storm:\n" + r.Tail());
            foreach (var t in new[] { "demand", "remap", "walk" }) r.AssertPasses("good", t);
            r.Require("[storm] sending SGIs to vCPU 1 forever");
            Assert.Null(r.Line("[hv] PANIC"));
        }

        // SYSTEM_RESET and SYSTEM_OFF of a VM whose other vCPUs are still on
        // (role=smp with stay=on leaves them taking SGIs): every vCPU leaves
        // its CPU first, the VM is rebuilt (vCPU 0 only) or torn down, and
        // nothing leaks across five resets.
        [Theory]
        [InlineData(1)]
        [InlineData(2)]
        public void ResetAndStopWithSecondariesOnLeakNothing(int cpus)
        {
            string conf = GuestConfig.Write("vm s mem=32M cpus=3 image=$ELF args=\"role=smp stay=on reset\" resets=5\n");
            var r = Qemu.Run(new[] { "--smp", cpus.ToString(), conf }, timeoutSeconds: 180);
            Assert.Equal(6, r.Lines.Count(l => l.StartsWith("[s] TEST smp PASS")));
            Assert.Contains("allowance used up", r.Require("[hv] vm s stopped"));
            Assert.Equal(r.Stat("frames_free_start"), r.Stat("frames_free_end"));
            Assert.Equal(r.Stat("heap_used_start"), r.Stat("heap_used_end"));
            Assert.Null(r.Line("[hv] PANIC"));
        }

        // vCPU 1 keeps reading a page while vCPU 0 gives it to the balloon:
        // after the inflate returns no read of vCPU 1 sees the page (each
        // faults), on one physical CPU and on two.
        [Theory]
        [InlineData(1)]
        [InlineData(2)]
        public void ABalloonedPageIsGoneForEveryVcpu(int cpus)
        {
            string conf = GuestConfig.Write("vm t mem=32M cpus=2 balloon=on image=$ELF args=\"role=balloontouch\"\n");
            var r = Qemu.Run(new[] { "--smp", cpus.ToString(), conf }, timeoutSeconds: 120);
            r.AssertPasses("t", "balloontouch");
            Assert.True(r.Stat("ballooned_touches") >= 1000, "vCPU 1's reads of the ballooned page must each have faulted");
            Assert.Equal(r.Stat("frames_free_start"), r.Stat("frames_free_end"));
        }

        // Eight VMs of two vCPUs on four CPUs share a 2-bit VMID space (three
        // VMIDs, fewer than the CPUs): every VM's two vCPUs check their own
        // memory at once across hundreds of generations. How many depends on
        // how the host schedules QEMU's CPU threads (a yield finds another
        // vCPU to switch to only some of the time): 1500 rounds gave 330-1170
        // rollovers, 600 rounds as few as 181, so the floor asked is 100.
        [Fact]
        public void EightTwoVcpuVmsSurviveVmidRolloversOnFourCpus()
        {
            var conf = new System.Text.StringBuilder("hv vmid_bits=2 slice_ms=2\n");
            for (int i = 1; i <= 8; i++) conf.Append($"vm v{i} mem=32M cpus=2 image=$ELF args=\"role=own seed={i} rounds=1500\"\n");
            var r = Qemu.Run(new[] { "--smp", "4", "--mem", "512M", GuestConfig.Write(conf.ToString()) }, timeoutSeconds: 240);
            for (int i = 1; i <= 8; i++)
            {
                r.AssertPasses($"v{i}", "own");
                Assert.Matches(@"checker reads=[1-9]\d* wrong=0", r.Require($"[v{i}] checker reads="));
            }
            Assert.True(r.Stat("vmid_rollovers") > 100, $"expected many VMID generations, saw {r.Stat("vmid_rollovers")}");
            Assert.Equal(r.Stat("frames_free_start"), r.Stat("frames_free_end"));
            Assert.Null(r.Line("[hv] PANIC"));
        }

        // The monitor's `vms` lists every vCPU of a VM, its state and the
        // physical CPU it last ran on.
        [Fact]
        public void TheMonitorShowsEachVcpuAndItsCpu()
        {
            string conf = GuestConfig.Write("vm storm mem=32M cpus=2 image=$ELF args=\"role=ipistorm\"\n");
            var r = Qemu.Run(new[] { "--smp", "2", conf }, timeoutSeconds: 60,
                stopWhen: lines => lines.Any(l => l.StartsWith("[hv]   vcpu 1 ")),
                input: new[] { ("[storm] sending SGIs to vCPU 1 forever", "vms\r") });
            Assert.True(r.StoppedByTest, r.Tail());
            Assert.Matches(@"^\[hv\]   vcpu 0 (running|runnable|waiting) cpu=[01] mpidr=0x0+$", r.Require("[hv]   vcpu 0 "));
            Assert.Matches(@"^\[hv\]   vcpu 1 (running|runnable|waiting) cpu=[01] mpidr=0x0+1$", r.Require("[hv]   vcpu 1 "));
        }

        // More CPUs than the hypervisor has stacks for: it says so and runs
        // guests on the first eight.
        [Fact]
        public void CpusBeyondEightAreLeftOffAndSaidSo()
        {
            string conf = GuestConfig.Write("vm s mem=32M cpus=2 image=$ELF args=\"role=smp\"\n");
            var r = Qemu.Run(new[] { "--smp", "10", conf }, timeoutSeconds: 120);
            r.Require("[hv] cpus: 8 of 10 running guests (the hypervisor has stacks for 8)");
            r.AssertPasses("s", "smp");
        }

        // Shadow and direct paging keep one vCPU's view of the guest's
        // tables: more vCPUs are refused when the VM is created, with why.
        [Fact]
        public void SeveralVcpusNeedStageTwoPaging()
        {
            string conf = GuestConfig.Write(
                "vm sh mem=32M cpus=2 paging=shadow image=$ELF args=\"tests=uart\"\n" +
                "vm ok mem=32M image=$ELF args=\"tests=uart\"\n");
            var r = Qemu.Run(new[] { conf });
            Assert.Contains("cpus= above 1 needs paging=stage2", r.Require("[hv] vms.conf:"));
            r.AssertPasses("ok", "uart");
        }
    }
}
