using System;

namespace Hypervisor.Boot
{
    public enum PagingMode : byte
    {
        Stage2 = 0,   // hardware two-stage translation (the default)
        Shadow = 1,   // the hypervisor keeps shadow page tables
        Direct = 2,   // the guest's own tables map machine addresses, validated
    }

    // How a stage-2 VM's RAM gets host frames (vms.conf backing=).
    public enum RamBacking : byte
    {
        Pages = 0,    // 4 KiB frames on first touch (demand paging; the default)
        Blocks = 1,   // all of it up front, in 1 GiB and 2 MiB stage-2 blocks where
                      // the host has aligned contiguous runs, 4 KiB pages elsewhere
    }

    // A piece of the config text: strings are never copied out of it.
    public struct TextRange
    {
        public int Offset;
        public int Length;

        public TextRange(int offset, int length) { Offset = offset; Length = length; }
        public bool IsEmpty => Length == 0;
        public ReadOnlySpan<byte> Of(ReadOnlySpan<byte> text) => text.Slice(Offset, Length);
    }

    // One `vm` line.
    public struct VmSpec
    {
        public int Line;                 // 1-based line number in vms.conf
        public TextRange Name;
        public ulong MemoryBytes;
        public TextRange Image;          // a file name in the bundle
        public TextRange Initrd;         // empty: none
        public TextRange Args;           // the guest's bootargs, without quotes
        public GuestKind Kind;           // Unspecified: detect from the file
        public PagingMode Paging;
        public bool Balloon;
        public bool BalloonDeflateOnOom;    // balloon=oom: also offer VIRTIO_BALLOON_F_DEFLATE_ON_OOM
        public int Cpus;
        public ulong BootBalloonBytes;   // 0: none
        // Restarts from the image allowed after the guest asks for PSCI
        // SYSTEM_RESET; a reset beyond them stops the VM. -1: unlimited.
        public int MaxResets;
        // Pages a stage-2 demand fault maps at once (the faulting page's
        // aligned window; 1: just that page).
        public int FaultAround;
        public bool HvCounter;           // hv_counter=on: may read the hypervisor's cycle counter (benchmarks)
        public RamBacking Backing;

        public bool HasInitrd => Initrd.Length > 0;
    }

    // From the `hv` lines; later lines override earlier ones.
    public struct HvSettings
    {
        public int SliceMs;              // scheduler time slice
        public int VmidBits;             // 0: as many as the hardware offers
        public TextRange BalloonMove;    // "from:to:size" (the seed's demo), empty: none
    }

    // What is wrong with a rejected line; VmConfig.Message says it in words.
    public enum VmConfigErrorKind : byte
    {
        None,
        UnknownLineKind, MissingName, BadName,                       // the line's first words
        UnknownKey, DuplicateKey, ExpectedKeyValue, EmptyValue,      // key=value syntax
        UnterminatedQuote, StrayQuote, TrailingGarbage,              // quoting
        BadSize, BadNumber, BadChoice,                               // values
        MissingMem, MissingImage, BootBalloonTooLarge,               // the line as a whole
        DuplicateName, TooManyVms,                                   // against earlier lines
    }

    // One rejected line. Token points at the offending word in the text
    // (empty when the problem is something missing).
    public struct VmConfigError
    {
        public int Line;
        public VmConfigErrorKind Kind;
        public TextRange Token;
    }

    public struct VmConfigResult
    {
        public int VmCount;        // VmSpecs written
        public int ErrorCount;     // errors found; only the first errors.Length are stored
    }

