using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using Hypervisor.Tests.Support;
using Xunit;

namespace Hypervisor.Tests.Integration
{
    // vms.conf initrd=FILE: the hypervisor copies the file from the guest bundle
    // above the image (half-way into RAM, or 128 MiB in, as QEMU does; see
    // kernel/Boot/BootLayout.cs) and names the range in /chosen; the C# guest's
    // `initrd` self-test reads it back from there (guest/SelfTests.cs).
    [Trait("Category", "Integration")]
    public class InitrdTests
    {
        private static readonly Regex HvLine = new Regex(@"^\[hv\] vm (\w+): initrd (\S+) at 0x([0-9a-f]+) \((\d+) bytes\)$");
        private static readonly Regex GuestLine = new Regex(@"TEST initrd PASS start=0x([0-9a-f]+) end=0x([0-9a-f]+) size=(\d+) ");

        // The same bytes guest/SelfTests.cs InitrdPattern expects.
        internal static string WritePattern(string dir, string name, int length)
        {
            var bytes = new byte[length];
            for (long i = 0; i < length; i++) bytes[i] = (byte)((i >> 12) * 13 + i * 7 + 0x5a);
            string path = Path.Combine(dir, name);
            File.WriteAllBytes(path, bytes);
            return path;
        }

        private static string Conf(string text, out string dir)
        {
            string conf = GuestConfig.Write(text);
            dir = Path.GetDirectoryName(conf);
            return conf;
        }

        [Fact]
        public void GuestFindsItsInitrdHalfWayIntoRamAndAgainAfterEachReset()
        {
            const int Length = 300 * 1024 + 123;     // not a whole number of pages
            string conf = Conf("vm g mem=32M image=$ELF initrd=pattern.bin args=\"tests=initrd reset\" resets=2\n", out string dir);
            WritePattern(dir, "pattern.bin", Length);
            var r = Qemu.Run(new[] { conf });

            var hv = HvLine.Match(r.Require("[hv] vm g: initrd "));
            Assert.True(hv.Success, r.Line("[hv] vm g: initrd "));
            Assert.Equal("pattern.bin", hv.Groups[2].Value);
            Assert.Equal(Length.ToString(), hv.Groups[4].Value);
            ulong start = System.Convert.ToUInt64(hv.Groups[3].Value, 16);
            Assert.Equal(0x40000000UL + (16UL << 20), start);      // half of the 32 MiB

            // Boot plus two resets: the guest overwrites both ends each time, so
            // every pass after the first needs the hypervisor to copy it again.
            var passes = r.Lines.Where(l => l.StartsWith("[g] TEST initrd ")).ToList();
            Assert.Equal(3, passes.Count);
            foreach (var line in passes)
            {
                var m = GuestLine.Match(line);
                Assert.True(m.Success, line);
                Assert.Equal(start, System.Convert.ToUInt64(m.Groups[1].Value, 16));
                Assert.Equal(Length.ToString(), m.Groups[3].Value);
            }
            Assert.Null(r.Line("[hv] vms.conf:"));          // no warning or refusal
            Assert.Equal(r.Stat("frames_free_start"), r.Stat("frames_free_end"));
            Assert.Equal(0, r.ExitCode);
        }

        [Fact]
        public void MissingOrOversizedInitrdCostsThatVmOnly()
        {
            string conf = Conf(
                "vm ok mem=32M image=$ELF initrd=small.bin args=\"tests=uart,initrd\"\n" +
                "vm gone mem=32M image=$ELF initrd=nothere.bin args=\"tests=uart\"\n" +
                "vm big mem=16M image=$ELF initrd=big.bin args=\"tests=uart\"\n" +
                "vm huge mem=8M image=$ELF initrd=huge.bin args=\"tests=uart\"\n", out string dir);
            WritePattern(dir, "small.bin", 4096);
            WritePattern(dir, "big.bin", 15 << 20);      // would cover the guest image
            WritePattern(dir, "huge.bin", 9 << 20);      // more than the VM's RAM
            var r = Qemu.Run(new[] { conf });

            Assert.EndsWith(": vm gone not started: initrd not in the bundle: nothere.bin", r.Require("[hv] vms.conf:2:"));
            Assert.EndsWith(": vm big not started: initrd does not fit in RAM above the image: big.bin", r.Require("[hv] vms.conf:3:"));
            Assert.EndsWith(": vm huge not started: initrd larger than the VM's RAM: huge.bin", r.Require("[hv] vms.conf:4:"));
            r.AssertPasses("ok", "uart");
            r.AssertPasses("ok", "initrd");
            Assert.Null(r.Line("[gone]"));
            Assert.Null(r.Line("[hv] PANIC"));
            Assert.Equal(0, r.ExitCode);
        }

        [Fact]
        public void VmWithoutInitrdHasNoInitrdInItsTree()
        {
            string conf = Conf("vm n mem=32M image=$ELF args=\"tests=initrd\"\n", out _);
            var r = Qemu.Run(new[] { conf });
            Assert.StartsWith("[n] TEST initrd FAIL start=0x0 end=0x0", r.Require("[n] TEST initrd "));
            Assert.Null(r.Line("[hv] vm n: initrd"));
            Assert.Equal(0, r.ExitCode);
        }
    }
}
