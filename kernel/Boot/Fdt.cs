using System;

namespace Hypervisor.Boot
{
    public enum FdtStatus
    {
        Ok,
        TooSmall,
        BadMagic,
        BadVersion,
        Truncated,
        BadStructure,
        NoMemory,
    }

    // What the hypervisor needs from the device tree the firmware (here QEMU)
    // hands over in x0. Strings are kept as offsets into the blob so that
    // reading allocates nothing.
    public unsafe struct FdtInfo
    {
        public const int MaxCpus = 8;    // as many as the hypervisor has stacks for (boot/asm.inc MAX_CPUS)

        public uint TotalSize;
        public ulong MemoryBase;
        public ulong MemorySize;
        public int CpuCount;             // cpu@ nodes under /cpus (all of them, even past MaxCpus)
        public fixed ulong Mpidr[MaxCpus];   // their reg: MPIDR_EL1's affinity fields, in tree order
        public bool HasPsci;             // a /psci node
        public bool PsciUsesHvc;         // its method: "hvc" (false: "smc", QEMU virt with EL2 and no EL3)
        public ulong UartBase;
        public ulong GicDistributor;     // GICv3 GICD frame (0 when absent, or not a GICv3)
        public ulong GicRedistributor;   // first GICR frame
        public ulong VirtioBase;         // first virtio-mmio device (0 when none)
        public bool HasInitrd;
        public ulong InitrdStart;
        public ulong InitrdEnd;
        public int BootargsOffset;   // into the blob; -1 when /chosen has no bootargs
        public int BootargsLength;   // without the terminating NUL
        public int RngSeedOffset;    // /chosen/rng-seed, into the blob; -1 when absent
        public int RngSeedLength;
        public int KaslrSeedOffset;  // /chosen/kaslr-seed (8 bytes); -1 when absent
    }

    // Flattened device tree reader (devicetree specification v0.4, chapter 5):
    // a header, a structure block of tokens and a strings block, all big-endian.
    // One pass over the tokens collects everything in FdtInfo.
    public static unsafe class Fdt
    {
        public const uint Magic = 0xd00dfeed;
        private const uint TokenBeginNode = 1;
        private const uint TokenEndNode = 2;
        private const uint TokenProperty = 3;
        private const uint TokenNop = 4;
        private const uint TokenEnd = 9;
        private const int HeaderSize = 40;
        private const int MaxDepth = 16;

        public static uint ReadBe32(ReadOnlySpan<byte> b, int offset) =>
            (uint)b[offset] << 24 | (uint)b[offset + 1] << 16 | (uint)b[offset + 2] << 8 | b[offset + 3];

        public static ulong ReadBe64(ReadOnlySpan<byte> b, int offset) =>
            (ulong)ReadBe32(b, offset) << 32 | ReadBe32(b, offset + 4);

        // Total size from the header, so the caller can make a span of the right length.
        public static uint TotalSizeOf(ReadOnlySpan<byte> header) =>
            header.Length >= 8 && ReadBe32(header, 0) == Magic ? ReadBe32(header, 4) : 0;