    // Parser for vms.conf:
    //
    //   # comment; blank lines ignored
    //   hv  slice_ms=10 vmid_bits=16
    //   vm  a mem=256M image=guest.bin args="role=giver tests=all"
    //
    // vm keys: the name first ([a-z0-9_-], 1..15), then mem (required; K/M/G),
    // image (required), initrd, args (quoted or one word), kind (elf|image|raw),
    // paging (stage2|shadow|direct), balloon (on|oom|off), cpus (1..8),
    // boot_balloon (a size below mem), resets (0..1000000 restarts after a
    // guest's SYSTEM_RESET; absent: unlimited), fault_around (pages one
    // demand fault maps: 1, 2, 4 .. 64; default 1), hv_counter (on|off: the
    // guest may read the hypervisor's cycle counter, for benchmarks), backing
    // (pages|blocks: RAM demand-paged in 4 KiB pages, the default, or backed
    // up front by stage-2 blocks; kernel/Vm/VmBuilder.cs). hv keys: slice_ms (1..1000),
    // vmid_bits (1..16), balloon_move (from:to:size, the balloon demo).
    // A '#' at the start of a word (outside quotes) starts a comment. A line with
    // any error is rejected as a whole and reported with its number; the other
    // lines still count, so one typo does not keep every VM from starting.
    public static class VmConfig
    {
        public const int MaxVms = 64;
        public const int MaxCpus = 8;
        public const int MaxNameLength = 15;
        public const ulong PageSize = 4096;
        public const int DefaultSliceMs = 10;
        public const int MaxResetsLimit = 1000000;
        public const int UnlimitedResets = -1;

        // Bits of the seen-keys mask, to catch a key given twice on one line.
        private const int KeyMem = 1, KeyImage = 2, KeyInitrd = 4, KeyArgs = 8, KeyKind = 16,
                          KeyPaging = 32, KeyBalloon = 64, KeyCpus = 128, KeyBootBalloon = 256,
                          KeySlice = 512, KeyVmidBits = 1024, KeyResets = 2048,
                          KeyBalloonMove = 4096, KeyFaultAround = 8192, KeyHvCounter = 16384,
                          KeyBacking = 32768;
        public const int MaxFaultAround = 64;

        public static VmConfigResult Parse(ReadOnlySpan<byte> text, Span<VmSpec> vms, Span<VmConfigError> errors, out HvSettings hv)
        {
            hv = default;
            hv.SliceMs = DefaultSliceMs;
            var result = default(VmConfigResult);
            int capacity = vms.Length < MaxVms ? vms.Length : MaxVms;
            int lineNumber = 0;
            int pos = 0;
            while (pos < text.Length)
            {
                lineNumber++;
                int start = pos;
                int end = start;
                while (end < text.Length && text[end] != (byte)'\n') end++;
                pos = end + 1;
                if (end > start && text[end - 1] == (byte)'\r') end--;   // CRLF files

                var error = default(VmConfigError);
                error.Line = lineNumber;
                var line = new Cursor(text, start, end);
                line.SkipSpaces();
                if (line.AtEndOrComment) continue;
                int wordStart = line.Pos;
                int wordLength = line.SkipWord();

                if (IsWord(text, wordStart, wordLength, "hv"))
                {
                    HvSettings next = hv;
                    if (ParseHvLine(ref line, ref next, ref error)) hv = next;
                    else Report(ref result, errors, error);
                    continue;
                }
                if (!IsWord(text, wordStart, wordLength, "vm"))
                {
                    Fail(ref error, VmConfigErrorKind.UnknownLineKind, new TextRange(wordStart, wordLength));
                    Report(ref result, errors, error);
                    continue;
                }

                var vm = default(VmSpec);
                vm.Line = lineNumber;
                // A valid line can still be refused: the first VM of a name
                // wins, and there is room for only so many.
                bool accepted = ParseVmLine(ref line, ref vm, ref error)
                    && (!NameTaken(text, vms.Slice(0, result.VmCount), vm.Name) || Fail(ref error, VmConfigErrorKind.DuplicateName, vm.Name))
                    && (result.VmCount < capacity || Fail(ref error, VmConfigErrorKind.TooManyVms, vm.Name));
                if (!accepted) { Report(ref result, errors, error); continue; }
                vms[result.VmCount] = vm;
                result.VmCount++;
            }
            return result;
        }

