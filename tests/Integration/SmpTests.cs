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
