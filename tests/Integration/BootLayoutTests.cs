using System;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using Hypervisor.Tests.Support;
using Xunit;

namespace Hypervisor.Tests.Integration
{
    // The boot layout QEMU's loader makes for -kernel, which guests written
    // for it rely on (kernel/Boot/BootLayout.cs): image, then initrd, then
    // device tree. The C# guest's `dtbabove` self-test checks it from inside
    // against its own linker symbols, loaded as ELF, as an arm64 Image and as
    // raw bytes; the hypervisor's layout lines (at creation and in the
    // monitor's `vms`) must say the same.
    [Trait("Category", "Integration")]
    public class BootLayoutTests
    {
        private const ulong RamBase = 0x40000000, MiB = 1UL << 20;
        private static readonly Regex HvLayout = new Regex(
            @"^\[hv\] vm (\w+): image 0x([0-9a-f]+)-0x([0-9a-f]+) initrd (none|0x([0-9a-f]+)-0x([0-9a-f]+)) dtb 0x([0-9a-f]+)-0x([0-9a-f]+)$");
        private static readonly Regex GuestVerdict = new Regex(
            @"TEST dtbabove PASS dtb=0x([0-9a-f]+)-0x([0-9a-f]+) image=0x([0-9a-f]+)-0x([0-9a-f]+) initrd=0x([0-9a-f]+)-0x([0-9a-f]+) ");

        private static ulong Hex(Group g) => Convert.ToUInt64(g.Value, 16);

        [Fact]
        public void EveryImageKindFindsItsTreeAboveItselfAndTheInitrdBetween()
        {
            string conf = GuestConfig.Write(
                // First, so that the first Ctrl-T gives it the console.
                "vm b mem=512M image=$BIN kind=raw args=\"tests=dtbabove role=echo\"\n" +
                "vm e mem=64M image=$ELF args=\"tests=dtbabove\"\n" +
                "vm i mem=64M image=$IMG kind=image initrd=rd.bin args=\"tests=dtbabove,initrd\"\n" +
                "vm r mem=32M image=$BIN kind=raw initrd=rd.bin args=\"tests=dtbabove,initrd\"\n");
            const int InitrdLength = 300 * 1024 + 5;
            InitrdTests.WritePattern(Path.GetDirectoryName(conf), "rd.bin", InitrdLength);   // what the initrd self-test reads
            var r = Qemu.Run(new[] { conf }, timeoutSeconds: 90, input: new[]
            {
                ("[b] echo: type a line", "vms\r\u0014bye\r"),
            });

            foreach (var (vm, ramSize, kind) in new[] { ("e", 64 * MiB, "elf"), ("i", 64 * MiB, "image"), ("r", 32 * MiB, "raw"), ("b", 512 * MiB, "raw") })
            {
                string verdict = r.Require($"[{vm}] TEST dtbabove ");
                var g = GuestVerdict.Match(verdict);
                Assert.True(g.Success, verdict);
                var lines = r.Lines.Where(l => l.StartsWith($"[hv] vm {vm}: image ")).ToList();
                var hv = HvLayout.Match(lines[0]);
                Assert.True(hv.Success, lines[0]);

                // The guest was entered with x0 = the tree the hypervisor names.
                Assert.Equal(Hex(hv.Groups[7]), Hex(g.Groups[1]));
                ulong dtb = Hex(g.Groups[1]), imageEnd = Hex(g.Groups[4]);
                Assert.True(dtb >= imageEnd, $"{kind}: tree below the image's end: {verdict}");
                Assert.True(dtb + 0x10000 <= RamBase + ramSize);
                // The initrd at half of RAM (at most 128 MiB in), the tree on the
                // next 2 MiB boundary above it, or there without an initrd.
                ulong initrdAt = RamBase + Math.Min(ramSize / 2, 128 * MiB);
                bool hasInitrd = vm == "i" || vm == "r";
                Assert.Equal(hasInitrd ? "0x" : "none", hv.Groups[4].Value.Substring(0, hasInitrd ? 2 : 4));
                if (hasInitrd)
                {
                    Assert.Equal(initrdAt, Hex(hv.Groups[5]));
                    Assert.Equal(initrdAt, Hex(g.Groups[5]));
                    Assert.Equal(initrdAt + InitrdLength, Hex(g.Groups[6]));
                    Assert.Equal(initrdAt + 2 * MiB, dtb);
                    r.AssertPasses(vm, "initrd");
                }
                else
                {
                    Assert.Equal(initrdAt, dtb);
                }
            }
            // The image extents the hypervisor shows: ELF and raw at 0x40080000, the Image 2 MiB in.
            Assert.StartsWith("[hv] vm e: image 0x0000000040080000-", r.Require("[hv] vm e: image "));
            Assert.StartsWith("[hv] vm i: image 0x0000000040200000-", r.Require("[hv] vm i: image "));
            Assert.StartsWith("[hv] vm r: image 0x0000000040080000-", r.Require("[hv] vm r: image "));

            // The monitor's `vms` lists the same layout for every VM.
            int monitor = r.Lines.ToList().FindIndex(l => l.StartsWith("[hv] monitor> vms"));
            Assert.True(monitor >= 0, r.Tail());
            foreach (var vm in new[] { "e", "i", "r", "b" })
            {
                var seen = r.Lines.Where(l => l.StartsWith($"[hv] vm {vm}: image ")).ToList();
                Assert.Equal(2, seen.Count);
                Assert.Equal(seen[0], seen[1]);
            }
            Assert.Null(r.Line("[hv] vms.conf:"));
            Assert.Null(r.Line("[hv] PANIC"));
            Assert.Equal(0, r.ExitCode);
        }

        // Image, initrd and tree that do not fit together: that VM is refused
        // with a line saying which, the others run.
        [Fact]
        public void WhatDoesNotFitIsRefusedWithAReason()
        {
            string conf = GuestConfig.Write(
                "vm ok mem=8M image=$ELF args=\"tests=dtbabove\"\n" +
                "vm full mem=4M image=full.bin kind=raw args=\"\"\n" +
                "vm late mem=8M image=$ELF initrd=late.bin args=\"\"\n");
            string dir = Path.GetDirectoryName(conf);
            File.WriteAllBytes(Path.Combine(dir, "full.bin"), new byte[(4 << 20) - 0x80000 - 0x8000]);   // leaves 32 KiB
            File.WriteAllBytes(Path.Combine(dir, "late.bin"), new byte[5 << 20]);   // more than is above the image (3.5 MiB)
            var r = Qemu.Run(new[] { conf });
            Assert.EndsWith(": vm full not started: no room in RAM for the device tree above the image and initrd", r.Require("[hv] vms.conf:2:"));
            Assert.EndsWith(": vm late not started: initrd does not fit in RAM above the image: late.bin", r.Require("[hv] vms.conf:3:"));
            r.AssertPasses("ok", "dtbabove");
            Assert.Equal(0, r.ExitCode);
        }
    }
}
