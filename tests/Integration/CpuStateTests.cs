using Hypervisor.Tests.Support;
using Xunit;

namespace Hypervisor.Tests.Integration
{
    // CPU state that is not memory must not cross VMs: the PMU (the
    // hypervisor's own; guests are told they have none and get undefined
    // instructions), and the debug registers (moved with the VM that uses them).
    [Trait("Category", "Integration")]
    public class CpuStateTests
    {
        // Two VMs try the PMU (an event counter written, read, the cycle
        // counter, its filter); a third, with hv_counter=on, reads the
        // hypervisor's counter through the hypercall and benchmarks with it.
        [Fact]
        public void ThePmuIsTheHypervisorsAlone()
        {
            string conf = GuestConfig.Write(
                "vm a mem=32M image=$ELF args=\"role=pmu\"\n" +
                "vm b mem=32M paging=shadow image=$ELF args=\"role=pmu\"\n" +
                "vm c mem=32M hv_counter=on image=$ELF args=\"bench\"\n");
            var r = Qemu.Run(new[] { conf });
            foreach (var vm in new[] { "a", "b" })
            {
                r.AssertPasses(vm, "pmu");
                Assert.Contains("undefined=5 hv_counter=refused", r.Require($"[{vm}] TEST pmu"));
            }
            r.Require("[c] STAT bench_hvc_null=");
            Assert.Equal(5, r.Stat("pmu_traps"));   // the first STAT line with it: vm=a
            Assert.Null(r.Line("[hv] PANIC"));
        }

        // ACTLR_EL1 holds a CPU's implementation-defined controls: every
        // guest access traps (HCR_EL2.TACR), reads give zero, writes reach
        // nothing. Without the trap the accesses would not be exits.
        [Fact]
        public void TheAuxiliaryControlRegisterIsNotTheGuests()
        {
            string conf = GuestConfig.Write("vm a mem=32M image=$ELF args=\"role=actlr\"\n");
            var r = Qemu.Run(new[] { conf });
            r.AssertPasses("a", "actlr");
            Assert.Contains("accesses=201 seen=0x0", r.Require("[a] TEST actlr"));
            Assert.True(r.Stat("exits_sysreg") >= 201, $"each ACTLR_EL1 access must trap, saw {r.Stat("exits_sysreg")} system-register exits");
        }

        // Three VMs yield to each other a hundred times each: two program
        // breakpoint 0, watchpoint 0, MDSCR_EL1 and the OS lock with values of
        // their own, the third never does and must always find a fresh CPU's
        // (zeros, OS lock locked). Any debug register left in the CPU for the
        // next VM, or not brought back, is a wrong round.
        [Fact]
        public void DebugRegistersMoveWithTheirVm()
        {
            string conf = GuestConfig.Write(
                "vm a mem=32M image=$ELF args=\"role=debug seed=1\"\n" +
                "vm b mem=32M image=$ELF args=\"role=debug seed=0\"\n" +
                "vm c mem=32M paging=shadow image=$ELF args=\"role=debug seed=2\"\n");
            var r = Qemu.Run(new[] { conf });
            foreach (var vm in new[] { "a", "b", "c" })
            {
                r.AssertPasses(vm, "debug");
                Assert.Contains("rounds=100 wrong=0", r.Require($"[{vm}] TEST debug"));
            }
            Assert.Null(r.Line("[hv] PANIC"));
        }

        // The system-register fuzzer: every op0=3 encoding read, and written
        // with a random value, from a VM in each paging mode, while another
        // VM checks after every switch that its own values in the registers
        // a guest writes freely are still there. ID registers always read
        // (trapped and emulated), the PMU's never; nothing else but
        // undefined instructions comes back; the hypervisor neither stops nor
        // hangs.
        [Theory]
        [InlineData("stage2")]
        [InlineData("shadow")]
        [InlineData("direct")]
        public void EverySystemRegisterEncodingGetsAnArchitecturalAnswer(string paging)
        {
            string conf = GuestConfig.Write(
                "vm k mem=32M image=$ELF args=\"role=regkeep\"\n" +
                $"vm f mem=32M paging={paging} image=$ELF args=\"role=regfuzz\"\n");
            var r = Qemu.Run(new[] { conf }, timeoutSeconds: 120);
            r.AssertPasses("f", "regfuzz");
            string verdict = r.Require("[f] TEST regfuzz");
            Assert.Contains("encodings=16384", verdict);
            Assert.Contains("other_exceptions=0", verdict);
            r.AssertPasses("k", "regkeep");
            Assert.Contains("changed=0", r.Require("[k] TEST regkeep"));
            Assert.Null(r.Line("[hv] PANIC"));
            Assert.Equal(0, r.ExitCode);
        }
    }
}
