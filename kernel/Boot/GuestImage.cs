using System;

namespace Hypervisor.Boot
{
    // How a guest image file is laid out (vms.conf kind=elf|image|raw).
    public enum GuestKind : byte
    {
        Unspecified = 0,  // not given in vms.conf: GuestImage.Detect decides
        Elf = 1,
        LinuxImage = 2,   // arm64 Linux "Image" (Documentation/arch/arm64/booting.rst)
        Raw = 3,
    }

    public enum GuestImageStatus
    {
        Ok,
        Empty,                // a zero-length file
        Truncated,            // shorter than the header its kind needs
        NotElf,               // kind=elf but no \x7fELF magic
        NotElf64,             // a 32-bit (or unknown class) ELF
        NotLittleEndian,
        WrongMachine,         // e_machine is not AArch64 (183)
        NotExecutable,        // e_type is not ET_EXEC (relocatable or position-independent)
        BadProgramHeaders,    // wrong entry size or the table is outside the file
        NoLoadableSegments,
        TooManySegments,      // more PT_LOAD segments than the caller's span holds
        BadSegment,           // file size larger than memory size
        SegmentOutsideFile,
        SegmentOutsideRam,    // some byte would land outside [ramBase, ramBase + ramSize)
        SegmentsOverlap,
        EntryNotLoaded,       // the entry point is in no loaded segment
        NotLinuxImage,        // kind=image but no "ARM\x64" magic at offset 56
        BigEndianImage,       // Image flags bit 0: a big-endian kernel
    }

    // One piece of the file to copy into guest RAM: FileSize bytes from
    // FileOffset to PhysicalAddress, then zeros up to MemorySize (.bss).
    public struct GuestSegment
    {
        public ulong FileOffset;
        public ulong FileSize;
        public ulong MemorySize;
        public ulong PhysicalAddress;
    }

    public struct GuestImageInfo
    {
        public GuestKind Kind;
        public ulong Entry;           // guest-physical address of the first instruction
        public int SegmentCount;      // entries filled in the caller's span
        public ulong LoadStart;       // lowest guest-physical address loaded
        public ulong LoadEnd;         // one past the highest (DTB and initrd go above)
    }

    // Recognises a guest image and says where its bytes go. Nothing is copied
    // here: the caller copies each segment after the checks passed, so a
    // hostile file can at worst be refused, never write outside the guest's RAM.
    public static class GuestImage
    {
        public const ushort MachineAArch64 = 183;
        private const int ElfHeaderSize = 64;
        private const int ProgramHeaderSize = 56;
        private const uint PtLoad = 1;
        private const ushort EtExec = 2;
        private const int LinuxImageHeaderSize = 64;
        private const uint LinuxImageMagic = 0x644d5241;     // "ARM\x64" read little-endian
        // booting.rst: the Image goes text_offset bytes above a 2 MiB aligned
        // address. As QEMU's loader does, that address is the start of RAM,
        // or the next 2 MiB boundary when text_offset is below a page (QEMU
        // keeps its boot stub there; keeping that rule means an Image of a
        // current kernel, text_offset 0, runs at the address QEMU gives it).
        public const ulong LinuxImageAlignment = 0x200000;
        private const ulong SmallTextOffset = 0x1000;
        // booting.rst: an Image header with image_size 0 predates text_offset
        // being meaningful; such kernels expect 0x80000.
        private const ulong LegacyTextOffset = 0x80000;
        public const ulong RawLoadOffset = 0x80000;

        public static GuestKind Detect(ReadOnlySpan<byte> file)
        {
            if (HasElfMagic(file)) return GuestKind.Elf;
            if (file.Length >= LinuxImageHeaderSize && ReadLe32(file, 56) == LinuxImageMagic) return GuestKind.LinuxImage;
            return GuestKind.Raw;
        }

        // Fills segments (the caller decides how many it can take) and info.
        // kind Unspecified means Detect decides.
        public static GuestImageStatus Describe(ReadOnlySpan<byte> file, GuestKind kind, ulong ramBase, ulong ramSize,
                                                Span<GuestSegment> segments, out GuestImageInfo info)
        {
            info = default;
            if (file.Length == 0) return GuestImageStatus.Empty;
            if (kind == GuestKind.Unspecified) kind = Detect(file);
            info.Kind = kind;
            GuestImageStatus status;
            if (kind == GuestKind.Elf) status = DescribeElf(file, segments, ref info);
            else if (kind == GuestKind.LinuxImage) status = DescribeLinuxImage(file, ramBase, segments, ref info);
            else status = DescribeRaw(file, ramBase, segments, ref info);
            if (status != GuestImageStatus.Ok) return status;
            return CheckPlacement(segments.Slice(0, info.SegmentCount), ramBase, ramSize, ref info);
        }

