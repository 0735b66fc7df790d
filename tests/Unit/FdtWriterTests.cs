using Hypervisor.Tests.Support;
using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.RegularExpressions;
using Hypervisor.Boot;
using Xunit;

namespace Hypervisor.Tests.Unit
{
    public class FdtWriterTests
    {
        private static GuestDtbSpec Spec(int cpus = 2, bool initrd = false) => new GuestDtbSpec
        {
            MemoryBase = 0x40000000,
            MemorySize = 256UL << 20,
            CpuCount = cpus,
            HasInitrd = initrd,
            InitrdStart = initrd ? 0x48000000UL : 0,
            InitrdEnd = initrd ? 0x48123456UL : 0,
        };

        private static byte[] BuildGuest(in GuestDtbSpec spec, string bootargs)
        {
            var buffer = new byte[4096];
            Assert.Equal(FdtWriteStatus.Ok, GuestDtb.Build(buffer, spec, Encoding.ASCII.GetBytes(bootargs), out int size));
            Assert.InRange(size, 100, buffer.Length);
            return buffer.AsSpan(0, size).ToArray();
        }

        // dtc decompiles the blob: it only succeeds on a well-formed FDT.
        private static string Decompile(byte[] blob)
        {
            string dir = Scratch.NewDirectory("fdtw");
            string file = Path.Combine(dir, "guest.dtb");
            File.WriteAllBytes(file, blob);
            var psi = new ProcessStartInfo("dtc") { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in new[] { "-I", "dtb", "-O", "dts", "-o", "-", file }) psi.ArgumentList.Add(a);
            using var p = Process.Start(psi);
            var stdout = p.StandardOutput.ReadToEndAsync();
            string err = p.StandardError.ReadToEnd();
            Assert.True(p.WaitForExit(30000), "dtc hung");
            Assert.True(p.ExitCode == 0, "dtc failed: " + err);
            return stdout.Result;
        }

        // The body of one node in dtc's output, e.g. Node(dts, "psci").
        private static string Node(string dts, string name)
        {
            var m = Regex.Match(dts, @"\n\t" + Regex.Escape(name) + @" \{\n(.*?)\n\t\};", RegexOptions.Singleline);
            Assert.True(m.Success, "node " + name + " missing in:\n" + dts);
            return m.Groups[1].Value;
        }

        [Theory]
        [InlineData(1, false, "console=ttyAMA0")]
        [InlineData(2, true, "role=giver tests=all")]
        [InlineData(8, true, "")]
        public void GuestTreeRoundTripsThroughTheReader(int cpus, bool initrd, string bootargs)
        {
            var spec = Spec(cpus, initrd);
            byte[] blob = BuildGuest(spec, bootargs);
            Assert.Equal(FdtStatus.Ok, Fdt.Parse(blob, out var info));
            Assert.Equal((uint)blob.Length, info.TotalSize);
            Assert.Equal(spec.MemoryBase, info.MemoryBase);
            Assert.Equal(spec.MemorySize, info.MemorySize);
            Assert.Equal(cpus, info.CpuCount);
            Assert.Equal(GuestDtb.UartBase, info.UartBase);
            Assert.Equal(bootargs, Encoding.ASCII.GetString(blob, info.BootargsOffset, info.BootargsLength));
            Assert.Equal(initrd, info.HasInitrd);
            if (initrd)
            {
                Assert.Equal(spec.InitrdStart, info.InitrdStart);
                Assert.Equal(spec.InitrdEnd, info.InitrdEnd);
            }
        }