        public static FdtStatus Parse(ReadOnlySpan<byte> blob, out FdtInfo info)
        {
            info = default;
            info.BootargsOffset = -1;
            info.RngSeedOffset = -1;
            info.KaslrSeedOffset = -1;
            if (blob.Length < HeaderSize) return FdtStatus.TooSmall;
            if (ReadBe32(blob, 0) != Magic) return FdtStatus.BadMagic;
            uint totalSize = ReadBe32(blob, 4);
            uint structOffset = ReadBe32(blob, 8);
            uint stringsOffset = ReadBe32(blob, 12);
            uint version = ReadBe32(blob, 20);
            uint stringsSize = ReadBe32(blob, 32);
            uint structSize = ReadBe32(blob, 36);
            if (version < 17) return FdtStatus.BadVersion;
            if (totalSize > (uint)blob.Length || totalSize < HeaderSize) return FdtStatus.Truncated;
            if ((ulong)structOffset + structSize > totalSize || (ulong)stringsOffset + stringsSize > totalSize)
                return FdtStatus.Truncated;
            info.TotalSize = totalSize;

            ReadOnlySpan<byte> structure = blob.Slice((int)structOffset, (int)structSize);
            ReadOnlySpan<byte> strings = blob.Slice((int)stringsOffset, (int)stringsSize);

            // Per-depth state: what kind of node we are in.
            Span<byte> kind = stackalloc byte[MaxDepth];
            int depth = 0;
            uint rootAddressCells = 2, rootSizeCells = 1, cpusAddressCells = 1;
            bool gicV3 = false;
            int pos = 0;

            while (true)
            {
                if (pos + 4 > structure.Length) return FdtStatus.Truncated;
                uint token = ReadBe32(structure, pos);
                pos += 4;
                if (token == TokenEnd) break;
                if (token == TokenNop) continue;

                if (token == TokenBeginNode)
                {
                    int nameStart = pos;
                    int nameEnd = IndexOfNul(structure, nameStart);
                    if (nameEnd < 0) return FdtStatus.Truncated;
                    pos = Align4(nameEnd + 1);
                    if (depth >= MaxDepth) return FdtStatus.BadStructure;
                    ReadOnlySpan<byte> name = structure.Slice(nameStart, nameEnd - nameStart);
                    byte k = NodeKind.Other;
                    if (depth == 1) k = ClassifyTopLevel(name);
                    else if (depth == 2 && kind[1] == NodeKind.Cpus && StartsWith(name, "cpu@")) { k = NodeKind.Cpu; info.CpuCount++; }
                    kind[depth] = k;
                    depth++;
                    continue;
                }

                if (token == TokenEndNode)
                {
                    if (depth == 0) return FdtStatus.BadStructure;
                    depth--;
                    continue;
                }

                if (token != TokenProperty) return FdtStatus.BadStructure;
                if (pos + 8 > structure.Length) return FdtStatus.Truncated;
                int length = (int)ReadBe32(structure, pos);
                uint nameOffset = ReadBe32(structure, pos + 4);
                pos += 8;
                if (length < 0 || pos + length > structure.Length) return FdtStatus.Truncated;
                if (nameOffset >= (uint)strings.Length) return FdtStatus.Truncated;
                int propNameEnd = IndexOfNul(strings, (int)nameOffset);
                if (propNameEnd < 0) return FdtStatus.Truncated;
                ReadOnlySpan<byte> propName = strings.Slice((int)nameOffset, propNameEnd - (int)nameOffset);
                ReadOnlySpan<byte> value = structure.Slice(pos, length);
                int valueOffset = (int)structOffset + pos;
                pos = Align4(pos + length);
                if (depth == 0) return FdtStatus.BadStructure;

                byte here = kind[depth - 1];
                if (depth == 1)
                {
                    if (BytesEqual(propName, "#address-cells") && length == 4) rootAddressCells = ReadBe32(value, 0);
                    else if (BytesEqual(propName, "#size-cells") && length == 4) rootSizeCells = ReadBe32(value, 0);
                }
                else if (here == NodeKind.Cpus && depth == 2 && BytesEqual(propName, "#address-cells") && length == 4)
                {
                    cpusAddressCells = ReadBe32(value, 0);
                    if (cpusAddressCells == 0 || cpusAddressCells > 2) return FdtStatus.BadStructure;
                }
                else if (here == NodeKind.Cpu && BytesEqual(propName, "reg"))
                {
                    if (length < cpusAddressCells * 4) return FdtStatus.BadStructure;
                    int cpu = info.CpuCount - 1;   // counted when its node began
                    if (cpu < FdtInfo.MaxCpus) info.Mpidr[cpu] = ReadCells(value, 0, (int)cpusAddressCells);
                }
                else if (here == NodeKind.Psci && BytesEqual(propName, "method"))
                {
                    info.HasPsci = true;
                    info.PsciUsesHvc = ListContains(value, "hvc");
                }
                else if (here == NodeKind.Memory && BytesEqual(propName, "reg") && info.MemorySize == 0)
                {
                    int cells = (int)(rootAddressCells + rootSizeCells);
                    if (cells == 0 || cells > 4 || length < cells * 4) return FdtStatus.BadStructure;
                    info.MemoryBase = ReadCells(value, 0, (int)rootAddressCells);
                    info.MemorySize = ReadCells(value, (int)rootAddressCells * 4, (int)rootSizeCells);
                }
                else if (here == NodeKind.Uart && BytesEqual(propName, "reg") && info.UartBase == 0)
                {
                    if (rootAddressCells == 0 || rootAddressCells > 2 || length < rootAddressCells * 4) return FdtStatus.BadStructure;
                    info.UartBase = ReadCells(value, 0, (int)rootAddressCells);
                }
                else if (here == NodeKind.Virtio && BytesEqual(propName, "reg") && info.VirtioBase == 0)
                {
                    if (rootAddressCells == 0 || rootAddressCells > 2 || length < rootAddressCells * 4) return FdtStatus.BadStructure;
                    info.VirtioBase = ReadCells(value, 0, (int)rootAddressCells);
                }
                else if (here == NodeKind.Gic && BytesEqual(propName, "compatible"))
                {
                    gicV3 = ListContains(value, "arm,gic-v3");
                }
                else if (here == NodeKind.Gic && BytesEqual(propName, "reg") && info.GicDistributor == 0)
                {
                    // reg = <GICD base, size, GICR base, size, ...>
                    int cells = (int)(rootAddressCells + rootSizeCells);
                    if (rootAddressCells == 0 || rootAddressCells > 2 || rootSizeCells > 2) return FdtStatus.BadStructure;
                    if (length >= cells * 4) info.GicDistributor = ReadCells(value, 0, (int)rootAddressCells);
                    if (length >= cells * 8) info.GicRedistributor = ReadCells(value, cells * 4, (int)rootAddressCells);
                }
                else if (here == NodeKind.Chosen)
                {
                    if (BytesEqual(propName, "bootargs"))
                    {
                        info.BootargsOffset = valueOffset;
                        info.BootargsLength = length > 0 && value[length - 1] == 0 ? length - 1 : length;
                    }
                    else if (BytesEqual(propName, "rng-seed"))
                    {
                        info.RngSeedOffset = valueOffset;
                        info.RngSeedLength = length;
                    }
                    else if (BytesEqual(propName, "kaslr-seed") && length == 8)
                    {
                        info.KaslrSeedOffset = valueOffset;
                    }
                    else if (BytesEqual(propName, "linux,initrd-start") && (length == 4 || length == 8))
                    {
                        info.InitrdStart = ReadCells(value, 0, length / 4);
                        info.HasInitrd = true;
                    }
                    else if (BytesEqual(propName, "linux,initrd-end") && (length == 4 || length == 8))
                    {
                        info.InitrdEnd = ReadCells(value, 0, length / 4);
                    }
                }
            }

            if (depth != 0) return FdtStatus.BadStructure;
            // A GICv2's reg is GICD, GICC, GICH, GICV: nothing of it is a GICv3.
            if (!gicV3) info.GicDistributor = info.GicRedistributor = 0;
            if (info.HasInitrd && info.InitrdEnd < info.InitrdStart) info.HasInitrd = false;
            if (info.MemorySize == 0) return FdtStatus.NoMemory;
            return FdtStatus.Ok;
        }

