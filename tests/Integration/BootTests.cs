using System.Text.RegularExpressions;
using Hypervisor.Tests.Support;
using Xunit;

namespace Hypervisor.Tests.Integration
{
    // Boots the real image in QEMU and checks what the serial console says.
    [Trait("Category", "Integration")]
    public class BootTests
    {
        private static readonly Regex Banner = new Regex(@"^\[hv\] el=(\d) cpus=(\d+) ram=(\d+)MiB free=(\d+)(KiB|MiB) bootargs=""(.*)""$");

        [Theory]
        [InlineData("256M", 256)]
        [InlineData("1G", 1024)]
        public void BannerReportsEl2AndRamFromDashM(string mem, int expectedMiB)
        {
            var r = Qemu.Run(new[] { "--mem", mem, "--append", "quiet=1 hello" });
            var m = Banner.Match(r.Require("[hv] el="));
            Assert.True(m.Success, "banner malformed: " + r.Line("[hv] el="));
            Assert.Equal("2", m.Groups[1].Value);
            Assert.Equal(expectedMiB.ToString(), m.Groups[3].Value);
            Assert.Equal("quiet=1 hello", m.Groups[6].Value);
            Assert.Equal(0, r.ExitCode);
            Assert.False(r.TimedOut);

            // The allocator covers all of RAM; what is free is RAM minus the
            // image, its tables, the DTB and the 2 MiB below the image.
            long total = r.Stat("frames_total");
            Assert.Equal(expectedMiB * 256L, total);
            long free = r.Stat("frames_free");
            long used = r.Stat("frames_hypervisor") + r.Stat("frames_firmware") + r.Stat("frames_bundle");
            Assert.Equal(total, free + used);
            Assert.True(free > total * 9 / 10, $"only {free} of {total} frames free");
        }

        [Fact]
        public void SmpTwoIsReported()
        {
            var r = Qemu.Run(new[] { "--smp", "2" });
            var m = Banner.Match(r.Require("[hv] el="));
            Assert.Equal("2", m.Groups[2].Value);
            Assert.Equal(0, r.ExitCode);
        }

        // A GICv2 host: one line saying why, and a clean power-off (it used
        // to hang silently after the STAT line).
        [Fact]
        public void GicV2IsRefusedWithOneLine()
        {
            var r = Qemu.Run(new[] { "--gic", "2", GuestConfig.Write("vm g mem=32M image=$ELF args=\"tests=uart\"\n") }, timeoutSeconds: 30);
            Assert.Contains("GICv2 is not supported", r.Require("[hv] no GICv3"));
            Assert.False(r.TimedOut, r.Tail());
            Assert.Equal(0, r.ExitCode);
        }

        [Fact]
        public void RunEndsByItselfWithPsciOff()
        {
            var r = Qemu.Run(new string[0], timeoutSeconds: 30);
            Assert.False(r.TimedOut, "QEMU did not power off by itself:\n" + r.Tail());
            Assert.Equal(0, r.ExitCode);
            r.Require("[hv] no VMs to run; powering off");
            Assert.Null(r.Line("[hv] PANIC"));
        }

        [Fact]
        public void BundleIsReservedWhenGiven()
        {
            // A bundle with just a config: its frames must be owned by "bundle".
            string dir = Scratch.NewDirectory("hvtest");
            string conf = System.IO.Path.Combine(dir, "vms.conf");
            System.IO.File.WriteAllText(conf, "# empty bundle\n");
            var r = Qemu.Run(new[] { conf });
            r.Require("[hv] image ");
            Assert.Contains(" bundle 0x", r.Line("[hv] image "));
            Assert.True(r.Stat("frames_bundle") >= 1);
            Assert.Equal(0, r.ExitCode);
        }
    }

    [Trait("Category", "Integration")]
    public class PanicTests
    {
        [Fact]
        public void NullDereferenceFromCSharpNamesDataAbortAtEl2()
        {
            var r = Qemu.Run(new[] { "--append", "fault=null" });
            string panic = r.Require("[hv] PANIC:");
            Assert.StartsWith("[hv] PANIC: data abort at EL2 (EC=0x25)", panic);
            // The field sits 8 bytes past the object header: FAR is that address.
            Assert.Contains("FAR_EL2=0x0000000000000008", panic);
            Assert.Matches(@"ESR_EL2=0x0000000096|ESR_EL2=0x0000000097", panic);
            Assert.Matches(@"ELR_EL2=0x00000000402[0-9a-f]{5}", panic);
            // hv-run turns a panic into exit status 3; QEMU itself powered off.
            Assert.Equal(3, r.ExitCode);
            Assert.False(r.TimedOut);
        }

        [Fact]
        public void UndefinedInstructionNamesUnknownClass()
        {
            var r = Qemu.Run(new[] { "--append", "fault=undef" });
            string panic = r.Require("[hv] PANIC:");
            Assert.StartsWith("[hv] PANIC: unknown reason (undefined instruction) (EC=0x00)", panic);
            Assert.Contains("ESR_EL2=0x0000000002000000", panic);
            Assert.Equal(3, r.ExitCode);
        }

        [Fact]
        public void NoFaultWithoutTheBootarg()
        {
            var r = Qemu.Run(new[] { "--append", "faulty=null" });
            Assert.Null(r.Line("[hv] PANIC"));
            Assert.Equal(0, r.ExitCode);
        }
    }
}