        [Fact]
        public void DtcReadsTheGuestTreeWithTheExpectedNodes()
        {
            string dts = Decompile(BuildGuest(Spec(2, initrd: true), "role=giver tests=all"));

            Assert.Contains("#address-cells = <0x02>;", dts);
            Assert.Contains("#size-cells = <0x02>;", dts);
            Assert.Contains("compatible = \"linux,dummy-virt\";", dts);
            Assert.Contains("model = \"hypervisor-vm\";", dts);

            string memory = Node(dts, "memory@40000000");
            Assert.Contains("device_type = \"memory\";", memory);
            Assert.Contains("reg = <0x00 0x40000000 0x00 0x10000000>;", memory);

            string cpus = Node(dts, "cpus");
            Assert.Contains("#address-cells = <0x01>;", cpus);
            Assert.Contains("#size-cells = <0x00>;", cpus);
            Assert.Equal(2, Regex.Matches(cpus, @"cpu@\d \{").Count);
            Assert.Matches(@"cpu@1 \{\s*device_type = ""cpu"";\s*compatible = ""arm,cortex-a72"";\s*reg = <0x01>;\s*enable-method = ""psci"";", cpus);

            string psci = Node(dts, "psci");
            Assert.Contains("compatible = \"arm,psci-1.0\\0arm,psci-0.2\";", psci);
            Assert.Contains("method = \"hvc\";", psci);

            string uart = Node(dts, "pl011@9000000");
            Assert.Contains("compatible = \"arm,pl011\\0arm,primecell\";", uart);
            Assert.Contains("reg = <0x00 0x9000000 0x00 0x1000>;", uart);

            string chosen = Node(dts, "chosen");
            Assert.Contains("bootargs = \"role=giver tests=all\";", chosen);
            Assert.Contains("stdout-path = \"/pl011@9000000\";", chosen);
            Assert.Contains("linux,initrd-start = <0x00 0x48000000>;", chosen);
            Assert.Contains("linux,initrd-end = <0x00 0x48123456>;", chosen);
        }

        // rng-seed and kaslr-seed, as QEMU's firmware tree has them, when the
        // hypervisor gives them (always, for a VM: kernel/Vm/VmBuilder.cs).
        [Fact]
        public void SeedsGoInChosen()
        {
            var spec = Spec(1);
            spec.KaslrSeed = 0x0123456789abcdef;
            byte[] seed = Enumerable.Range(0, 32).Select(i => (byte)(0xa0 + i)).ToArray();
            var buffer = new byte[4096];
            Assert.Equal(FdtWriteStatus.Ok, GuestDtb.Build(buffer, spec, Encoding.ASCII.GetBytes("x"), seed, out int size));
            string chosen = Node(Decompile(buffer.AsSpan(0, size).ToArray()), "chosen");
            Assert.Contains("kaslr-seed = <0x1234567 0x89abcdef>;", chosen);
            // (dtc prints a property of whole 32-bit words as cells)
            string cells = string.Join(" ", Enumerable.Range(0, 8).Select(i => "0x" + Convert.ToHexString(seed, i * 4, 4).ToLowerInvariant()));
            Assert.Contains("rng-seed = <" + cells + ">;", chosen);

            string without = Node(Decompile(BuildGuest(Spec(1), "x")), "chosen");
            Assert.DoesNotContain("seed", without);
        }

        [Fact]
        public void NoInitrdMeansNoInitrdProperties()
        {
            string dts = Decompile(BuildGuest(Spec(1), "x"));
            Assert.DoesNotContain("initrd", dts);
        }

        // What a Linux guest gets: the balloon's virtio-mmio node plus the GIC.
        private static GuestDtbSpec LinuxSpec(int cpus = 1)
        {
            var spec = Spec(cpus, initrd: true);
            spec.HasVirtio = true;
            spec.VirtioBase = 0x0a000000;
            spec.VirtioSize = 0x200;
            spec.VirtioSpi = 16;
            spec.HasGic = true;
            return spec;
        }

        // The cells of a property as dtc prints them, e.g. "<0x00 0x01 0x04>".
        private static string Property(string node, string name)
        {
            var m = Regex.Match(node, @"(?m)^\t*" + Regex.Escape(name) + @"( = (.*))?;$");
            Assert.True(m.Success, "property " + name + " missing in:\n" + node);
            return m.Groups[2].Value;
        }

        private static string Phandle(string node) => Property(node, "phandle");