        // For `[hv] vms.conf:3: unknown key 'foo'`.
        public static string Message(VmConfigErrorKind kind)
        {
            switch (kind)
            {
                case VmConfigErrorKind.None: return "ok";
                case VmConfigErrorKind.UnknownLineKind: return "line must start with vm, hv or #";
                case VmConfigErrorKind.MissingName: return "missing VM name after vm";
                case VmConfigErrorKind.BadName: return "VM name must be 1-15 of a-z 0-9 _ -";
                case VmConfigErrorKind.UnknownKey: return "unknown key";
                case VmConfigErrorKind.DuplicateKey: return "key given twice";
                case VmConfigErrorKind.ExpectedKeyValue: return "expected key=value";
                case VmConfigErrorKind.EmptyValue: return "empty value";
                case VmConfigErrorKind.UnterminatedQuote: return "unterminated quote";
                case VmConfigErrorKind.StrayQuote: return "quote inside an unquoted value";
                case VmConfigErrorKind.TrailingGarbage: return "garbage after closing quote";
                case VmConfigErrorKind.BadSize: return "bad size (a non-zero page multiple, suffix K, M or G)";
                case VmConfigErrorKind.BadNumber: return "number missing or out of range";
                case VmConfigErrorKind.BadChoice: return "value is not one of the allowed words";
                case VmConfigErrorKind.MissingMem: return "missing required key mem";
                case VmConfigErrorKind.MissingImage: return "missing required key image";
                case VmConfigErrorKind.BootBalloonTooLarge: return "boot_balloon must be smaller than mem";
                case VmConfigErrorKind.DuplicateName: return "duplicate VM name";
                case VmConfigErrorKind.TooManyVms: return "too many VMs";
                default: return "unknown error";
            }
        }

