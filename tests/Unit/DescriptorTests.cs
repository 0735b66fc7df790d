using Hypervisor.Arch;
using Hypervisor.Mm;
using Xunit;

namespace Hypervisor.Tests.Unit
{
    public class DescriptorTests
    {
        // Expected values are assembled by hand from the Arm ARM bit positions:
        // type [1:0], MemAttr [5:2], S2AP [7:6], SH [9:8], AF [10], XN [54].

        [Fact]
        public void Stage2NormalPage()
        {
            // 0b11 page | MemAttr 0b1111 -> 0x3C | S2AP RW 0xC0 | SH inner 0x300 | AF 0x400 | XN bit 54
            Assert.Equal(0x0040_0008_1234_57FFUL, Stage2.Page(0x8_1234_5000, Stage2.NormalReadWrite));
            Assert.Equal(0x0000_0008_1234_57FFUL, Stage2.Page(0x8_1234_5000, Stage2.NormalReadWriteExecute));
            Assert.Equal(Stage2.NormalReadWrite, Stage2.Attributes(Stage2MemoryType.NormalWriteBack, Stage2Access.ReadWrite, false));
            Assert.Equal(Stage2.NormalReadWriteExecute, Stage2.Attributes(Stage2MemoryType.NormalWriteBack, Stage2Access.ReadWrite, true));
            Assert.Equal(Stage2.NormalReadOnly, Stage2.Attributes(Stage2MemoryType.NormalWriteBack, Stage2Access.ReadOnly, false));
        }

        [Fact]
        public void Stage2DevicePageIsNeverExecutable()
        {
            // MemAttr 0b0001 -> 0x04
            Assert.Equal(0x0040_0000_0900_07C7UL, Stage2.Page(0x0900_0000, Stage2.DeviceReadWrite));
            Assert.Equal(Stage2.DeviceReadWrite, Stage2.Attributes(Stage2MemoryType.DeviceNGnRE, Stage2Access.ReadWrite, true));
            ulong d = Stage2.Page(0x0900_0000, Stage2.DeviceReadWrite);
            Assert.True(Stage2.IsDevice(d));
            Assert.False(Stage2.IsExecutable(d));
            Assert.Equal(Stage2.MemAttrDeviceNGnRE, Stage2.MemAttr(d));
        }

        [Fact]
        public void Stage2PermissionsDecode()
        {
            ulong none = Stage2.Page(0x1000, Stage2.Attributes(Stage2MemoryType.NormalWriteBack, Stage2Access.None, false));
            ulong ro = Stage2.Page(0x1000, Stage2.NormalReadOnly);
            ulong wo = Stage2.Page(0x1000, Stage2.Attributes(Stage2MemoryType.NormalWriteBack, Stage2Access.WriteOnly, false));
            ulong rwx = Stage2.Page(0x1000, Stage2.NormalReadWriteExecute);
            Assert.Equal(0UL, none & Stage2.AccessMask);
            Assert.Equal(0x40UL, ro & Stage2.AccessMask);
            Assert.Equal(0x80UL, wo & Stage2.AccessMask);
            Assert.Equal(Stage2Access.ReadOnly, Stage2.Access(ro));
            Assert.True(Stage2.IsReadable(ro) && !Stage2.IsWritable(ro));
            Assert.True(!Stage2.IsReadable(wo) && Stage2.IsWritable(wo));
            Assert.True(Stage2.IsReadable(rwx) && Stage2.IsWritable(rwx) && Stage2.IsExecutable(rwx));
            Assert.False(Stage2.IsDevice(rwx));
            Assert.True(Stage2.HasAccessFlag(rwx));
        }

