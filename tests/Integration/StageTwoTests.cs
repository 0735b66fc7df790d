using System;
using System.Linq;
using System.Text.RegularExpressions;
using Hypervisor.Tests.Support;
using Xunit;

namespace Hypervisor.Tests.Integration
{
    // One boot of the C# test guest running every self-test, shared by the tests below.
    public sealed class SelfTestRun
    {
        public RunResult Result { get; }

        public SelfTestRun()
        {
            string conf = GuestConfig.Write("vm g mem=64M image=$ELF args=\"tests=all\"\n");
            Result = Qemu.Run(new[] { conf }, timeoutSeconds: 90);
        }
    }

    [Trait("Category", "Integration")]
    public class StageTwoTests : IClassFixture<SelfTestRun>
    {
        private readonly RunResult _r;
        public StageTwoTests(SelfTestRun run) { _r = run.Result; }

        // Each name is a property the guest observes from inside its VM.
        [Theory]
        [InlineData("uart")]     // emulated PL011: every byte one MMIO exit
        [InlineData("demand")]   // 256 pages mapped on first touch, zeroed, read back
        [InlineData("remap")]    // a moved IPA is seen at once (needs TLBI VMALLE1IS)
        [InlineData("abort")]    // IPA outside RAM: injected abort, caught by the guest
        [InlineData("isv0")]     // STP / post-index / LDP pre-index to MMIO decoded
        [InlineData("psci")]     // PSCI over HVC and SMC return the right codes
        [InlineData("walk")]     // GVA -> GPA -> HPA, three different numbers, 15 accesses
        [InlineData("hvc")]      // unknown or bad hypercalls get error codes
        [InlineData("badmmio")]  // un-emulatable MMIO (SIMD, 64-bit) gets an abort
        [InlineData("fpregs")]   // all 32 SIMD registers survive exits
        [InlineData("ptimer")]   // the EL1 physical timer is emulated: a sleep on it ends with INTID 30, level-accurate
        [InlineData("timerlevel")]   // the virtual timer's line is a level: masking it withdraws the interrupt
        [InlineData("dtbabove")] // the device tree above the image's end, inside RAM (QEMU's layout)
        public void GuestSelfTestPasses(string name)
        {
            string verdict = _r.Lines.FirstOrDefault(l => l.StartsWith($"[g] TEST {name} ", StringComparison.Ordinal));
            Assert.True(verdict != null, $"no verdict for {name}. Last lines:\n{_r.Tail()}");
            Assert.StartsWith($"[g] TEST {name} PASS", verdict);
        }

        [Fact]
        public void NoTestFailsAndTheRunEndsCleanly()
        {
            Assert.DoesNotContain(_r.Lines, l => l.Contains(" FAIL"));
            _r.Require("[hv] vm g stopped: SYSTEM_OFF");
            _r.Require("[hv] all VMs stopped; powering off");
            Assert.Equal(0, _r.ExitCode);
            Assert.False(_r.TimedOut);
        }

        [Fact]
        public void BootLogShowsTheStageTwoRegisters()
        {
            string line = _r.Require("[hv] vm g: VTCR_EL2=");
            // 40-bit IPA: T0SZ=24, SL0=1 (start at level 1), WB, inner shareable, 4 KiB, PS=40 bits.
            Assert.Contains("VTCR_EL2=0x0000000080023558", line);
            // VMID 1 in VTTBR_EL2[63:48]; the root is 8 KiB aligned (two concatenated tables).
            var m = Regex.Match(line, @"VTTBR_EL2=0x0001([0-9a-f]{12}) \(VMID 1\)");
            Assert.True(m.Success, line);
            Assert.Equal(0UL, Convert.ToUInt64(m.Groups[1].Value, 16) % 0x2000);
            // VM SWIO FMO IMO AMO FB BSU=inner TWI TWE TID3 TSC TIDCP RW (kernel/Arch/Hcr.cs).
            Assert.Contains("HCR_EL2=0x00000000803c663b", line);
        }