        [Fact]
        public void GicTreeHasTheNodesQemuVirtGivesLinux()
        {
            string dts = Decompile(BuildGuest(LinuxSpec(), "console=ttyAMA0"));

            string gic = Node(dts, "intc@8000000");
            Assert.Equal("\"arm,gic-v3\"", Property(gic, "compatible"));
            Assert.Equal("<0x03>", Property(gic, "#interrupt-cells"));
            Assert.Equal("<0x02>", Property(gic, "#address-cells"));
            Assert.Equal("<0x02>", Property(gic, "#size-cells"));
            Assert.Equal("", Property(gic, "ranges"));
            Assert.Equal("", Property(gic, "interrupt-controller"));
            Assert.Equal("<0x01>", Property(gic, "#redistributor-regions"));
            // GICD 64 KiB, then one vCPU's redistributor (RD_base + SGI_base, 128 KiB).
            Assert.Equal("<0x00 0x8000000 0x00 0x10000 0x00 0x80a0000 0x00 0x20000>", Property(gic, "reg"));
            // The guest runs at EL1: no maintenance interrupt, no ITS.
            Assert.DoesNotContain("interrupts", gic);
            Assert.DoesNotContain("its@", gic);

            // The root names the GIC as everyone's interrupt parent.
            string root = dts.Substring(dts.IndexOf("/ {", StringComparison.Ordinal));
            root = root.Substring(0, root.IndexOf("\n\n", StringComparison.Ordinal));
            Assert.Equal(Phandle(gic), Property(root, "interrupt-parent"));

            string timer = Node(dts, "timer");
            Assert.Equal("\"arm,armv8-timer\\0arm,armv7-timer\"", Property(timer, "compatible"));
            // Secure phys 13, phys 14, virt 11, hyp 10; level-high, no CPU mask (GICv3).
            Assert.Equal("<0x01 0x0d 0x04 0x01 0x0e 0x04 0x01 0x0b 0x04 0x01 0x0a 0x04>", Property(timer, "interrupts"));
            Assert.Equal("", Property(timer, "always-on"));

            string clock = Node(dts, "apb-pclk");
            Assert.Equal("\"fixed-clock\"", Property(clock, "compatible"));
            Assert.Equal("<0x00>", Property(clock, "#clock-cells"));
            Assert.Equal("<0x16e3600>", Property(clock, "clock-frequency"));   // 24 MHz
            Assert.Equal("\"clk24mhz\"", Property(clock, "clock-output-names"));
            string pclk = Phandle(clock);
            Assert.NotEqual(Phandle(gic), pclk);

            string uart = Node(dts, "pl011@9000000");
            Assert.Equal("<0x00 0x01 0x04>", Property(uart, "interrupts"));      // SPI 1 = INTID 33, level
            Assert.Equal("<" + Inner(pclk) + " " + Inner(pclk) + ">", Property(uart, "clocks"));
            Assert.Equal("\"uartclk\\0apb_pclk\"", Property(uart, "clock-names"));

            string virtio = Node(dts, "virtio_mmio@a000000");
            Assert.Equal("\"virtio,mmio\"", Property(virtio, "compatible"));
            Assert.Equal("<0x00 0xa000000 0x00 0x200>", Property(virtio, "reg"));
            Assert.Equal("<0x00 0x10 0x04>", Property(virtio, "interrupts"));    // SPI 16 = INTID 48, level high (no lost edges)
            Assert.Equal("", Property(virtio, "dma-coherent"));
        }

        private static string Inner(string cells) => cells.Trim('<', '>');

        [Fact]
        public void GicRedistributorRegionCoversEveryCpu()
        {
            string gic = Node(Decompile(BuildGuest(LinuxSpec(cpus: 4), "")), "intc@8000000");
            Assert.Equal("<0x00 0x8000000 0x00 0x10000 0x00 0x80a0000 0x00 0x80000>", Property(gic, "reg"));
        }