        public static string Message(GuestImageStatus status)
        {
            switch (status)
            {
                case GuestImageStatus.Ok: return "ok";
                case GuestImageStatus.Empty: return "image file is empty";
                case GuestImageStatus.Truncated: return "image shorter than its header";
                case GuestImageStatus.NotElf: return "kind=elf but the file is not ELF";
                case GuestImageStatus.NotElf64: return "not a 64-bit ELF";
                case GuestImageStatus.NotLittleEndian: return "not a little-endian image";
                case GuestImageStatus.WrongMachine: return "ELF is not for AArch64";
                case GuestImageStatus.NotExecutable: return "ELF is not an executable (ET_EXEC)";
                case GuestImageStatus.BadProgramHeaders: return "bad ELF program header table";
                case GuestImageStatus.NoLoadableSegments: return "ELF has no PT_LOAD segment";
                case GuestImageStatus.TooManySegments: return "too many PT_LOAD segments";
                case GuestImageStatus.BadSegment: return "segment file size larger than memory size";
                case GuestImageStatus.SegmentOutsideFile: return "segment runs past the end of the file";
                case GuestImageStatus.SegmentOutsideRam: return "image does not fit in the VM's RAM";
                case GuestImageStatus.SegmentsOverlap: return "segments overlap";
                case GuestImageStatus.EntryNotLoaded: return "entry point is not in a loaded segment";
                case GuestImageStatus.NotLinuxImage: return "kind=image but no arm64 Image magic";
                case GuestImageStatus.BigEndianImage: return "big-endian kernel Image";
                default: return "unknown image status";
            }
        }

        private static bool HasElfMagic(ReadOnlySpan<byte> file) =>
            file.Length >= 4 && file[0] == 0x7f && file[1] == (byte)'E' && file[2] == (byte)'L' && file[3] == (byte)'F';

        // ELF64 header fields used (offsets from the ELF specification):
        //   4 EI_CLASS (2 = 64-bit), 5 EI_DATA (1 = little-endian), 16 e_type,
        //   18 e_machine, 24 e_entry, 32 e_phoff, 54 e_phentsize, 56 e_phnum.
        // Program header: 0 p_type, 8 p_offset, 16 p_vaddr, 24 p_paddr,
        //   32 p_filesz, 40 p_memsz.
        private static GuestImageStatus DescribeElf(ReadOnlySpan<byte> file, Span<GuestSegment> segments, ref GuestImageInfo info)
        {
            if (!HasElfMagic(file)) return file.Length < 4 ? GuestImageStatus.Truncated : GuestImageStatus.NotElf;
            if (file.Length < 6) return GuestImageStatus.Truncated;
            if (file[4] != 2) return GuestImageStatus.NotElf64;
            if (file[5] != 1) return GuestImageStatus.NotLittleEndian;
            if (file.Length < ElfHeaderSize) return GuestImageStatus.Truncated;
            if (ReadLe16(file, 18) != MachineAArch64) return GuestImageStatus.WrongMachine;
            if (ReadLe16(file, 16) != EtExec) return GuestImageStatus.NotExecutable;

            ulong entry = ReadLe64(file, 24);
            ulong tableOffset = ReadLe64(file, 32);
            int entrySize = ReadLe16(file, 54);
            int count = ReadLe16(file, 56);
            if (entrySize != ProgramHeaderSize) return GuestImageStatus.BadProgramHeaders;
            if (!InsideFile(tableOffset, (ulong)count * ProgramHeaderSize, file.Length)) return GuestImageStatus.BadProgramHeaders;

            bool entryFound = false;
            int used = 0;
            for (int i = 0; i < count; i++)
            {
                int ph = (int)tableOffset + i * ProgramHeaderSize;
                if (ReadLe32(file, ph) != PtLoad) continue;
                ulong offset = ReadLe64(file, ph + 8);
                ulong virtualAddress = ReadLe64(file, ph + 16);
                ulong physicalAddress = ReadLe64(file, ph + 24);
                ulong fileSize = ReadLe64(file, ph + 32);
                ulong memorySize = ReadLe64(file, ph + 40);
                if (memorySize == 0) continue;   // nothing to load
                if (!InsideFile(offset, fileSize, file.Length)) return GuestImageStatus.SegmentOutsideFile;
                if (fileSize > memorySize) return GuestImageStatus.BadSegment;
                if (used == segments.Length) return GuestImageStatus.TooManySegments;
                segments[used].FileOffset = offset;
                segments[used].FileSize = fileSize;
                segments[used].MemorySize = memorySize;
                segments[used].PhysicalAddress = physicalAddress;
                used++;
                // The guest starts with its MMU off, so e_entry (a virtual
                // address) must be turned into the physical one through the
                // segment that contains it.
                if (!entryFound && entry >= virtualAddress && entry - virtualAddress < memorySize)
                {
                    info.Entry = physicalAddress + (entry - virtualAddress);
                    entryFound = true;
                }
            }
            if (used == 0) return GuestImageStatus.NoLoadableSegments;
            info.SegmentCount = used;
            if (!entryFound) return GuestImageStatus.EntryNotLoaded;
            return GuestImageStatus.Ok;
        }