        private static bool ParseVmLine(ref Cursor line, ref VmSpec vm, ref VmConfigError error)
        {
            vm.Paging = PagingMode.Stage2;
            vm.Cpus = 1;
            vm.MaxResets = UnlimitedResets;
            vm.FaultAround = 1;
            line.SkipSpaces();
            int nameStart = line.Pos;
            int nameLength = line.AtEndOrComment ? 0 : line.SkipWord();
            vm.Name = new TextRange(nameStart, nameLength);
            if (nameLength == 0 || ContainsByte(line.Text, nameStart, nameLength, (byte)'='))
                return Fail(ref error, VmConfigErrorKind.MissingName, vm.Name);
            if (!IsValidName(line.Text, nameStart, nameLength)) return Fail(ref error, VmConfigErrorKind.BadName, vm.Name);

            int seen = 0;
            var bootBalloonValue = default(TextRange);
            while (true)
            {
                line.SkipSpaces();
                if (line.AtEndOrComment) break;
                if (!line.ReadKeyValue(out TextRange key, out TextRange value, ref error)) return false;
                ReadOnlySpan<byte> v = value.Of(line.Text);
                int bit = VmKeyBit(key.Of(line.Text));
                if (bit == 0) return Fail(ref error, VmConfigErrorKind.UnknownKey, key);
                if ((seen & bit) != 0) return Fail(ref error, VmConfigErrorKind.DuplicateKey, key);
                seen |= bit;
                // Only args may be empty (args="" is a guest without bootargs).
                if (value.Length == 0 && bit != KeyArgs) return Fail(ref error, VmConfigErrorKind.EmptyValue, key);

                switch (bit)
                {
                    case KeyMem:
                        if (!ParseSize(v, out vm.MemoryBytes) || vm.MemoryBytes == 0) return Fail(ref error, VmConfigErrorKind.BadSize, value);
                        break;
                    case KeyImage: vm.Image = value; break;
                    case KeyInitrd: vm.Initrd = value; break;
                    case KeyArgs: vm.Args = value; break;
                    case KeyKind:
                        if (Fdt.BytesEqual(v, "elf")) vm.Kind = GuestKind.Elf;
                        else if (Fdt.BytesEqual(v, "image")) vm.Kind = GuestKind.LinuxImage;
                        else if (Fdt.BytesEqual(v, "raw")) vm.Kind = GuestKind.Raw;
                        else return Fail(ref error, VmConfigErrorKind.BadChoice, value);
                        break;
                    case KeyPaging:
                        if (Fdt.BytesEqual(v, "stage2")) vm.Paging = PagingMode.Stage2;
                        else if (Fdt.BytesEqual(v, "shadow")) vm.Paging = PagingMode.Shadow;
                        else if (Fdt.BytesEqual(v, "direct")) vm.Paging = PagingMode.Direct;
                        else return Fail(ref error, VmConfigErrorKind.BadChoice, value);
                        break;
                    case KeyBalloon:
                        if (Fdt.BytesEqual(v, "on")) vm.Balloon = true;
                        else if (Fdt.BytesEqual(v, "oom")) vm.Balloon = vm.BalloonDeflateOnOom = true;
                        else if (Fdt.BytesEqual(v, "off")) vm.Balloon = false;
                        else return Fail(ref error, VmConfigErrorKind.BadChoice, value);
                        break;
                    case KeyCpus:
                        if (!ParseNumber(v, 1, MaxCpus, out vm.Cpus)) return Fail(ref error, VmConfigErrorKind.BadNumber, value);
                        break;
                    case KeyBootBalloon:
                        if (!ParseSize(v, out vm.BootBalloonBytes)) return Fail(ref error, VmConfigErrorKind.BadSize, value);
                        bootBalloonValue = value;
                        break;
                    case KeyResets:
                        if (!ParseNumber(v, 0, MaxResetsLimit, out vm.MaxResets)) return Fail(ref error, VmConfigErrorKind.BadNumber, value);
                        break;
                    case KeyHvCounter:
                        if (Fdt.BytesEqual(v, "on")) vm.HvCounter = true;
                        else if (Fdt.BytesEqual(v, "off")) vm.HvCounter = false;
                        else return Fail(ref error, VmConfigErrorKind.BadChoice, value);
                        break;
                    case KeyBacking:
                        if (Fdt.BytesEqual(v, "pages")) vm.Backing = RamBacking.Pages;
                        else if (Fdt.BytesEqual(v, "blocks")) vm.Backing = RamBacking.Blocks;
                        else return Fail(ref error, VmConfigErrorKind.BadChoice, value);
                        break;
                    case KeyFaultAround:
                        // A power of two, so the window is aligned and lies in one level-3 table.
                        if (!ParseNumber(v, 1, MaxFaultAround, out vm.FaultAround) || (vm.FaultAround & (vm.FaultAround - 1)) != 0)
                            return Fail(ref error, VmConfigErrorKind.BadNumber, value);
                        break;
                }
            }

            var nothing = default(TextRange);
            if ((seen & KeyMem) == 0) return Fail(ref error, VmConfigErrorKind.MissingMem, nothing);
            if ((seen & KeyImage) == 0) return Fail(ref error, VmConfigErrorKind.MissingImage, nothing);
            if (vm.BootBalloonBytes >= vm.MemoryBytes && (seen & KeyBootBalloon) != 0)
                return Fail(ref error, VmConfigErrorKind.BootBalloonTooLarge, bootBalloonValue);
            return true;
        }

