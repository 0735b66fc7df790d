using System.Text.RegularExpressions;
using Hypervisor.Tests.Support;
using Xunit;

namespace Hypervisor.Tests.Integration
{
    // The hypervisor follows the architecture, not one CPU model: the same
    // guests on the other CPUs QEMU models, two without SVE (cortex-a53, an
    // Armv8.0 little core; neoverse-n1, Armv8.2 with RAS, PAN, LSE atomics)
    // and two with it (a64fx, Armv8.2 with SVE; max, every feature QEMU has:
    // SVE, SME, MTE, pointer authentication, LPA2...). Everything else runs
    // on cortex-a72.
    [Trait("Category", "Integration")]
    public class CrossCpuTests
    {
        public static readonly TheoryData<string> Cpus = new TheoryData<string> { "cortex-a53", "neoverse-n1", "a64fx", "max" };

        // The C# self-tests, and a guest checking that every feature its ID
        // registers call absent is absent (an undefined instruction, whether
        // the CPU lacks it or the hypervisor traps it).
        [Theory]
        [MemberData(nameof(Cpus))]
        public void TheGuestSuitePassesAndHiddenFeaturesAreAbsent(string cpu)
        {
            string conf = GuestConfig.Write(
                "vm g mem=64M image=$ELF args=\"tests=all\"\n" +
                "vm h mem=32M image=$ELF args=\"role=hidden\"\n");
            var r = Qemu.Run(new[] { "--cpu", cpu, conf }, timeoutSeconds: 120);
            foreach (var t in new[] { "uart", "demand", "remap", "abort", "isv0", "psci", "walk", "hvc", "badmmio", "fpregs", "ptimer", "timerlevel", "dtbabove" })
                r.AssertPasses("g", t);
            r.AssertPasses("h", "hidden");
            // The guests' seeds (kernel/Boot/GuestSeeds.cs): QEMU's firmware
            // seeds on every model, and the CPU's RNDR only where FEAT_RNG is.
            string seeds = r.Require("[hv] guest seeds from:");
            Assert.StartsWith("[hv] guest seeds from: rng-seed (32 bytes) kaslr-seed", seeds);
            Assert.Equal(cpu == "max", seeds.Contains("RNDR"));
            Assert.Null(r.Line("[hv] PANIC"));
            Assert.DoesNotContain(r.Lines, l => l.Contains("unhandled exit"));
            Assert.Equal(r.Stat("frames_free_start"), r.Stat("frames_free_end"));
        }

        // The Debian kernel boots and runs its checked workload on each: it
        // must not find and use a feature the hypervisor does not switch.
        [Theory]
        [MemberData(nameof(Cpus))]
        public void LinuxRunsItsWorkload(string cpu)
        {
            string conf = GuestConfig.Write("vm linux mem=256M fault_around=64 $LINUX args=\"console=ttyAMA0 test=workload\"\n");
            var r = Qemu.Run(new[] { "--cpu", cpu, conf }, timeoutSeconds: 180);
            Assert.StartsWith("[linux] linux-test workload PASS", r.Require("[linux] linux-test workload"));
            r.Require("[hv] vm linux stopped: SYSTEM_OFF");
            Assert.DoesNotContain(r.Lines, l => Regex.IsMatch(l, @"\] (Oops|BUG|Kernel panic)"));
            // One warning is the CPU model's, not ours: a64fx's 256-byte cache
            // writeback granule is larger than the kernel's DMA alignment, and
            // Linux says so for every device without dma-coherent (it does the
            // same on QEMU without a hypervisor).
            for (int i = 1; i < r.Lines.Count; i++)
                if (Regex.IsMatch(r.Lines[i], @"\] WARNING"))
                    Assert.Contains("ARCH_DMA_MINALIGN smaller than CTR_EL0.CWG", r.Lines[i - 1]);
            Assert.DoesNotContain(r.Lines, l => l.Contains("unhandled exit"));
            Assert.DoesNotContain(r.Lines, l => Regex.IsMatch(l, @"CPU features: detected: (Scalable Vector Extension|Memory Tagging|Address authentication|Activity Monitors)"));
        }
    }
}
