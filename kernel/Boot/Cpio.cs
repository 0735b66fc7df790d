using System;

namespace Hypervisor.Boot
{
    public enum CpioStatus
    {
        Ok,
        End,          // the TRAILER!!! entry (or an index past the last entry)
        NotFound,     // Find: no entry of that name before the trailer
        Truncated,    // a header, name or file data runs past the end, or no trailer
        BadMagic,     // not "070701" / "070702": not a newc archive or a corrupted one
        BadHex,       // a header field with a character that is not a hex digit
        BadName,      // name size 0, or the name does not end with its NUL
    }

    // One member of the archive. Offsets are from the start of the archive span.
    public struct CpioEntry
    {
        public int HeaderOffset;
        public int NameOffset;
        public int NameLength;       // without the NUL
        public int DataOffset;
        public int DataLength;
        public int NextOffset;       // where the next header starts
        public uint Mode;            // file type and permissions, as in stat(2)

        public bool IsRegularFile => (Mode & 0xf000) == 0x8000;
    }

    // Reader for "newc" cpio archives, the format of the guest bundle (and of
    // Linux initramfs). Each member is:
    //
    //   110-byte ASCII header: "070701" then 13 fields of 8 hex digits
    //     (ino mode uid gid nlink mtime filesize devmajor devminor
    //      rdevmajor rdevminor namesize check)
    //   the name, namesize bytes including its NUL, padded so that
    //     header + name ends on a multiple of 4
    //   the data, filesize bytes, padded to a multiple of 4
    //
    // and the member named "TRAILER!!!" ends the archive. The archive is
    // untrusted input (it comes from whoever started the machine), so every
    // field is checked against the span before it is used.
    public static class Cpio
    {
        public const int HeaderSize = 110;
        private const int FieldMode = 1;
        private const int FieldFileSize = 6;
        private const int FieldNameSize = 11;

        // Reads the member whose header starts at offset. Returns End for the
        // trailer (entry then still describes it), Ok for an ordinary member.
        public static CpioStatus ReadEntry(ReadOnlySpan<byte> archive, int offset, out CpioEntry entry)
        {
            entry = default;
            if (offset < 0 || offset > archive.Length || archive.Length - offset < HeaderSize) return CpioStatus.Truncated;
            ReadOnlySpan<byte> header = archive.Slice(offset, HeaderSize);
            if (!Fdt.StartsWith(header, "07070")) return CpioStatus.BadMagic;
            // 070702 is the same layout with a checksum in the check field; the
            // checksum is not verified.
            if (header[5] != (byte)'1' && header[5] != (byte)'2') return CpioStatus.BadMagic;

            // Only three fields are used, but a non-hex digit in any of them
            // means the header is damaged.
            for (int field = 0; field < 13; field++)
                if (!ReadField(header, field, out _)) return CpioStatus.BadHex;
            ReadField(header, FieldMode, out uint mode);
            ReadField(header, FieldFileSize, out uint fileSize);
            ReadField(header, FieldNameSize, out uint nameSize);

            // long arithmetic: the sizes are attacker-chosen 32-bit values.
            long nameStart = (long)offset + HeaderSize;
            if (nameSize == 0) return CpioStatus.BadName;
            if (nameStart + nameSize > archive.Length) return CpioStatus.Truncated;
            if (archive[(int)(nameStart + nameSize - 1)] != 0) return CpioStatus.BadName;
            long dataStart = Align4(nameStart + nameSize);
            if (dataStart + fileSize > archive.Length) return CpioStatus.Truncated;

            entry.HeaderOffset = offset;
            entry.NameOffset = (int)nameStart;
            entry.NameLength = (int)nameSize - 1;
            entry.DataOffset = (int)dataStart;
            entry.DataLength = (int)fileSize;
            entry.Mode = mode;
            // The padding after the data may be cut off at the very end of the
            // archive; the next ReadEntry then reports Truncated.
            long next = Align4(dataStart + fileSize);
            entry.NextOffset = next > archive.Length ? archive.Length : (int)next;

            if (Fdt.BytesEqual(archive.Slice(entry.NameOffset, entry.NameLength), "TRAILER!!!")) return CpioStatus.End;
            return CpioStatus.Ok;
        }