        [Fact]
        public void WalkIsPrintedEntryByEntry()
        {
            int start = _r.Lines.ToList().FindIndex(l => l.StartsWith("[hv] walk vm=g gva=0x0000008000005128"));
            Assert.True(start >= 0, _r.Tail());
            var walk = _r.Lines.Skip(start + 1).TakeWhile(l => l.StartsWith("[hv]   ")).ToList();
            Assert.Equal(4, walk.Count(l => l.Contains("stage-1 L")));
            Assert.Equal(11, walk.Count(l => l.Contains("stage-2 L")));
            string result = _r.Lines[start + 1 + walk.Count];
            Assert.Matches(@"gva 0x0000008000005128 -> gpa 0x0000000041005128 -> hpa 0x[0-9a-f]{16}, 15 memory accesses", result);
        }

        [Fact]
        public void EveryFrameComesBackAndTheCountersAddUp()
        {
            Assert.Equal(_r.Stat("frames_free_start"), _r.Stat("frames_free_end"));
            Assert.True(_r.Stat("stage2_faults") >= 256);
            Assert.True(_r.Stat("tlbi_ipas2e1is") >= 1);        // the remap
            Assert.True(_r.Stat("tlbi_vmalle1is") >= 1);
            Assert.Equal(1, _r.Stat("tlbi_vmalls12e1is"));      // teardown
            Assert.True(_r.Stat("injected_aborts") >= 4);
        }
    }

    [Trait("Category", "Integration")]
    public class GuestBundleTests
    {
        [Fact]
        public void RawBinaryIsLoadedAtRamBasePlus512K()
        {
            string conf = GuestConfig.Write("vm r mem=64M image=$BIN kind=raw args=\"tests=uart,demand\"\n");
            var r = Qemu.Run(new[] { conf });
            Assert.Contains("(raw, entry 0x0000000040080000)", r.Require("[hv] vm r: mem="));
            Assert.StartsWith("[r] TEST uart PASS", r.Require("[r] TEST uart"));
            Assert.StartsWith("[r] TEST demand PASS", r.Require("[r] TEST demand"));
            Assert.Equal(0, r.ExitCode);
        }

        [Fact]
        public void Arm64ImageIsLoadedTwoMegabytesUpAndWalksWithoutTheBlock()
        {
            string conf = GuestConfig.Write("vm i mem=64M image=$IMG args=\"tests=uart,walk,hvc\"\n");
            var r = Qemu.Run(new[] { conf });
            Assert.Contains("(arm64 Image, entry 0x0000000040200000)", r.Require("[hv] vm i: mem="));
            Assert.StartsWith("[i] TEST uart PASS", r.Require("[i] TEST uart"));
            // Its page tables lie outside the first 2 MiB block: 4 * (3 + 1) + 3.
            Assert.StartsWith("[i] TEST walk PASS", r.Require("[i] TEST walk"));
            Assert.EndsWith("accesses=19", r.Require("[i] TEST walk"));
            r.Require("[i] console-write: via hypercall");
            Assert.StartsWith("[i] TEST hvc PASS", r.Require("[i] TEST hvc"));
        }

        // fault_around=N (kernel/Mm/GuestMemory.cs): one demand fault maps the
        // faulting page's whole aligned window of N pages. The demand test's
        // 256 pages become 16 faults and 240 pages mapped ahead; a hostile
        // balloon driver touches the neighbour of a page it inflated, and that
        // page must stay unmapped (the touch of it still aborts); the balloon
        // cycles and the other tests pass, shadow paging refuses the key, and
        // nothing leaks.
        [Fact]
        public void FaultAroundMapsWholeWindowsButNeverABalloonedPage()
        {
            string conf = GuestConfig.Write(
                "vm g mem=64M image=$ELF fault_around=16 args=\"tests=demand,remap,walk\"\n" +
                "vm h mem=64M image=$ELF balloon=on fault_around=64 args=\"role=balloonfuzz\"\n" +
                "vm c mem=64M image=$ELF balloon=on fault_around=16 args=\"role=ballooncycles\"\n" +
                "vm s mem=32M image=$ELF paging=shadow fault_around=16\n");
            var r = Qemu.Run(new[] { conf }, timeoutSeconds: 180);
            foreach (var t in new[] { "demand", "remap", "walk" }) r.AssertPasses("g", t);
            Assert.Contains("stage2_faults=16 prefaulted=240", r.Require("[g] TEST demand"));
            Assert.Contains("fault_around=16", r.Require("[hv] vm g: mem="));
            r.AssertPasses("h", "balloon-hostile");
            Assert.Contains("inflated_page=gone", r.Require("[h] TEST balloon-hostile"));
            r.AssertPasses("c", "balloon-cycles");
            Assert.Contains("fault_around needs paging=stage2", r.Require("[hv] vms.conf:4:"));
            Assert.True(r.Stat("pages_prefaulted") > 0);
            Assert.Equal(r.Stat("frames_free_start"), r.Stat("frames_free_end"));
            Assert.Null(r.Line("[hv] PANIC"));
            Assert.Equal(0, r.ExitCode);
        }

