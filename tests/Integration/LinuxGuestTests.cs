using System.Linq;
using System.Text.RegularExpressions;
using Hypervisor.Tests.Support;
using Xunit;

namespace Hypervisor.Tests.Integration
{
    // The unmodified Debian arm64 kernel as a guest (build/linux-kit, made by
    // scripts/linux-kit from Debian's packages): the virtual GIC, the virtual
    // timer, PSCI, the PL011 with interrupts, the guest device tree and the
    // initrd, and the seed's balloon demo driven by Linux's own virtio_balloon.
    // The kit's /init and test scripts are guest/linux/.
    [Trait("Category", "Integration")]
    public class LinuxGuestTests
    {
        private const string Console = "args=\"console=ttyAMA0";

        // Boots to the initramfs, prints its version and MemTotal, loads the
        // virtio modules, and runs a workload whose every result is checked
        // (processes, pipes, tmpfs, a second of sleep on the virtual timer).
        [Fact]
        public void BootsAndRunsAWorkload()
        {
            string conf = GuestConfig.Write($"vm linux mem=256M $LINUX {Console} test=workload\"\n");
            var r = Qemu.Run(new[] { conf }, timeoutSeconds: 120);
            Assert.Contains("6.", r.Require("[linux] linux: version "));
            Assert.Matches(@"MemTotal: +2[0-9]{5} kB", r.Require("[linux] linux: MemTotal"));
            r.Require("[linux] linux: insmod virtio_mmio ok");
            r.Require("[linux] linux: insmod virtio_balloon ok");
            Assert.StartsWith("[linux] linux-test workload PASS", r.Require("[linux] linux-test workload"));
            r.Require("[hv] vm linux stopped: SYSTEM_OFF");
            Assert.Contains(r.Lines, l => l.Contains("GICv3: CPU0: found redistributor 0 region 0:0x00000000080a0000"));
            Assert.Contains(r.Lines, l => l.Contains("arch_timer: cp15 timer(s) running at 62.50MHz (virt)"));
            Assert.Contains(r.Lines, l => l.Contains("ttyAMA0 at MMIO 0x9000000"));
            // Seeded from its device tree (kernel/Boot/GuestSeeds.cs): its
            // random number generator is ready before the first driver, and
            // its kernel is placed at random. Unseeded, this kernel also
            // re-reads ID_AA64ISAR0_EL1 (a trap each) some 48,000 times.
            Assert.Contains(r.Lines, l => l.Contains("[    0.000000] random: crng init done"));
            Assert.Contains(r.Lines, l => l.Contains("] KASLR enabled"));
            Assert.InRange(r.Stat("exits_sysreg"), 0, 2000);
            Assert.DoesNotContain(r.Lines, l => Regex.IsMatch(l, @"\] (WARNING|Oops|BUG|Kernel panic)"));
            // Its interrupts came through the list registers, and each was
            // ended, but for one the timer may have raised while Linux was
            // already powering off with interrupts masked.
            Assert.True(r.Stat("vgic_injected") > 100, "the timer and the UART must have interrupted");
            Assert.InRange(r.Stat("vgic_injected") - r.Stat("vgic_completed"), 0, 1);
            Assert.Equal(r.Stat("frames_free_start"), r.Stat("frames_free_end"));
        }

