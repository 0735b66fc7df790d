using System;
using Hypervisor.Arch;

namespace Guest
{
    // Output through the PL011 at 0x09000000 that the hypervisor emulates: every
    // store here is a stage-2 data abort that the hypervisor decodes and completes.
    public static class Console
    {
        public const ulong UartBase = 0x09000000;

        public static void Put(char c) => Mmio.Write32(UartBase, c);

        // A received byte, or -1 (FR.RXFE set: nothing typed for this VM).
        public static int TryGet()
        {
            if ((Mmio.Read32(UartBase + 0x18) & (1 << 4)) != 0) return -1;
            return (int)(Mmio.Read32(UartBase) & 0xff);
        }

        public static void Write(string s)
        {
            for (int i = 0; i < s.Length; i++) Put(s[i]);
        }

        public static void Write(ReadOnlySpan<byte> s)
        {
            for (int i = 0; i < s.Length; i++) Put((char)s[i]);
        }

        public static void Line(string s) { Write(s); Put('\n'); }

        public static void Dec(ulong v)
        {
            Span<byte> d = stackalloc byte[20];
            int n = 0;
            do { d[n++] = (byte)('0' + v % 10); v /= 10; } while (v != 0);
            while (n > 0) Put((char)d[--n]);
        }

        public static void SignedDec(long v)
        {
            if (v < 0) { Put('-'); Dec((ulong)(-v)); } else Dec((ulong)v);
        }

        public static void Hex(ulong v)
        {
            Write("0x");
            bool started = false;
            for (int shift = 60; shift >= 0; shift -= 4)
            {
                uint nib = (uint)(v >> shift) & 0xf;
                if (nib != 0 || started || shift == 0)
                {
                    started = true;
                    Put((char)(nib < 10 ? '0' + nib : 'a' + nib - 10));
                }
            }
        }
    }
}