        [Fact]
        public void BadConfigLinesAreReportedAndTheOtherVmsStillRun()
        {
            string conf = GuestConfig.Write(
                "# line 1\n" +
                "vm a mem=64M image=$ELF colour=blue\n" +            // 2: unknown key
                "vm b mem=64M image=/nonexistent/missing.elf\n" +    // 3: image not in bundle
                "vm c mem=64G image=$ELF\n" +                        // 4: more than the host has
                "vm d mem=32M image=$ELF args=\"tests=uart\"\n" +    // 5: fine
                "vm d mem=32M image=$ELF\n" +                        // 6: duplicate name
                "vm e image=$ELF\n" +                                // 7: no mem
                "vm f mem=32M image=$ELF paging=shadow balloon=on\n" + // 8: balloon needs stage2: refused, said so
                "vm h mem=32M image=$ELF cpus=2 paging=direct args=\"tests=psci\"\n" + // 9: vCPUs need stage2: refused, said so
                "vm i mem=32M image=$ELF cpus=2 args=\"tests=psci\"\n");  // 10: two vCPUs, runs
            var r = Qemu.Run(new[] { "--mem", "512M", conf });
            Assert.Matches(@"^\[hv\] vms.conf:2: .*'colour", r.Require("[hv] vms.conf:2:"));
            Assert.Contains("image not in the bundle", r.Require("[hv] vms.conf:3:"));
            Assert.Contains("more memory than the host has", r.Require("[hv] vms.conf:4:"));
            Assert.Null(r.Line("[hv] vms.conf:5:"));
            r.Require("[hv] vms.conf:6:");
            r.Require("[hv] vms.conf:7:");
            Assert.Contains("balloon=on needs paging=stage2", r.Require("[hv] vms.conf:8:"));
            Assert.Contains("cpus= above 1 needs paging=stage2", r.Require("[hv] vms.conf:9:"));
            Assert.StartsWith("[i] TEST psci PASS", r.Require("[i] TEST psci"));
            Assert.StartsWith("[d] TEST uart PASS", r.Require("[d] TEST uart"));
            Assert.Equal(r.Stat("frames_free_start"), r.Stat("frames_free_end"));
            Assert.Equal(0, r.ExitCode);
        }

        [Fact]
        public void SeveralVmsRunInTurnAndGiveEveryFrameBack()
        {
            string conf = GuestConfig.Write(
                "vm one mem=64M image=$ELF args=\"tests=demand,remap\"\n" +
                "vm two mem=48M image=$BIN args=\"tests=demand,walk\"\n");
            var r = Qemu.Run(new[] { conf });
            Assert.StartsWith("[one] TEST demand PASS", r.Require("[one] TEST demand"));
            Assert.StartsWith("[one] TEST remap PASS", r.Require("[one] TEST remap"));
            Assert.StartsWith("[two] TEST demand PASS", r.Require("[two] TEST demand"));
            Assert.StartsWith("[two] TEST walk PASS", r.Require("[two] TEST walk"));
            Assert.Contains("(VMID 2)", r.Require("[hv] vm two: VTCR_EL2="));
            Assert.Equal(r.Stat("frames_free_start"), r.Stat("frames_free_end"));
        }
    }
}
