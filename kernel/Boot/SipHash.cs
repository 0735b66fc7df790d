using System;

namespace Hypervisor.Boot
{
    // SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed hash with a 128-bit
    // key and a 64-bit result, designed as a pseudorandom function: without
    // the key its outputs cannot be told from random numbers or predicted
    // from one another. GuestSeeds uses it to turn the firmware's entropy
    // into a different seed for every VM and every reset.
    public static class SipHash
    {
        public static ulong Hash24(ulong k0, ulong k1, ReadOnlySpan<byte> message)
        {
            ulong v0 = k0 ^ 0x736f6d6570736575, v1 = k1 ^ 0x646f72616e646f6d;
            ulong v2 = k0 ^ 0x6c7967656e657261, v3 = k1 ^ 0x7465646279746573;
            int whole = message.Length & ~7;
            for (int i = 0; i < whole; i += 8)
            {
                ulong m = LittleEndian(message, i, 8);
                v3 ^= m;
                Round(ref v0, ref v1, ref v2, ref v3);
                Round(ref v0, ref v1, ref v2, ref v3);
                v0 ^= m;
            }
            // The last word: the leftover bytes, and the length in its top byte.
            ulong last = (ulong)(message.Length & 0xff) << 56 | LittleEndian(message, whole, message.Length - whole);
            v3 ^= last;
            Round(ref v0, ref v1, ref v2, ref v3);
            Round(ref v0, ref v1, ref v2, ref v3);
            v0 ^= last;
            v2 ^= 0xff;
            for (int i = 0; i < 4; i++) Round(ref v0, ref v1, ref v2, ref v3);
            return v0 ^ v1 ^ v2 ^ v3;
        }

        private static void Round(ref ulong v0, ref ulong v1, ref ulong v2, ref ulong v3)
        {
            v0 += v1; v1 = Rotl(v1, 13); v1 ^= v0; v0 = Rotl(v0, 32);
            v2 += v3; v3 = Rotl(v3, 16); v3 ^= v2;
            v0 += v3; v3 = Rotl(v3, 21); v3 ^= v0;
            v2 += v1; v1 = Rotl(v1, 17); v1 ^= v2; v2 = Rotl(v2, 32);
        }

        private static ulong Rotl(ulong x, int bits) => x << bits | x >> (64 - bits);

        private static ulong LittleEndian(ReadOnlySpan<byte> bytes, int at, int count)
        {
            ulong value = 0;
            for (int i = 0; i < count; i++) value |= (ulong)bytes[at + i] << (8 * i);
            return value;
        }
    }
}
