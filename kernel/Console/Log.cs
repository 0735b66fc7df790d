using System;

namespace Hypervisor.Console
{
    // Serial-line output without allocation: text, decimal and hex pieces that
    // callers put together into lines. Hypervisor lines start with "[hv] ",
    // machine-readable figures with "STAT " (the serial-line contract in README).
    public static class Log
    {
        public static void Write(string text)
        {
            for (int i = 0; i < text.Length; i++) Put(text[i]);
        }

        public static void Write(ReadOnlySpan<byte> ascii)
        {
            for (int i = 0; i < ascii.Length; i++) Put((char)ascii[i]);
        }

        public static void Line(string text)
        {
            Write(text);
            NewLine();
        }

        public static void NewLine() => Pl011.Put((byte)'\n');

        public static void Dec(ulong value)
        {
            Span<byte> digits = stackalloc byte[20];
            int n = 0;
            do { digits[n++] = (byte)('0' + value % 10); value /= 10; } while (value != 0);
            while (n > 0) Pl011.Put(digits[--n]);
        }

        // 0x followed by `digits` hex digits (16 shows a whole register).
        public static void Hex(ulong value, int digits = 16)
        {
            Write("0x");
            for (int shift = (digits - 1) * 4; shift >= 0; shift -= 4)
            {
                uint nibble = (uint)(value >> shift) & 0xf;
                Pl011.Put((byte)(nibble < 10 ? '0' + nibble : 'a' + nibble - 10));
            }
        }

        // A size in whole MiB when it is one, else in KiB.
        public static void Size(ulong bytes)
        {
            if ((bytes & 0xfffff) == 0) { Dec(bytes >> 20); Write("MiB"); }
            else { Dec(bytes >> 10); Write("KiB"); }
        }

        // key=value, with a leading space: for STAT lines.
        public static void Stat(string key, ulong value)
        {
            Put(' ');
            Write(key);
            Put('=');
            Dec(value);
        }

        private static void Put(char c)
        {
            if (c == '\n') { Pl011.Put((byte)'\n'); return; }
            Pl011.Put(c < 128 ? (byte)c : (byte)'?');
        }
    }
}