        private static class NodeKind
        {
            public const byte Other = 0, Memory = 1, Chosen = 2, Cpus = 3, Cpu = 4, Uart = 5, Gic = 6, Virtio = 7, Psci = 8;
        }

        private static byte ClassifyTopLevel(ReadOnlySpan<byte> name)
        {
            if (StartsWith(name, "memory")) return NodeKind.Memory;
            if (BytesEqual(name, "chosen")) return NodeKind.Chosen;
            if (BytesEqual(name, "cpus")) return NodeKind.Cpus;
            if (BytesEqual(name, "psci")) return NodeKind.Psci;
            // QEMU virt names its console UART pl011@9000000; the compatible
            // string would be stricter, but the node name is what QEMU and
            // firmware both use for the primary UART.
            if (StartsWith(name, "pl011@")) return NodeKind.Uart;
            // QEMU virt's interrupt controller: intc@8000000.
            if (StartsWith(name, "intc@")) return NodeKind.Gic;
            if (StartsWith(name, "virtio_mmio@")) return NodeKind.Virtio;
            return NodeKind.Other;
        }

        private static ulong ReadCells(ReadOnlySpan<byte> value, int offset, int cells)
        {
            ulong result = 0;
            for (int i = 0; i < cells; i++) result = result << 32 | ReadBe32(value, offset + i * 4);
            return result;
        }

        private static int Align4(int x) => (x + 3) & ~3;

        private static int IndexOfNul(ReadOnlySpan<byte> b, int start)
        {
            for (int i = start; i < b.Length; i++) if (b[i] == 0) return i;
            return -1;
        }

        public static bool BytesEqual(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
        {
            if (a.Length != b.Length) return false;
            for (int i = 0; i < a.Length; i++) if (a[i] != b[i]) return false;
            return true;
        }

        public static bool BytesEqual(ReadOnlySpan<byte> a, string b)
        {
            if (a.Length != b.Length) return false;
            for (int i = 0; i < a.Length; i++) if (a[i] != b[i]) return false;
            return true;
        }

        // A string-list property (NUL-separated, as "compatible") holds `entry`.
        public static bool ListContains(ReadOnlySpan<byte> list, string entry)
        {
            int start = 0;
            for (int i = 0; i <= list.Length; i++)
            {
                if (i < list.Length && list[i] != 0) continue;
                if (BytesEqual(list.Slice(start, i - start), entry)) return true;
                start = i + 1;
            }
            return false;
        }

        public static bool StartsWith(ReadOnlySpan<byte> a, string prefix)
        {
            if (a.Length < prefix.Length) return false;
            for (int i = 0; i < prefix.Length; i++) if (a[i] != prefix[i]) return false;
            return true;
        }
    }
}
