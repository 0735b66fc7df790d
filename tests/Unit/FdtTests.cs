using System;
using System.Text;
using Hypervisor.Boot;
using Hypervisor.Tests.Support;
using Xunit;

namespace Hypervisor.Tests.Unit
{
    public class FdtTests
    {
        private static string Bootargs(byte[] blob, FdtInfo info) =>
            info.BootargsOffset < 0 ? null : Encoding.ASCII.GetString(blob, info.BootargsOffset, info.BootargsLength);

        [Theory]
        [InlineData("256M", 1, 256UL << 20)]
        [InlineData("1G", 2, 1UL << 30)]
        [InlineData("3G", 4, 3UL << 30)]
        public void ReadsWhatQemuVirtPassesIn(string mem, int smp, ulong bytes)
        {
            byte[] blob = Dtb.FromQemu(mem, smp, "fault=null console=hv");
            Assert.Equal(FdtStatus.Ok, Fdt.Parse(blob, out var info));
            Assert.Equal(0x40000000UL, info.MemoryBase);
            Assert.Equal(bytes, info.MemorySize);
            Assert.Equal(smp, info.CpuCount);
            Assert.Equal(0x09000000UL, info.UartBase);
            Assert.Equal(0x08000000UL, info.GicDistributor);
            Assert.Equal(0x080a0000UL, info.GicRedistributor);
            Assert.Equal("fault=null console=hv", Bootargs(blob, info));
            Assert.False(info.HasInitrd);
            Assert.Equal((uint)blob.Length, info.TotalSize);
        }

        // Every CPU's MPIDR (QEMU virt puts 8 CPUs in one cluster: Aff0 = 0..7
        // up to 8, then Aff1 counts clusters) and the PSCI conduit: with
        // virtualization=on and no EL3 firmware QEMU answers PSCI on SMC.
        [Fact]
        public unsafe void ReadsEveryCpuAndThePsciConduit()
        {
            byte[] blob = Dtb.FromQemu("256M", 4);
            Assert.Equal(FdtStatus.Ok, Fdt.Parse(blob, out var info));
            Assert.Equal(4, info.CpuCount);
            for (int i = 0; i < 4; i++) Assert.Equal((ulong)i, info.Mpidr[i]);
            Assert.True(info.HasPsci);
            Assert.False(info.PsciUsesHvc);

            blob = Dtb.FromQemu("256M", 2, virtualization: false);
            Assert.Equal(FdtStatus.Ok, Fdt.Parse(blob, out info));
            Assert.True(info.PsciUsesHvc);
        }