        // The index-th member (0-based, trailer not counted). End when the
        // archive has fewer members. Walks from the start: fine for bundles of
        // a handful of files.
        public static CpioStatus EntryAt(ReadOnlySpan<byte> archive, int index, out CpioEntry entry)
        {
            int offset = 0;
            for (int i = 0; ; i++)
            {
                CpioStatus status = ReadEntry(archive, offset, out entry);
                if (status != CpioStatus.Ok) return status;
                if (i == index) return CpioStatus.Ok;
                offset = entry.NextOffset;
            }
        }

        // Counts the members before the trailer. Any status but End is an error.
        public static CpioStatus Count(ReadOnlySpan<byte> archive, out int count)
        {
            count = 0;
            int offset = 0;
            while (true)
            {
                CpioStatus status = ReadEntry(archive, offset, out CpioEntry entry);
                if (status != CpioStatus.Ok) return status;
                count++;
                offset = entry.NextOffset;
            }
        }

        // Finds a member by name (as in vms.conf: a byte span). A leading "./"
        // in the archive (cpio run on `find .`) is ignored.
        public static CpioStatus Find(ReadOnlySpan<byte> archive, ReadOnlySpan<byte> name, out CpioEntry entry)
        {
            int offset = 0;
            while (true)
            {
                CpioStatus status = ReadEntry(archive, offset, out entry);
                if (status == CpioStatus.End) { entry = default; return CpioStatus.NotFound; }
                if (status != CpioStatus.Ok) { entry = default; return status; }
                if (SameName(EntryName(archive, entry), name)) return CpioStatus.Ok;
                offset = entry.NextOffset;
            }
        }

        public static CpioStatus Find(ReadOnlySpan<byte> archive, string name, out CpioEntry entry)
        {
            // Copy the literal into bytes so both overloads share one walk; names
            // longer than this cannot be in a bundle built by scripts/mkbundle anyway.
            Span<byte> bytes = stackalloc byte[256];
            if (name.Length > bytes.Length) { entry = default; return CpioStatus.NotFound; }
            for (int i = 0; i < name.Length; i++)
            {
                if (name[i] > 0xff) { entry = default; return CpioStatus.NotFound; }
                bytes[i] = (byte)name[i];
            }
            return Find(archive, bytes.Slice(0, name.Length), out entry);
        }

        public static ReadOnlySpan<byte> EntryName(ReadOnlySpan<byte> archive, in CpioEntry entry) =>
            archive.Slice(entry.NameOffset, entry.NameLength);

        public static ReadOnlySpan<byte> EntryData(ReadOnlySpan<byte> archive, in CpioEntry entry) =>
            archive.Slice(entry.DataOffset, entry.DataLength);

        public static string Message(CpioStatus status)
        {
            switch (status)
            {
                case CpioStatus.Ok: return "ok";
                case CpioStatus.End: return "end of archive";
                case CpioStatus.NotFound: return "no such file in the bundle";
                case CpioStatus.Truncated: return "archive truncated";
                case CpioStatus.BadMagic: return "not a newc cpio archive (bad magic)";
                case CpioStatus.BadHex: return "bad hex digit in a cpio header";
                case CpioStatus.BadName: return "bad file name in a cpio header";
                default: return "unknown cpio status";
            }
        }

        private static bool SameName(ReadOnlySpan<byte> stored, ReadOnlySpan<byte> wanted)
        {
            if (stored.Length >= 2 && stored[0] == (byte)'.' && stored[1] == (byte)'/') stored = stored.Slice(2);
            if (stored.Length != wanted.Length) return false;
            for (int i = 0; i < stored.Length; i++) if (stored[i] != wanted[i]) return false;
            return true;
        }

        // Field n (0 = ino) of the 13 after the 6-byte magic.
        private static bool ReadField(ReadOnlySpan<byte> header, int field, out uint value)
        {
            value = 0;
            int start = 6 + field * 8;
            for (int i = 0; i < 8; i++)
            {
                int digit = HexValue(header[start + i]);
                if (digit < 0) return false;
                value = value << 4 | (uint)digit;
            }
            return true;
        }

        private static int HexValue(byte c)
        {
            if (c >= '0' && c <= '9') return c - '0';
            if (c >= 'a' && c <= 'f') return c - 'a' + 10;
            if (c >= 'A' && c <= 'F') return c - 'A' + 10;
            return -1;
        }

        private static long Align4(long x) => (x + 3) & ~3L;
    }
}
