using System;

namespace Hypervisor.Boot
{
    public enum FdtWriteStatus
    {
        Ok,
        BufferTooSmall,   // the output span cannot hold the blob
        StringsFull,      // the strings scratch span cannot hold another property name
        BadNesting,       // EndNode without BeginNode, property outside a node or after a
                          // child node, a second root, or Finish with nodes still open
        BadName,          // a node or property name with NUL or non-ASCII characters
        BadArgument,      // GuestDtb: a spec the device tree cannot describe
    }

    // Writes a flattened device tree (devicetree specification v0.4, chapter 5),
    // the mirror image of Fdt.Parse. Layout of the output span:
    //
    //   0   header (40 bytes, written last by Finish, so a half-built blob has no magic)
    //   40  memory reservation block: only the terminating all-zero entry (16 bytes)
    //   56  structure block: BEGIN_NODE / PROP / END_NODE tokens, then END
    //   ..  strings block: every property name once, NUL-terminated
    //
    // Property names are collected in a separate scratch span while the structure
    // grows, because the final position of the strings block is only known at the
    // end; Finish copies them behind the structure. Nothing is allocated.
    //
    // Errors are sticky: after the first failure every call does nothing and
    // Finish returns that failure. A failing call never writes past the span
    // (every write is size-checked first), so a too-small buffer is harmless.
    public ref struct FdtWriter
    {
        private const uint TokenBeginNode = 1;
        private const uint TokenEndNode = 2;
        private const uint TokenProperty = 3;
        private const uint TokenEnd = 9;
        private const int HeaderSize = 40;
        private const int ReservationMapOffset = HeaderSize;       // 8-byte aligned, as required
        private const int StructureOffset = ReservationMapOffset + 16;
        public const uint Version = 17;
        public const uint LastCompatibleVersion = 16;

        private readonly Span<byte> _output;
        private readonly Span<byte> _strings;
        private int _end;            // next free byte of the structure block, from the start of _output
        private int _stringsUsed;
        private int _depth;
        private bool _nodeHasChild;  // properties must come before the first child node
        private bool _rootClosed;
        private FdtWriteStatus _status;

        // stringsScratch must not overlap output; it only needs to hold the
        // distinct property names (a few hundred bytes).
        public FdtWriter(Span<byte> output, Span<byte> stringsScratch)
        {
            _output = output;
            _strings = stringsScratch;
            _end = StructureOffset;
            _stringsUsed = 0;
            _depth = 0;
            _nodeHasChild = false;
            _rootClosed = false;
            _status = output.Length < StructureOffset ? FdtWriteStatus.BufferTooSmall : FdtWriteStatus.Ok;
        }

        public FdtWriteStatus Status => _status;
        public int Depth => _depth;

        // The root node is BeginNode("").
        public void BeginNode(string name) => BeginNodeCore(name, false, 0);

        // "name@<unit address in lower-case hex>", e.g. memory@40000000.
        public void BeginNode(string name, ulong unitAddress) => BeginNodeCore(name, true, unitAddress);

        public void EndNode()
        {
            if (_status != FdtWriteStatus.Ok) return;
            if (_depth == 0) { _status = FdtWriteStatus.BadNesting; return; }
            if (!Reserve(4)) return;
            WriteBe32(TokenEndNode);
            _depth--;
            // The parent now has a child, so no more properties may follow in it.
            _nodeHasChild = true;
            if (_depth == 0) _rootClosed = true;
        }

        // A property with raw bytes as its value (an empty span makes a boolean property).
        public void Property(string name, ReadOnlySpan<byte> value)
        {
            if (!BeginProperty(name, value.Length, out int at)) return;
            for (int i = 0; i < value.Length; i++) _output[at + i] = value[i];
        }

        public void PropertyEmpty(string name) => BeginProperty(name, 0, out _);

        public void PropertyU32(string name, uint value)
        {
            if (!BeginProperty(name, 4, out int at)) return;
            PutBe32(at, value);
        }

        // One 64-bit number as two cells, high cell first (linux,initrd-start).
        public void PropertyU64(string name, ulong value)
        {
            if (!BeginProperty(name, 8, out int at)) return;
            PutBe32(at, (uint)(value >> 32));
            PutBe32(at + 4, (uint)value);
        }

        // Any number of 32-bit cells, e.g. interrupts = <0 1 4> (copied, never
        // kept, hence scoped: the caller may pass stack memory).
        public void PropertyCells(string name, scoped ReadOnlySpan<uint> cells)
        {
            if (cells.Length > 0x1fffffff) { Fail(FdtWriteStatus.BufferTooSmall); return; }
            if (!BeginProperty(name, cells.Length * 4, out int at)) return;
            for (int i = 0; i < cells.Length; i++) PutBe32(at + i * 4, cells[i]);
        }

        // reg = <address size> with #address-cells = 2 and #size-cells = 2.
        public void PropertyReg(string name, ulong address, ulong size)
        {
            if (!BeginProperty(name, 16, out int at)) return;
            PutBe32(at, (uint)(address >> 32));
            PutBe32(at + 4, (uint)address);
            PutBe32(at + 8, (uint)(size >> 32));
            PutBe32(at + 12, (uint)size);
        }

        // A NUL-terminated string (the NUL is added here).
        public void PropertyString(string name, string value)
        {
            if (!CheckAscii(value, false)) return;
            if (!BeginProperty(name, value.Length + 1, out int at)) return;
            for (int i = 0; i < value.Length; i++) _output[at + i] = (byte)value[i];
            _output[at + value.Length] = 0;
        }

        // A string list such as compatible = "arm,pl011", "arm,primecell": pass the
        // strings separated by '\0' ("arm,pl011\0arm,primecell"); the final NUL
        // is added unless the literal already ends with one.
        public void PropertyStringList(string name, string values)
        {
            if (!CheckAscii(values, false)) return;
            bool hasFinalNul = values.Length > 0 && values[values.Length - 1] == '\0';
            int length = hasFinalNul ? values.Length : values.Length + 1;
            if (!BeginProperty(name, length, out int at)) return;
            for (int i = 0; i < values.Length; i++) _output[at + i] = (byte)values[i];
            if (!hasFinalNul) _output[at + values.Length] = 0;
        }

        // A string given as bytes without its NUL (bootargs from vms.conf): the
        // bytes, then a NUL.
        public void PropertyBytes(string name, ReadOnlySpan<byte> text)
        {
            if (text.Length > 0x7ffffff0) { Fail(FdtWriteStatus.BufferTooSmall); return; }
            if (!BeginProperty(name, text.Length + 1, out int at)) return;
            for (int i = 0; i < text.Length; i++) _output[at + i] = text[i];
            _output[at + text.Length] = 0;
        }

        // Bytes as they are, no NUL added (rng-seed).
        public void PropertyRaw(string name, ReadOnlySpan<byte> bytes)
        {
            if (!BeginProperty(name, bytes.Length, out int at)) return;
            for (int i = 0; i < bytes.Length; i++) _output[at + i] = bytes[i];
        }

        // Closes the structure block, appends the strings block and writes the
        // header. totalSize is the number of bytes of the blob (0 on failure).
        public FdtWriteStatus Finish(out int totalSize)
        {
            totalSize = 0;
            if (_status != FdtWriteStatus.Ok) return _status;
            if (_depth != 0 || !_rootClosed) return Fail(FdtWriteStatus.BadNesting);
            if (!Reserve(4)) return _status;
            WriteBe32(TokenEnd);

            int stringsOffset = _end;
            if (_stringsUsed > _output.Length - stringsOffset) return Fail(FdtWriteStatus.BufferTooSmall);
            for (int i = 0; i < _stringsUsed; i++) _output[stringsOffset + i] = _strings[i];
            int total = stringsOffset + _stringsUsed;

            // The reservation block holds only its terminator: nothing in guest
            // RAM is hidden from the guest (the hypervisor keeps its memory out
            // of the guest's physical address space instead).
            for (int i = ReservationMapOffset; i < StructureOffset; i++) _output[i] = 0;

            PutBe32(0, Fdt.Magic);
            PutBe32(4, (uint)total);
            PutBe32(8, StructureOffset);
            PutBe32(12, (uint)stringsOffset);
            PutBe32(16, ReservationMapOffset);
            PutBe32(20, Version);
            PutBe32(24, LastCompatibleVersion);
            PutBe32(28, 0);                                   // boot_cpuid_phys: CPU 0 boots
            PutBe32(32, (uint)_stringsUsed);
            PutBe32(36, (uint)(stringsOffset - StructureOffset));
            totalSize = total;
            return FdtWriteStatus.Ok;
        }

        private void BeginNodeCore(string name, bool hasAddress, ulong unitAddress)
        {
            if (_status != FdtWriteStatus.Ok) return;
            if (!CheckAscii(name, true)) return;
            if (_depth == 0 && _rootClosed) { Fail(FdtWriteStatus.BadNesting); return; }
            int digits = hasAddress ? HexDigits(unitAddress) : 0;
            int nameLength = name.Length + (hasAddress ? 1 + digits : 0);
            if (!Reserve(4 + Align4(nameLength + 1))) return;
            WriteBe32(TokenBeginNode);
            int at = _end;
            for (int i = 0; i < name.Length; i++) _output[at + i] = (byte)name[i];
            if (hasAddress)
            {
                _output[at + name.Length] = (byte)'@';
                for (int i = 0; i < digits; i++)
                {
                    int shift = (digits - 1 - i) * 4;
                    _output[at + name.Length + 1 + i] = HexDigit((uint)(unitAddress >> shift) & 0xf);
                }
            }
            // NUL terminator plus zero padding to the next 4-byte boundary.
            int padded = Align4(nameLength + 1);
            for (int i = nameLength; i < padded; i++) _output[at + i] = 0;
            _end = at + padded;
            _depth++;
            _nodeHasChild = false;
        }

        // Writes the PROP token, value length and name offset, zeroes the value's
        // padding and returns where the value bytes go.
        private bool BeginProperty(string name, int valueLength, out int valueAt)
        {
            valueAt = 0;
            if (_status != FdtWriteStatus.Ok) return false;
            if (_depth == 0 || _nodeHasChild) { Fail(FdtWriteStatus.BadNesting); return false; }
            if (!CheckAscii(name, true)) return false;
            if (valueLength < 0 || valueLength > 0x7ffffff0) { Fail(FdtWriteStatus.BufferTooSmall); return false; }
            int nameOffset = AddString(name);
            if (nameOffset < 0) { Fail(FdtWriteStatus.StringsFull); return false; }
            int padded = Align4(valueLength);
            if (!Reserve(12 + padded)) return false;
            WriteBe32(TokenProperty);
            WriteBe32((uint)valueLength);
            WriteBe32((uint)nameOffset);
            valueAt = _end;
            for (int i = valueLength; i < padded; i++) _output[valueAt + i] = 0;
            _end += padded;
            return true;
        }

        // The offset of name in the strings block, adding it if it is not there
        // yet: each property name is stored once however often it is used.
        private int AddString(string name)
        {
            int start = 0;
            while (start < _stringsUsed)
            {
                int end = start;
                while (end < _stringsUsed && _strings[end] != 0) end++;
                if (Fdt.BytesEqual(_strings.Slice(start, end - start), name)) return start;
                start = end + 1;
            }
            if (name.Length + 1 > _strings.Length - _stringsUsed) return -1;
            int at = _stringsUsed;
            for (int i = 0; i < name.Length; i++) _strings[at + i] = (byte)name[i];
            _strings[at + name.Length] = 0;
            _stringsUsed += name.Length + 1;
            return at;
        }

        // Is there room for this many more bytes of structure? (Finish checks
        // again for the END token and the strings block.)
        private bool Reserve(int bytes)
        {
            if (bytes < 0 || bytes > _output.Length - _end) { Fail(FdtWriteStatus.BufferTooSmall); return false; }
            return true;
        }

        // Names are 7-bit ASCII; an embedded NUL would end them early. In string
        // values (rejectNul false) a NUL separates the strings of a list.
        private bool CheckAscii(string s, bool rejectNul)
        {
            for (int i = 0; i < s.Length; i++)
            {
                char c = s[i];
                if (c > 0x7e || (rejectNul && c == 0)) { Fail(FdtWriteStatus.BadName); return false; }
            }
            return true;
        }

        private FdtWriteStatus Fail(FdtWriteStatus status)
        {
            if (_status == FdtWriteStatus.Ok) _status = status;
            return _status;
        }

        private void WriteBe32(uint value)
        {
            PutBe32(_end, value);
            _end += 4;
        }

        private void PutBe32(int at, uint value)
        {
            _output[at] = (byte)(value >> 24);
            _output[at + 1] = (byte)(value >> 16);
            _output[at + 2] = (byte)(value >> 8);
            _output[at + 3] = (byte)value;
        }

        private static int Align4(int x) => (x + 3) & ~3;

        private static int HexDigits(ulong value)
        {
            int digits = 1;
            while (digits < 16 && (value >> (digits * 4)) != 0) digits++;
            return digits;
        }

        private static byte HexDigit(uint nibble) => (byte)(nibble < 10 ? '0' + nibble : 'a' + nibble - 10);
    }