        // arm64 Image header (little-endian): 0 code0, 4 code1, 8 text_offset,
        // 16 image_size (including .bss), 24 flags, 56 magic "ARM\x64".
        private static GuestImageStatus DescribeLinuxImage(ReadOnlySpan<byte> file, ulong ramBase, Span<GuestSegment> segments, ref GuestImageInfo info)
        {
            if (file.Length < LinuxImageHeaderSize) return GuestImageStatus.Truncated;
            if (ReadLe32(file, 56) != LinuxImageMagic) return GuestImageStatus.NotLinuxImage;
            ulong textOffset = ReadLe64(file, 8);
            ulong imageSize = ReadLe64(file, 16);
            ulong flags = ReadLe64(file, 24);
            if ((flags & 1) != 0) return GuestImageStatus.BigEndianImage;
            if (imageSize == 0) textOffset = LegacyTextOffset;
            // image_size covers .bss too; a file longer than it (appended data)
            // is still copied whole.
            ulong memorySize = imageSize > (ulong)file.Length ? imageSize : (ulong)file.Length;

            // Each addition is checked before it is made: a hostile text_offset
            // must not wrap the address around into RAM.
            if (ramBase > ulong.MaxValue - 2 * LinuxImageAlignment) return GuestImageStatus.SegmentOutsideRam;
            ulong alignedBase = (ramBase + LinuxImageAlignment - 1) & ~(LinuxImageAlignment - 1);
            if (textOffset < SmallTextOffset) alignedBase += LinuxImageAlignment;
            if (textOffset > ulong.MaxValue - alignedBase) return GuestImageStatus.SegmentOutsideRam;
            return OneSegment(file, alignedBase + textOffset, memorySize, segments, ref info);
        }

        private static GuestImageStatus DescribeRaw(ReadOnlySpan<byte> file, ulong ramBase, Span<GuestSegment> segments, ref GuestImageInfo info)
        {
            if (ramBase > ulong.MaxValue - RawLoadOffset) return GuestImageStatus.SegmentOutsideRam;
            return OneSegment(file, ramBase + RawLoadOffset, (ulong)file.Length, segments, ref info);
        }

        // Image and raw: the whole file at one address, entered at its first byte.
        private static GuestImageStatus OneSegment(ReadOnlySpan<byte> file, ulong load, ulong memorySize, Span<GuestSegment> segments, ref GuestImageInfo info)
        {
            if (segments.Length < 1) return GuestImageStatus.TooManySegments;
            segments[0].FileOffset = 0;
            segments[0].FileSize = (ulong)file.Length;
            segments[0].MemorySize = memorySize;
            segments[0].PhysicalAddress = load;
            info.SegmentCount = 1;
            info.Entry = load;
            return GuestImageStatus.Ok;
        }

        // Every segment inside RAM and no two overlapping; records the extent.
        private static GuestImageStatus CheckPlacement(ReadOnlySpan<GuestSegment> segments, ulong ramBase, ulong ramSize, ref GuestImageInfo info)
        {
            ulong low = ulong.MaxValue, high = 0;
            for (int i = 0; i < segments.Length; i++)
            {
                ulong start = segments[i].PhysicalAddress, size = segments[i].MemorySize;
                // start - ramBase and ramSize - size cannot wrap once the first
                // two comparisons hold, so this is overflow-free.
                if (start < ramBase || size > ramSize || start - ramBase > ramSize - size) return GuestImageStatus.SegmentOutsideRam;
                ulong end = start + size;
                for (int j = 0; j < i; j++)
                {
                    ulong otherStart = segments[j].PhysicalAddress;
                    ulong otherEnd = otherStart + segments[j].MemorySize;
                    if (start < otherEnd && otherStart < end) return GuestImageStatus.SegmentsOverlap;
                }
                if (start < low) low = start;
                if (end > high) high = end;
            }
            info.LoadStart = low;
            info.LoadEnd = high;
            return GuestImageStatus.Ok;
        }

        private static bool InsideFile(ulong offset, ulong size, int fileLength) =>
            offset <= (ulong)fileLength && size <= (ulong)fileLength - offset;

        private static ushort ReadLe16(ReadOnlySpan<byte> b, int at) => (ushort)(b[at] | b[at + 1] << 8);

        private static uint ReadLe32(ReadOnlySpan<byte> b, int at) =>
            (uint)b[at] | (uint)b[at + 1] << 8 | (uint)b[at + 2] << 16 | (uint)b[at + 3] << 24;

        private static ulong ReadLe64(ReadOnlySpan<byte> b, int at) => ReadLe32(b, at) | (ulong)ReadLe32(b, at + 4) << 32;
    }
}