        [Fact]
        public unsafe void ReadsTwoCellCpuIdsAndKeepsCountingPastTheLimit()
        {
            var dts = new System.Text.StringBuilder(@"/dts-v1/;
/ { #address-cells = <2>; #size-cells = <2>;
  memory@40000000 { device_type = ""memory""; reg = <0 0x40000000 0 0x10000000>; };
  cpus { #address-cells = <2>; #size-cells = <0>;
");
            for (int i = 0; i < 10; i++) dts.Append($"    cpu@{i} {{ device_type = \"cpu\"; reg = <0x1 0x{i:x}00>; }};\n");
            dts.Append("  };\n  psci { compatible = \"arm,psci-1.0\"; method = \"hvc\"; };\n};\n");
            Assert.Equal(FdtStatus.Ok, Fdt.Parse(Dtb.FromSource(dts.ToString()), out var info));
            Assert.Equal(10, info.CpuCount);
            for (int i = 0; i < FdtInfo.MaxCpus; i++) Assert.Equal((1UL << 32) | ((ulong)i << 8), info.Mpidr[i]);
            Assert.True(info.PsciUsesHvc);
        }

        // QEMU's GICv2 node has the same name (intc@8000000) and a reg of
        // GICD, GICC, GICH and GICV: it must not be taken for a GICv3.
        [Fact]
        public void AGicV2IsNoGicV3()
        {
            byte[] blob = Dtb.FromQemu("256M", 1, gic: 2);
            Assert.Equal(FdtStatus.Ok, Fdt.Parse(blob, out var info));
            Assert.Equal(0UL, info.GicDistributor);
            Assert.Equal(0UL, info.GicRedistributor);
            Assert.True(Fdt.ListContains(System.Text.Encoding.ASCII.GetBytes("arm,gic-400\0arm,gic-v3\0"), "arm,gic-v3"));
            Assert.False(Fdt.ListContains(System.Text.Encoding.ASCII.GetBytes("arm,gic-v3x\0"), "arm,gic-v3"));
        }

        [Fact]
        public void ReadsInitrdRangeInBothCellSizes()
        {
            const string dts = @"/dts-v1/;
/ {
    #address-cells = <2>; #size-cells = <2>;
    memory@80000000 { device_type = ""memory""; reg = <0x0 0x80000000 0x1 0x00000000>; };
    chosen { bootargs = ""a b""; linux,initrd-start = <0x0 0x88000000>; linux,initrd-end = <0x88001234>; };
    cpus { #address-cells = <1>; #size-cells = <0>; cpu@0 { reg = <0>; }; cpu@1 { reg = <1>; }; cpu@2 { reg = <2>; }; };
    pl011@1c090000 { compatible = ""arm,pl011""; reg = <0x0 0x1c090000 0x0 0x1000>; };
};";
            byte[] blob = Dtb.FromSource(dts);
            Assert.Equal(FdtStatus.Ok, Fdt.Parse(blob, out var info));
            Assert.Equal(0x80000000UL, info.MemoryBase);
            Assert.Equal(0x100000000UL, info.MemorySize);
            Assert.True(info.HasInitrd);
            Assert.Equal(0x88000000UL, info.InitrdStart);
            Assert.Equal(0x88001234UL, info.InitrdEnd);
            Assert.Equal(3, info.CpuCount);
            Assert.Equal(0x1c090000UL, info.UartBase);
            Assert.Equal("a b", Bootargs(blob, info));
        }

        // The firmware's seeds, which the hypervisor takes for its guests'
        // (kernel/Kernel.cs TakeSeeds); QEMU's own tree has both.
        [Fact]
        public void FindsTheFirmwareSeeds()
        {
            const string dts = @"/dts-v1/;
/ {
    #address-cells = <2>; #size-cells = <2>;
    memory@40000000 { device_type = ""memory""; reg = <0x0 0x40000000 0x0 0x8000000>; };
    chosen { rng-seed = [01 02 03 04 05]; kaslr-seed = <0x11223344 0x55667788>; };
};";
            byte[] blob = Dtb.FromSource(dts);
            Assert.Equal(FdtStatus.Ok, Fdt.Parse(blob, out var info));
            Assert.Equal(5, info.RngSeedLength);
            Assert.Equal(new byte[] { 1, 2, 3, 4, 5 }, blob.AsSpan(info.RngSeedOffset, 5).ToArray());
            Assert.Equal(0x1122334455667788UL, Fdt.ReadBe64(blob, info.KaslrSeedOffset));

            Assert.Equal(FdtStatus.Ok, Fdt.Parse(Dtb.FromQemu("128M", 1), out var qemu));
            Assert.Equal(32, qemu.RngSeedLength);
            Assert.True(qemu.KaslrSeedOffset > 0);

            Assert.Equal(FdtStatus.Ok, Fdt.Parse(Dtb.FromSource(dts.Replace("rng-seed = [01 02 03 04 05]; kaslr-seed = <0x11223344 0x55667788>;", "")), out var none));
            Assert.Equal(-1, none.RngSeedOffset);
            Assert.Equal(-1, none.KaslrSeedOffset);
        }

        [Fact]
        public void NoBootargsAndNoMemoryAreReported()
        {
            byte[] blob = Dtb.FromSource("/dts-v1/;\n/ { #address-cells = <2>; #size-cells = <2>; chosen { }; };");
            Assert.Equal(FdtStatus.NoMemory, Fdt.Parse(blob, out var info));
            Assert.Equal(-1, info.BootargsOffset);
        }

        [Fact]
        public void RejectsBadMagicAndShortBlobs()
        {
            byte[] blob = Dtb.FromQemu("128M", 1);
            Assert.Equal(FdtStatus.TooSmall, Fdt.Parse(blob.AsSpan(0, 20), out _));
            var bad = (byte[])blob.Clone();
            bad[0] ^= 0xff;
            Assert.Equal(FdtStatus.BadMagic, Fdt.Parse(bad, out _));
        }

        [Fact]
        public void TruncatedBlobIsRejectedNotOverread()
        {
            byte[] blob = Dtb.FromQemu("128M", 1);
            // Every prefix of the blob either parses or fails cleanly: no
            // index outside the span (the kernel would panic).
            for (int len = 40; len < blob.Length; len += 97)
                Assert.NotEqual(FdtStatus.Ok, Fdt.Parse(blob.AsSpan(0, len), out _));
        }

        [Fact]
        public void CorruptedStructureNeverReadsOutOfBounds()
        {
            byte[] blob = Dtb.FromQemu("128M", 2, "x=y");
            uint structOffset = Fdt.ReadBe32(blob, 8);
            uint structSize = Fdt.ReadBe32(blob, 36);
            var rng = new Random(1234);
            for (int i = 0; i < 2000; i++)
            {
                var copy = (byte[])blob.Clone();
                int at = (int)structOffset + rng.Next((int)structSize);
                copy[at] = (byte)rng.Next(256);
                // Must return some status; an out-of-range index would throw here.
                Fdt.Parse(copy, out _);
            }
        }

        [Fact]
        public void OldVersionIsRejected()
        {
            byte[] blob = Dtb.FromQemu("128M", 1);
            blob[20] = 0; blob[21] = 0; blob[22] = 0; blob[23] = 16;
            Assert.Equal(FdtStatus.BadVersion, Fdt.Parse(blob, out _));
        }
    }
}