    // What the hypervisor tells one guest about its virtual machine. The
    // bootargs and the rng-seed are separate parameters of Build (a span
    // cannot live in a normal struct).
    public struct GuestDtbSpec
    {
        public ulong MemoryBase;      // guest-physical start of RAM
        public ulong MemorySize;
        public int CpuCount;          // 1..VmConfig.MaxCpus
        public bool HasInitrd;
        public ulong InitrdStart;     // guest-physical, end exclusive
        public ulong InitrdEnd;
        public bool HasVirtio;        // one virtio-mmio device (the balloon)
        public ulong VirtioBase;
        public ulong VirtioSize;
        public uint VirtioSpi;        // its SPI as the device tree numbers it (INTID - 32)
        // A GICv3 with the arch timer, the PL011's interrupt and clocks, and the
        // virtio node's interrupt: what Linux needs to boot. Off, the tree is
        // the minimal one the polling C# test guest reads.
        public bool HasGic;
        public ulong KaslrSeed;       // /chosen/kaslr-seed (0: none); kernel/Boot/GuestSeeds.cs
    }

    // The device tree each guest receives in x0: the small subset of QEMU's
    // "virt" machine that the hypervisor emulates. The test guest reads RAM,
    // CPUs, the console UART and /chosen from it; with HasGic, Linux also finds
    // its interrupt controller, timer and clocks there (a stock Debian kernel
    // boots to its initramfs on this tree).
    public static class GuestDtb
    {
        public const ulong UartBase = 0x09000000;
        public const ulong UartSize = 0x1000;
        public const uint UartSpi = 1;                          // INTID 33, as on QEMU virt
        public const ulong GicDistributorBase = 0x08000000;
        public const ulong GicDistributorSize = 0x10000;
        public const ulong GicRedistributorBase = 0x080a0000;
        public const ulong GicRedistributorStride = 0x20000;    // RD_base + SGI_base frames of one CPU
        public const uint ApbClockHz = 24000000;
        // Any non-zero numbers unique in the tree.
        public const uint GicPhandle = 1, ApbClockPhandle = 2;
        // Interrupt specifiers (#interrupt-cells = 3): type, number, flags.
        private const uint GicSpi = 0, GicPpi = 1;
        private const uint LevelHigh = 4;   // interrupt flags: 1 would be rising edge
        // Room for every distinct property name (about 330 bytes with the GIC).
        private const int StringsScratchSize = 512;