        [Fact]
        public void GicTreeReadsBackThroughTheKernelsReader()
        {
            var spec = LinuxSpec();
            byte[] blob = BuildGuest(spec, "console=ttyAMA0");
            Assert.Equal(FdtStatus.Ok, Fdt.Parse(blob, out var info));
            Assert.Equal(GuestDtb.GicDistributorBase, info.GicDistributor);
            Assert.Equal(GuestDtb.GicRedistributorBase, info.GicRedistributor);
            Assert.Equal(0x0a000000UL, info.VirtioBase);
            Assert.Equal(GuestDtb.UartBase, info.UartBase);
            Assert.Equal(spec.InitrdStart, info.InitrdStart);
            Assert.Equal(spec.InitrdEnd, info.InitrdEnd);
        }

        [Fact]
        public void WithoutGicTheTreeHasNoInterruptsOrClocks()
        {
            var spec = LinuxSpec();
            spec.HasGic = false;
            string dts = Decompile(BuildGuest(spec, "x"));
            foreach (string absent in new[] { "intc@", "timer", "apb-pclk", "interrupt", "clocks", "clock-names", "phandle" })
                Assert.DoesNotContain(absent, dts);
            Assert.Contains("dma-coherent;", Node(dts, "virtio_mmio@a000000"));
        }

        [Fact]
        public void GicTreeFitsTheStringsScratchAndStoresEachNameOnce()
        {
            byte[] blob = BuildGuest(LinuxSpec(), "console=ttyAMA0 rdinit=/init");
            uint stringsOffset = Fdt.ReadBe32(blob, 12), stringsSize = Fdt.ReadBe32(blob, 32);
            string strings = Encoding.ASCII.GetString(blob, (int)stringsOffset, (int)stringsSize);
            foreach (string name in new[] { "interrupts", "phandle", "#address-cells", "compatible", "reg" })
                Assert.Single(Regex.Matches(strings, "(^|\0)" + Regex.Escape(name) + "\0"));
        }

        [Fact]
        public void HeaderAndStringsBlockAreAsSpecified()
        {
            byte[] blob = BuildGuest(Spec(4, initrd: true), "a");
            Assert.Equal(Fdt.Magic, Fdt.ReadBe32(blob, 0));
            Assert.Equal((uint)blob.Length, Fdt.ReadBe32(blob, 4));
            Assert.Equal(56u, Fdt.ReadBe32(blob, 8));          // structure after header + empty reservation
            Assert.Equal(40u, Fdt.ReadBe32(blob, 16));         // reservation block
            Assert.Equal(17u, Fdt.ReadBe32(blob, 20));
            Assert.Equal(16u, Fdt.ReadBe32(blob, 24));
            Assert.Equal(0UL, Fdt.ReadBe64(blob, 40));
            Assert.Equal(0UL, Fdt.ReadBe64(blob, 48));
            uint stringsOffset = Fdt.ReadBe32(blob, 12), stringsSize = Fdt.ReadBe32(blob, 32);
            Assert.Equal((uint)blob.Length, stringsOffset + stringsSize);
            Assert.Equal(56u + Fdt.ReadBe32(blob, 36), stringsOffset);
            Assert.Equal(9u, Fdt.ReadBe32(blob, (int)stringsOffset - 4));   // FDT_END

            // Each name once, however many nodes use it (compatible: 6 times, reg: 6 times).
            string strings = Encoding.ASCII.GetString(blob, (int)stringsOffset, (int)stringsSize);
            foreach (string name in new[] { "compatible", "reg", "device_type", "#address-cells", "enable-method" })
                Assert.Single(Regex.Matches(strings, "(^|\0)" + Regex.Escape(name) + "\0"));
        }

        [Fact]
        public void TooSmallBufferFailsWithoutWritingPastIt()
        {
            int full = BuildGuest(Spec(2, initrd: true), "role=giver tests=all").Length;
            byte[] args = Encoding.ASCII.GetBytes("role=giver tests=all");
            for (int allowed = 0; allowed < full; allowed++)
            {
                var big = new byte[full + 64];
                Array.Fill(big, (byte)0xa5);
                var status = GuestDtb.Build(big.AsSpan(0, allowed), Spec(2, initrd: true), args, out int size);
                Assert.Equal(FdtWriteStatus.BufferTooSmall, status);
                Assert.Equal(0, size);
                for (int i = allowed; i < big.Length; i++) Assert.Equal(0xa5, big[i]);
            }
            var exact = new byte[full];
            Assert.Equal(FdtWriteStatus.Ok, GuestDtb.Build(exact, Spec(2, initrd: true), args, out int exactSize));
            Assert.Equal(full, exactSize);
        }