        [Fact]
        public void BlocksTablesAndPagesByLevel()
        {
            ulong block = Stage2.Block(0x8_0000_0000, 2, Stage2.NormalReadWriteExecute);
            Assert.Equal(0x0000_0008_0000_07FDUL, block);   // type 0b01
            Assert.True(Descriptor.IsBlock(block, 2));
            Assert.True(Descriptor.IsBlock(block, 1));
            Assert.False(Descriptor.IsBlock(block, 0));     // no level-0 blocks with 4 KiB pages
            Assert.False(Descriptor.IsLeaf(block, 3));      // 0b01 at level 3 is reserved
            Assert.True(Descriptor.Faults(block, 3));

            ulong table = Stage2.Table(0x4123_4000);
            Assert.Equal(0x4123_4003UL, table);
            Assert.Equal(table, Stage1.Table(0x4123_4000));
            Assert.True(Descriptor.IsTable(table, 0) && Descriptor.IsTable(table, 2));
            Assert.False(Descriptor.IsTable(table, 3));
            Assert.True(Descriptor.IsPage(table, 3));       // the same bits at level 3 mean "page"
            Assert.Equal(0x4123_4000UL, Descriptor.TableAddress(table));

            Assert.False(Descriptor.IsValid(0));
            Assert.False(Descriptor.IsValid(0xFFFF_FFFF_FFFF_FFFEUL));   // bit 0 clear: invalid whatever else
            Assert.True(Descriptor.Faults(0xFFFF_FFFF_FFFF_FFFEUL, 2));
        }

        [Fact]
        public void OutputAddressDropsAttributesAndBlockOffsets()
        {
            ulong page = Stage2.Page(0xF_FFFF_F000, Stage2.NormalReadWrite);
            Assert.Equal(0xF_FFFF_F000UL, Descriptor.OutputAddress(page, 3));
            // An unaligned PA handed to Block is cut down to the block boundary.
            ulong block2M = Stage2.Block(0x8_0012_3000, 2, Stage2.NormalReadWrite);
            Assert.Equal(0x8_0000_0000UL, Descriptor.OutputAddress(block2M, 2));
            ulong block1G = Stage2.Block(0x8_4000_0000, 1, Stage2.NormalReadWrite);
            Assert.Equal(0x8_4000_0000UL, Descriptor.OutputAddress(block1G, 1));
            Assert.Equal(Stage2.NormalReadWrite, Descriptor.Attributes(block1G));
        }

        [Fact]
        public void LevelGeometry()
        {
            Assert.Equal(39, Descriptor.LevelShift(0));
            Assert.Equal(30, Descriptor.LevelShift(1));
            Assert.Equal(21, Descriptor.LevelShift(2));
            Assert.Equal(12, Descriptor.LevelShift(3));
            Assert.Equal(2UL << 20, Descriptor.LevelSize(2));
            ulong va = 0x0000_1234_5678_9ABCUL;
            Assert.Equal(0x024, Descriptor.Index(va, 0));
            Assert.Equal(0x0D1, Descriptor.Index(va, 1));
            Assert.Equal(0x0B3, Descriptor.Index(va, 2));
            Assert.Equal(0x189, Descriptor.Index(va, 3));
        }

        [Fact]
        public void Stage1PageAttributes()
        {
            // AttrIndx 1 -> 0x4 | AP 0b11 -> 0xC0 | SH 0x300 | AF 0x400 | nG 0x800 | PXN bit 53
            ulong attributes = Stage1.Attributes(1, Stage1Access.AllReadOnly, global: false, privilegedExecute: false, unprivilegedExecute: true);
            ulong d = Stage1.Page(0x4020_5000, attributes);
            Assert.Equal(0x0020_0000_4020_5FC7UL, d);
            Assert.Equal(1, Stage1.AttrIndex(d));
            Assert.Equal(Stage1Access.AllReadOnly, Stage1.Access(d));
            Assert.False(Stage1.IsGlobal(d));
            Assert.True(Stage1.HasAccessFlag(d));
            Assert.Equal(0x4020_5000UL, Descriptor.OutputAddress(d, 3));

            ulong kernelBlock = Stage1.Block(0x4000_0000, 1, Stage1.Attributes(0, Stage1Access.KernelReadWrite, true, true, false));
            Assert.Equal(0x0040_0000_4000_0701UL, kernelBlock);   // UXN, AF, SH inner, 1 GiB block
        }
    }