        public static FdtWriteStatus Build(Span<byte> buffer, in GuestDtbSpec spec, ReadOnlySpan<byte> bootargs, out int totalSize) =>
            Build(buffer, spec, bootargs, default, out totalSize);

        public static FdtWriteStatus Build(Span<byte> buffer, in GuestDtbSpec spec, ReadOnlySpan<byte> bootargs, ReadOnlySpan<byte> rngSeed, out int totalSize)
        {
            totalSize = 0;
            if (spec.CpuCount < 1 || spec.CpuCount > VmConfig.MaxCpus) return FdtWriteStatus.BadArgument;
            if (spec.MemorySize == 0 || spec.MemoryBase + spec.MemorySize < spec.MemoryBase) return FdtWriteStatus.BadArgument;
            if (spec.HasInitrd && spec.InitrdEnd < spec.InitrdStart) return FdtWriteStatus.BadArgument;

            Span<byte> strings = stackalloc byte[StringsScratchSize];
            var w = new FdtWriter(buffer, strings);

            w.BeginNode("");
            w.PropertyU32("#address-cells", 2);
            w.PropertyU32("#size-cells", 2);
            w.PropertyString("compatible", "linux,dummy-virt");
            w.PropertyString("model", "hypervisor-vm");
            if (spec.HasGic) w.PropertyU32("interrupt-parent", GicPhandle);

            w.BeginNode("memory", spec.MemoryBase);
            w.PropertyString("device_type", "memory");
            w.PropertyReg("reg", spec.MemoryBase, spec.MemorySize);
            w.EndNode();

            // CPUs are numbered by their MPIDR affinity; with one cluster that is
            // simply 0..n-1, which is what reg holds (#address-cells = 1).
            w.BeginNode("cpus");
            w.PropertyU32("#address-cells", 1);
            w.PropertyU32("#size-cells", 0);
            for (int cpu = 0; cpu < spec.CpuCount; cpu++)
            {
                w.BeginNode("cpu", (ulong)cpu);
                w.PropertyString("device_type", "cpu");
                w.PropertyString("compatible", "arm,cortex-a72");
                w.PropertyU32("reg", (uint)cpu);
                w.PropertyString("enable-method", "psci");
                w.EndNode();
            }
            w.EndNode();

            // CPU_ON, SYSTEM_OFF and friends arrive at the hypervisor as HVC calls.
            w.BeginNode("psci");
            w.PropertyStringList("compatible", "arm,psci-1.0\0arm,psci-0.2");
            w.PropertyString("method", "hvc");
            w.EndNode();

            // The emulated console. Linux's amba-pl011 driver wants its clocks
            // and interrupt; the C# test guest polls and reads neither.
            w.BeginNode("pl011", UartBase);
            w.PropertyStringList("compatible", "arm,pl011\0arm,primecell");
            w.PropertyReg("reg", UartBase, UartSize);
            if (spec.HasGic)
            {
                Span<uint> uartIrq = stackalloc uint[3];
                Interrupt(uartIrq, 0, GicSpi, UartSpi, LevelHigh);
                w.PropertyCells("interrupts", uartIrq);
                Span<uint> clocks = stackalloc uint[2];
                clocks[0] = ApbClockPhandle;
                clocks[1] = ApbClockPhandle;
                w.PropertyCells("clocks", clocks);
                w.PropertyStringList("clock-names", "uartclk\0apb_pclk");
            }
            w.EndNode();

            // A virtio-mmio transport (the balloon). Level-triggered, unlike
            // QEMU virt's edge: the line is high while InterruptStatus is not
            // zero, so a bit raised while the driver is between reading the
            // status and acknowledging it is taken again after its EOI instead
            // of being lost for want of a new edge. Without a GIC the guest
            // polls its interrupt status.
            if (spec.HasVirtio)
            {
                w.BeginNode("virtio_mmio", spec.VirtioBase);
                w.PropertyString("compatible", "virtio,mmio");
                w.PropertyReg("reg", spec.VirtioBase, spec.VirtioSize);
                if (spec.HasGic)
                {
                    Span<uint> virtioIrq = stackalloc uint[3];
                    Interrupt(virtioIrq, 0, GicSpi, spec.VirtioSpi, LevelHigh);
                    w.PropertyCells("interrupts", virtioIrq);
                }
                w.PropertyEmpty("dma-coherent");
                w.EndNode();
            }

            if (spec.HasGic) WriteGicTimerAndClock(ref w, spec.CpuCount);

            w.BeginNode("chosen");
            w.PropertyBytes("bootargs", bootargs);
            w.PropertyString("stdout-path", "/pl011@9000000");
            if (spec.HasInitrd)
            {
                w.PropertyU64("linux,initrd-start", spec.InitrdStart);
                w.PropertyU64("linux,initrd-end", spec.InitrdEnd);
            }
            // What Linux seeds its random number generator and its kernel's
            // placement from, before any driver could give it entropy.
            if (rngSeed.Length != 0) w.PropertyRaw("rng-seed", rngSeed);
            if (spec.KaslrSeed != 0) w.PropertyU64("kaslr-seed", spec.KaslrSeed);
            w.EndNode();

            w.EndNode();
            return w.Finish(out totalSize);
        }