        [Fact]
        public void BadSpecsAreRefused()
        {
            var buffer = new byte[4096];
            var spec = Spec(0);
            Assert.Equal(FdtWriteStatus.BadArgument, GuestDtb.Build(buffer, spec, default, out _));
            spec = Spec(VmConfig.MaxCpus + 1);
            Assert.Equal(FdtWriteStatus.BadArgument, GuestDtb.Build(buffer, spec, default, out _));
            spec = Spec(1, initrd: true);
            spec.InitrdEnd = spec.InitrdStart - 1;
            Assert.Equal(FdtWriteStatus.BadArgument, GuestDtb.Build(buffer, spec, default, out _));
        }

        [Fact]
        public void WriterChecksNesting()
        {
            var buffer = new byte[1024];
            var strings = new byte[128];

            var w = new FdtWriter(buffer, strings);
            w.PropertyU32("x", 1);                        // outside any node
            Assert.Equal(FdtWriteStatus.BadNesting, w.Finish(out _));

            w = new FdtWriter(buffer, strings);
            w.BeginNode("");
            w.BeginNode("child");
            w.EndNode();
            w.PropertyU32("late", 1);                     // after a child node
            Assert.Equal(FdtWriteStatus.BadNesting, w.Status);

            w = new FdtWriter(buffer, strings);
            w.BeginNode("");
            Assert.Equal(FdtWriteStatus.BadNesting, w.Finish(out _));   // still open

            w = new FdtWriter(buffer, strings);
            w.EndNode();
            Assert.Equal(FdtWriteStatus.BadNesting, w.Status);

            w = new FdtWriter(buffer, strings);
            w.BeginNode("");
            w.EndNode();
            w.BeginNode("");                              // a second root
            Assert.Equal(FdtWriteStatus.BadNesting, w.Status);
        }

        [Fact]
        public void WriterReportsFullStringsScratch()
        {
            var w = new FdtWriter(new byte[1024], new byte[8]);
            w.BeginNode("");
            w.PropertyU32("abc", 1);                      // 4 bytes
            w.PropertyU32("abc", 2);                      // shared
            w.PropertyU32("defgh", 3);                    // 6 more: does not fit
            Assert.Equal(FdtWriteStatus.StringsFull, w.Status);
        }

        [Fact]
        public void GeneralPropertiesDecompileAsWritten()
        {
            var buffer = new byte[1024];
            var w = new FdtWriter(buffer, new byte[256]);
            w.BeginNode("");
            w.PropertyU32("#address-cells", 2);
            w.PropertyU32("#size-cells", 2);
            w.BeginNode("node", 0xabc0);
            w.PropertyEmpty("flag");
            w.PropertyCells("cells", new uint[] { 1, 2, 0xdeadbeef });
            w.PropertyU64("wide", 0x123456789aUL);
            w.Property("raw", new byte[] { 1, 2, 3 });
            w.PropertyStringList("list", "a\0bc\0");
            w.EndNode();
            w.EndNode();
            Assert.Equal(FdtWriteStatus.Ok, w.Finish(out int size));
            string dts = Decompile(buffer.AsSpan(0, size).ToArray());
            string node = Node(dts, "node@abc0");
            Assert.Contains("flag;", node);
            Assert.Contains("cells = <0x01 0x02 0xdeadbeef>;", node);
            Assert.Contains("wide = <0x12 0x3456789a>;", node);
            Assert.Contains("raw = [01 02 03];", node);
            Assert.Contains("list = \"a\\0bc\";", node);
        }
    }
}