        private static bool ParseHvLine(ref Cursor line, ref HvSettings hv, ref VmConfigError error)
        {
            int seen = 0;
            while (true)
            {
                line.SkipSpaces();
                if (line.AtEndOrComment) return true;
                if (!line.ReadKeyValue(out TextRange key, out TextRange value, ref error)) return false;
                ReadOnlySpan<byte> k = key.Of(line.Text);
                ReadOnlySpan<byte> v = value.Of(line.Text);
                int bit = Fdt.BytesEqual(k, "slice_ms") ? KeySlice : Fdt.BytesEqual(k, "vmid_bits") ? KeyVmidBits
                        : Fdt.BytesEqual(k, "balloon_move") ? KeyBalloonMove : 0;
                if (bit == 0) return Fail(ref error, VmConfigErrorKind.UnknownKey, key);
                if ((seen & bit) != 0) return Fail(ref error, VmConfigErrorKind.DuplicateKey, key);
                seen |= bit;
                if (bit == KeyBalloonMove)
                {
                    // Checked when the VMs exist (kernel/Devices/BalloonPolicy.cs).
                    if (value.IsEmpty) return Fail(ref error, VmConfigErrorKind.EmptyValue, key);
                    hv.BalloonMove = value;
                    continue;
                }
                bool ok = bit == KeySlice ? ParseNumber(v, 1, 1000, out hv.SliceMs) : ParseNumber(v, 1, 16, out hv.VmidBits);
                if (!ok) return Fail(ref error, VmConfigErrorKind.BadNumber, value);
            }
        }

        private static int VmKeyBit(ReadOnlySpan<byte> key)
        {
            if (Fdt.BytesEqual(key, "mem")) return KeyMem;
            if (Fdt.BytesEqual(key, "image")) return KeyImage;
            if (Fdt.BytesEqual(key, "initrd")) return KeyInitrd;
            if (Fdt.BytesEqual(key, "args")) return KeyArgs;
            if (Fdt.BytesEqual(key, "kind")) return KeyKind;
            if (Fdt.BytesEqual(key, "paging")) return KeyPaging;
            if (Fdt.BytesEqual(key, "balloon")) return KeyBalloon;
            if (Fdt.BytesEqual(key, "cpus")) return KeyCpus;
            if (Fdt.BytesEqual(key, "boot_balloon")) return KeyBootBalloon;
            if (Fdt.BytesEqual(key, "resets")) return KeyResets;
            if (Fdt.BytesEqual(key, "fault_around")) return KeyFaultAround;
            if (Fdt.BytesEqual(key, "hv_counter")) return KeyHvCounter;
            if (Fdt.BytesEqual(key, "backing")) return KeyBacking;
            return 0;
        }

        private static bool Fail(ref VmConfigError error, VmConfigErrorKind kind, TextRange token)
        {
            error.Kind = kind;
            error.Token = token;
            return false;
        }

        private static void Report(ref VmConfigResult result, Span<VmConfigError> errors, in VmConfigError error)
        {
            if (result.ErrorCount < errors.Length) errors[result.ErrorCount] = error;
            result.ErrorCount++;
        }

        // Digits with an optional K, M or G (binary units), a multiple of the page size.
        private static bool ParseSize(ReadOnlySpan<byte> v, out ulong bytes)
        {
            bytes = 0;
            int digits = 0;
            ulong value = 0;
            while (digits < v.Length && v[digits] >= (byte)'0' && v[digits] <= (byte)'9')
            {
                if (value > (ulong.MaxValue - 9) / 10) return false;
                value = value * 10 + (ulong)(v[digits] - '0');
                digits++;
            }
            if (digits == 0 || v.Length > digits + 1) return false;
            int shift = 0;
            if (v.Length == digits + 1)
            {
                byte unit = v[digits];
                if (unit == (byte)'K' || unit == (byte)'k') shift = 10;
                else if (unit == (byte)'M' || unit == (byte)'m') shift = 20;
                else if (unit == (byte)'G' || unit == (byte)'g') shift = 30;
                else return false;
            }
            if (value > ulong.MaxValue >> shift) return false;
            value <<= shift;
            if ((value & (PageSize - 1)) != 0) return false;
            bytes = value;
            return true;
        }

        private static bool ParseNumber(ReadOnlySpan<byte> v, int min, int max, out int number)
        {
            number = 0;
            if (v.Length == 0 || v.Length > 9) return false;   // 9 digits cannot overflow an int
            for (int i = 0; i < v.Length; i++)
            {
                if (v[i] < (byte)'0' || v[i] > (byte)'9') return false;
                number = number * 10 + (v[i] - '0');
            }
            return number >= min && number <= max;
        }

