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

        // Any number of 32-bit cells, e.g. interrupts = <0 1 4>.
        public void PropertyCells(string name, ReadOnlySpan<uint> cells)
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
    // bootargs are a separate parameter of Build (a span cannot live in a
    // normal struct).
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
    }

    // The device tree each guest receives in x0: the small subset of QEMU's
    // "virt" machine that the hypervisor emulates. Linux and the test guest read
    // RAM, CPUs, the console UART and /chosen from it.
    public static class GuestDtb
    {
        public const ulong UartBase = 0x09000000;
        public const ulong UartSize = 0x1000;
        // Room for every distinct property name, including those of the
        // timer/GIC/virtio nodes still to come.
        private const int StringsScratchSize = 512;

        public static FdtWriteStatus Build(Span<byte> buffer, in GuestDtbSpec spec, ReadOnlySpan<byte> bootargs, out int totalSize)
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

            // The emulated console. A full PL011 description also has clocks and
            // an interrupt; the guests here poll it, so neither is given yet.
            w.BeginNode("pl011", UartBase);
            w.PropertyStringList("compatible", "arm,pl011\0arm,primecell");
            w.PropertyReg("reg", UartBase, UartSize);
            w.EndNode();

            // A virtio-mmio transport (the balloon). Without a virtual GIC the
            // guest polls, so the node has no interrupts property yet.
            if (spec.HasVirtio)
            {
                w.BeginNode("virtio_mmio", spec.VirtioBase);
                w.PropertyString("compatible", "virtio,mmio");
                w.PropertyReg("reg", spec.VirtioBase, spec.VirtioSize);
                w.PropertyEmpty("dma-coherent");
                w.EndNode();
            }

            // Later devices go here, as further top-level nodes before /chosen:
            // timer (compatible "arm,armv8-timer", interrupts), the GICv3
            // intc@8000000 (interrupt-controller, #interrupt-cells, reg, phandle,
            // then interrupt-parent in the root) and the virtio nodes' interrupts.

            w.BeginNode("chosen");
            w.PropertyBytes("bootargs", bootargs);
            w.PropertyString("stdout-path", "/pl011@9000000");
            if (spec.HasInitrd)
            {
                w.PropertyU64("linux,initrd-start", spec.InitrdStart);
                w.PropertyU64("linux,initrd-end", spec.InitrdEnd);
            }
            w.EndNode();

            w.EndNode();
            return w.Finish(out totalSize);
        }
    }
}