    public class Stage2LayoutTests
    {
        // VTCR_EL2 for a 40-bit IPA, by field:
        //   T0SZ  = 24   -> 0x18
        //   SL0   = 1    -> 0x40      (start at level 1)
        //   IRGN0 = 0b01 -> 0x100
        //   ORGN0 = 0b01 -> 0x400
        //   SH0   = 0b11 -> 0x3000
        //   TG0   = 0b00 -> 0
        //   PS    = 0b010 (40 bits) -> 0x20000
        //   RES1 bit 31  -> 0x8000_0000
        //   = 0x8002_3558; VS (bit 19) adds 0x80000.
        [Theory]
        [InlineData(2u)]   // PARange 40 bits
        [InlineData(4u)]   // 44 bits: PS still capped at 40
        [InlineData(5u)]   // 48 bits
        public void Vtcr40BitIpa(uint paRange)
        {
            Assert.Equal(Stage2LayoutStatus.Ok, Stage2Layout.Compute(40, paRange, false, out Stage2Layout layout));
            Assert.Equal(0x8002_3558UL, layout.Vtcr);
            Assert.Equal(1, layout.StartLevel);
            Assert.Equal(2, layout.ConcatenatedTables);
            Assert.Equal(1024, layout.RootEntries);
            Assert.Equal(8192UL, layout.RootTableBytes);
            Assert.Equal(40, layout.OutputBits);
        }

        [Fact]
        public void Vmid16SetsVs()
        {
            Assert.Equal(Stage2LayoutStatus.Ok, Stage2Layout.Compute(40, 5, true, out Stage2Layout layout));
            Assert.Equal(0x800A_3558UL, layout.Vtcr);
        }

        [Fact]
        public void OtherIpaSizes()
        {
            // 48 bits: T0SZ 16, SL0 2 (level 0), one table.
            Assert.Equal(Stage2LayoutStatus.Ok, Stage2Layout.Compute(48, 5, false, out Stage2Layout l48));
            Assert.Equal(0x8002_3590UL, l48.Vtcr);
            Assert.Equal(0, l48.StartLevel);
            Assert.Equal(1, l48.ConcatenatedTables);
            // 43 bits: the most level 1 can take, 16 concatenated tables.
            Assert.Equal(Stage2LayoutStatus.Ok, Stage2Layout.Compute(43, 4, false, out Stage2Layout l43));
            Assert.Equal(1, l43.StartLevel);
            Assert.Equal(16, l43.ConcatenatedTables);
            Assert.Equal(65536UL, l43.RootTableBytes);
            // 44 bits would need 32: back to level 0 with a 32-entry root.
            Assert.Equal(Stage2LayoutStatus.Ok, Stage2Layout.Compute(44, 4, false, out Stage2Layout l44));
            Assert.Equal(0, l44.StartLevel);
            Assert.Equal(32, l44.RootEntries);
            // 32 bits: T0SZ 32, SL0 0 (level 2), four tables; PARange 32 bits gives PS 0.
            Assert.Equal(Stage2LayoutStatus.Ok, Stage2Layout.Compute(32, 0, false, out Stage2Layout l32));
            Assert.Equal(0x8000_3520UL, l32.Vtcr);
            Assert.Equal(2, l32.StartLevel);
            Assert.Equal(4, l32.ConcatenatedTables);
            Assert.Equal(32, l32.OutputBits);
        }

        [Fact]
        public void ImpossibleRequestsAreRefused()
        {
            Assert.Equal(Stage2LayoutStatus.IpaLargerThanPhysical, Stage2Layout.Compute(40, 1, false, out _));   // 36-bit CPU
            Assert.Equal(Stage2LayoutStatus.UnknownPARange, Stage2Layout.Compute(40, 7, false, out _));
            Assert.Equal(Stage2LayoutStatus.UnsupportedIpaSize, Stage2Layout.Compute(31, 5, false, out _));
            Assert.Equal(Stage2LayoutStatus.UnsupportedIpaSize, Stage2Layout.Compute(49, 6, false, out _));
        }

        [Fact]
        public void VttbrHoldsRootAndVmid()
        {
            Assert.Equal(0x0005_0000_4008_2000UL, Stage2Layout.Vttbr(0x4008_2000, 5));
            Assert.Equal(0xABCD_0000_4008_2000UL, Stage2Layout.Vttbr(0x4008_2000, 0xABCD));
        }

        [Fact]
        public void PARangeEncodings()
        {
            int[] bits = { 32, 36, 40, 42, 44, 48, 52 };
            for (uint e = 0; e < bits.Length; e++)
            {
                Assert.Equal(bits[e], Stage2Layout.PARangeBits(e));
                Assert.Equal(e, Stage2Layout.PARangeForBits(bits[e]));
            }
        }
    }
}