        // The shape of QEMU virt's nodes (gic-version=3), less what is not
        // emulated: no ITS child (no MSIs), and no maintenance interrupt in the
        // GIC node, since that describes the virtualization support of a CPU
        // with EL2 and the guest runs at EL1 only.
        private static void WriteGicTimerAndClock(ref FdtWriter w, int cpuCount)
        {
            // GICD, then one redistributor region holding every vCPU's frames.
            w.BeginNode("intc", GicDistributorBase);
            w.PropertyString("compatible", "arm,gic-v3");
            w.PropertyU32("#interrupt-cells", 3);
            w.PropertyU32("#address-cells", 2);
            w.PropertyU32("#size-cells", 2);
            w.PropertyEmpty("ranges");
            w.PropertyEmpty("interrupt-controller");
            w.PropertyU32("#redistributor-regions", 1);
            Span<uint> reg = stackalloc uint[8];
            Cells64(reg, 0, GicDistributorBase);
            Cells64(reg, 2, GicDistributorSize);
            Cells64(reg, 4, GicRedistributorBase);
            Cells64(reg, 6, GicRedistributorStride * (ulong)cpuCount);
            w.PropertyCells("reg", reg);
            w.PropertyU32("phandle", GicPhandle);
            w.EndNode();

            // The arch timer's PPIs: secure physical 13, non-secure physical
            // 14, virtual 11, hypervisor 10; level, with no CPU mask (GICv3).
            w.BeginNode("timer");
            w.PropertyStringList("compatible", "arm,armv8-timer\0arm,armv7-timer");
            Span<uint> timer = stackalloc uint[12];
            Interrupt(timer, 0, GicPpi, 13, LevelHigh);
            Interrupt(timer, 3, GicPpi, 14, LevelHigh);
            Interrupt(timer, 6, GicPpi, 11, LevelHigh);
            Interrupt(timer, 9, GicPpi, 10, LevelHigh);
            w.PropertyCells("interrupts", timer);
            w.PropertyEmpty("always-on");
            w.EndNode();

            // The PL011's reference and bus clock (an AMBA device without
            // apb_pclk does not probe).
            w.BeginNode("apb-pclk");
            w.PropertyString("compatible", "fixed-clock");
            w.PropertyU32("#clock-cells", 0);
            w.PropertyU32("clock-frequency", ApbClockHz);
            w.PropertyString("clock-output-names", "clk24mhz");
            w.PropertyU32("phandle", ApbClockPhandle);
            w.EndNode();
        }

        private static void Interrupt(Span<uint> cells, int at, uint type, uint number, uint flags)
        {
            cells[at] = type;
            cells[at + 1] = number;
            cells[at + 2] = flags;
        }

        private static void Cells64(Span<uint> cells, int at, ulong value)
        {
            cells[at] = (uint)(value >> 32);
            cells[at + 1] = (uint)value;
        }
    }
}
