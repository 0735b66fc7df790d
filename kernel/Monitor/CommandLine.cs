using System;

namespace Hypervisor.Monitor
{
    // Words and numbers of a monitor command line, without allocation.
    public static class CommandLine
    {
        // The index-th space-separated word, or an empty span.
        public static ReadOnlySpan<byte> Word(ReadOnlySpan<byte> line, int index)
        {
            int i = 0;
            for (int w = 0; ; w++)
            {
                while (i < line.Length && line[i] == ' ') i++;
                if (i == line.Length) return default;
                int start = i;
                while (i < line.Length && line[i] != ' ') i++;
                if (w == index) return line.Slice(start, i - start);
            }
        }

        // "0x1f", "1f" (hex) -> value. False on anything else or overflow.
        public static bool TryParseHex(ReadOnlySpan<byte> text, out ulong value)
        {
            value = 0;
            if (text.Length > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) text = text.Slice(2);
            if (text.Length == 0 || text.Length > 16) return false;
            for (int i = 0; i < text.Length; i++)
            {
                int d = HexDigit(text[i]);
                if (d < 0) return false;
                value = value << 4 | (uint)d;
            }
            return true;
        }

        // "128M", "4096K", "1G", "65536" (bytes) -> bytes. False on anything
        // else, on overflow, and on sizes that are not whole 4 KiB pages.
        public static bool TryParseSize(ReadOnlySpan<byte> text, out ulong bytes)
        {
            bytes = 0;
            if (text.Length == 0) return false;
            int shift = 0;
            byte last = text[text.Length - 1];
            if (last == 'K' || last == 'k') shift = 10;
            else if (last == 'M' || last == 'm') shift = 20;
            else if (last == 'G' || last == 'g') shift = 30;
            if (shift != 0) text = text.Slice(0, text.Length - 1);
            if (text.Length == 0 || text.Length > 12) return false;
            ulong n = 0;
            for (int i = 0; i < text.Length; i++)
            {
                if (text[i] < '0' || text[i] > '9') return false;
                n = n * 10 + (ulong)(text[i] - '0');
            }
            if (n > (ulong.MaxValue >> 30)) return false;
            bytes = n << shift;
            return (bytes & 0xfff) == 0;
        }

        private static int HexDigit(byte c)
        {
            if (c >= '0' && c <= '9') return c - '0';
            if (c >= 'a' && c <= 'f') return c - 'a' + 10;
            if (c >= 'A' && c <= 'F') return c - 'A' + 10;
            return -1;
        }
    }
}