        private static bool IsValidName(ReadOnlySpan<byte> text, int start, int length)
        {
            if (length < 1 || length > MaxNameLength) return false;
            for (int i = start; i < start + length; i++)
            {
                byte c = text[i];
                bool ok = (c >= (byte)'a' && c <= (byte)'z') || (c >= (byte)'0' && c <= (byte)'9') || c == (byte)'_' || c == (byte)'-';
                if (!ok) return false;
            }
            return true;
        }

        private static bool NameTaken(ReadOnlySpan<byte> text, ReadOnlySpan<VmSpec> accepted, TextRange name)
        {
            ReadOnlySpan<byte> wanted = name.Of(text);
            for (int i = 0; i < accepted.Length; i++)
            {
                ReadOnlySpan<byte> other = accepted[i].Name.Of(text);
                int j = 0;
                while (j < other.Length && j < wanted.Length && other[j] == wanted[j]) j++;
                if (j == other.Length && j == wanted.Length) return true;
            }
            return false;
        }

        private static bool IsWord(ReadOnlySpan<byte> text, int start, int length, string word) =>
            Fdt.BytesEqual(text.Slice(start, length), word);

        private static bool ContainsByte(ReadOnlySpan<byte> text, int start, int length, byte b)
        {
            for (int i = start; i < start + length; i++) if (text[i] == b) return true;
            return false;
        }

        private static bool IsSpace(byte c) => c == (byte)' ' || c == (byte)'\t';

        // Walks one line [Pos, End) of the text.
        private ref struct Cursor
        {
            public ReadOnlySpan<byte> Text;
            public int Pos;
            public int End;

            public Cursor(ReadOnlySpan<byte> text, int start, int end) { Text = text; Pos = start; End = end; }

            public bool AtEndOrComment => Pos >= End || Text[Pos] == (byte)'#';

            public void SkipSpaces()
            {
                while (Pos < End && IsSpace(Text[Pos])) Pos++;
            }

            // Moves over one word; returns its length.
            public int SkipWord()
            {
                int start = Pos;
                while (Pos < End && !IsSpace(Text[Pos])) Pos++;
                return Pos - start;
            }

            // key=value, key="value with spaces". The range of a quoted value
            // excludes the quotes. There are no escapes: a value cannot hold '"'.
            public bool ReadKeyValue(out TextRange key, out TextRange value, ref VmConfigError error)
            {
                value = default;
                int keyStart = Pos;
                while (Pos < End && !IsSpace(Text[Pos]) && Text[Pos] != (byte)'=') Pos++;
                key = new TextRange(keyStart, Pos - keyStart);
                if (Pos >= End || Text[Pos] != (byte)'=' || key.Length == 0)
                {
                    SkipWord();
                    return Fail(ref error, VmConfigErrorKind.ExpectedKeyValue, new TextRange(keyStart, Pos - keyStart));
                }
                Pos++;   // '='

                if (Pos < End && Text[Pos] == (byte)'"')
                {
                    int quote = Pos;
                    Pos++;
                    int valueStart = Pos;
                    while (Pos < End && Text[Pos] != (byte)'"') Pos++;
                    if (Pos >= End) return Fail(ref error, VmConfigErrorKind.UnterminatedQuote, new TextRange(quote, End - quote));
                    value = new TextRange(valueStart, Pos - valueStart);
                    Pos++;   // closing '"'
                    if (Pos < End && !IsSpace(Text[Pos]))
                    {
                        int garbage = Pos;
                        SkipWord();
                        return Fail(ref error, VmConfigErrorKind.TrailingGarbage, new TextRange(garbage, Pos - garbage));
                    }
                    return true;
                }

                int start = Pos;
                SkipWord();
                value = new TextRange(start, Pos - start);
                if (ContainsByte(Text, start, value.Length, (byte)'"')) return Fail(ref error, VmConfigErrorKind.StrayQuote, value);
                return true;
            }
        }
    }
}