        // The seed's demo between two Linux VMs, with a C# guest running its
        // tests beside them: 128 MiB ballooned out of a (its MemTotal drops by
        // 128 MiB), handed to b (booted with 128 MiB in its balloon), whose
        // MemTotal grows by as much and which then uses more memory than it had.
        // Both map 64 pages per demand fault (fault_around), which must leave
        // every ballooned page alone.
        [Fact]
        public void TwoLinuxVmsMove128MiBThroughTheirBalloons()
        {
            string conf = GuestConfig.Write(
                "hv balloon_move=a:b:128M\n" +
                $"vm a mem=256M balloon=on fault_around=64 $LINUX {Console} test=giver\"\n" +
                $"vm b mem=256M balloon=on boot_balloon=128M fault_around=64 $LINUX {Console} test=taker\"\n" +
                "vm c mem=64M image=$ELF args=\"tests=demand,remap,walk\"\n");
            var r = Qemu.Run(new[] { conf }, timeoutSeconds: 240);
            Assert.StartsWith("[a] linux-test giver PASS drop_mib=128", r.Require("[a] linux-test giver"));
            Assert.StartsWith("[b] linux-test taker PASS grow_mib=128", r.Require("[b] linux-test taker"));
            foreach (var t in new[] { "demand", "remap", "walk" }) r.AssertPasses("c", t);
            r.Require("[hv] balloon_move: received from vm a 32768 pages (128MiB)");
            r.Require("[hv] balloon_move: handed to vm b 32768 pages (128MiB)");
            Assert.Equal(32768, r.Lines.Where(l => l.StartsWith("STAT vm=a ")).Select(l => long.Parse(Regex.Match(l, @"balloon_inflated=(\d+)").Groups[1].Value)).First());
            string b = r.Require("STAT vm=b ");
            Assert.Contains("ballooned_touches=0", b);
            long faults = long.Parse(Regex.Match(b, @"stage2_faults=(\d+)").Groups[1].Value);
            long ahead = long.Parse(Regex.Match(b, @"pages_prefaulted=(\d+)").Groups[1].Value);
            Assert.True(ahead > 20 * faults, $"fault_around=64 should map most pages ahead of a touch: {faults} faults, {ahead} ahead");
            // An idle Linux VM waits in WFI until an interrupt is pending for it
            // (its timer, its devices): it has fewer WFI exits than interrupts
            // it was given (about 3% in practice). Handing the CPU back and
            // forth between two idle VMs makes fifteen times as many, and
            // waking a VM on its timer's deadline before the timer's interrupt
            // is there makes it spin through WFI until it is (up to 1.6 times).
            // And with both idle the CPU sleeps.
            foreach (var vm in new[] { "a", "b" })
            {
                string stat = r.Require($"STAT vm={vm} ");
                long wfx = long.Parse(Regex.Match(stat, @"exits_wfx=(\d+)").Groups[1].Value);
                long injected = long.Parse(Regex.Match(stat, @"vgic_injected=(\d+)").Groups[1].Value);
                Assert.True(wfx <= injected, $"vm {vm}: {wfx} WFI exits for {injected} interrupts");
            }
            Assert.True(r.Stat("cpu_idle_sleeps") > 0, "with both Linux VMs idle the CPU should sleep");
            Assert.Equal(r.Stat("frames_free_start"), r.Stat("frames_free_end"));
        }

        // The monitor's `balloon a 128M` alone: Linux inflates, MemTotal drops,
        // and the idle CPU scrubs the frames it gave.
        [Fact]
        public void MonitorBalloonCommandShrinksLinux()
        {
            string conf = GuestConfig.Write($"vm a mem=256M balloon=on $LINUX {Console} test=giver\"\n");
            var r = Qemu.Run(new[] { conf }, timeoutSeconds: 120, input: new[]
            {
                ("[a] giver: MemTotal", "balloon a 128M\r"),
            });
            r.Require("[hv] balloon a: target 32768 pages (128MiB)");
            Assert.StartsWith("[a] linux-test giver PASS drop_mib=128", r.Require("[a] linux-test giver"));
            // The frames Linux gave were scrubbed while it slept, none on the
            // way to a guest (kernel/Mm/FrameAllocator.cs).
            Assert.Equal(32768, r.Stat("frames_scrubbed_idle"));
            Assert.Equal(0, r.Stat("frames_scrubbed_on_allocation"));
        }

        // DEFLATE_ON_OOM (balloon=oom): most of the memory starts in the
        // balloon; asking for more than is left makes Linux take pages back
        // from the balloon rather than fail or kill.
        [Fact]
        public void DeflateOnOomGivesMemoryBackUnderPressure()
        {
            string conf = GuestConfig.Write($"vm o mem=256M balloon=oom boot_balloon=160M $LINUX {Console} test=oom\"\n");
            var r = Qemu.Run(new[] { conf }, timeoutSeconds: 120);
            Assert.StartsWith("[o] linux-test oom PASS", r.Require("[o] linux-test oom"));
            Assert.DoesNotContain(r.Lines, l => l.Contains("Out of memory: Killed"));
        }

        // Console input reaches the focused VM: Ctrl-T gives the serial console
        // to the Linux shell, a typed command runs there.
        [Fact]
        public void TypedCommandsRunInTheLinuxShell()
        {
            string conf = GuestConfig.Write($"vm sh mem=256M $LINUX {Console}\"\n");
            var r = Qemu.Run(new[] { conf }, timeoutSeconds: 120, input: new[]
            {
                ("[sh] linux: starting a shell", "\u0014echo typed-$((6*7))\r"),
                ("[sh] typed-42", "poweroff -f\r"),
            });
            r.Require("[sh] typed-42");
            r.Require("[hv] vm sh stopped: SYSTEM_OFF");
        }
    }
}
