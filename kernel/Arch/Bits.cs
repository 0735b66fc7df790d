namespace Hypervisor.Arch
{
    // Bit tricks the kernel's corelib lacks (it has no
    // System.Numerics.BitOperations).
    public static class Bits
    {
        // Index of the lowest 1 bit of a non-zero word, by halving: six steps
        // whatever the word, where testing bit by bit takes one step per
        // position below it (the vGIC's scan for a pending timer, INTID 27,
        // took 28). With `x &= x - 1` between calls, a loop visits only the
        // set bits.
        public static int LowestSetBit(ulong x)
        {
            int n = 0;
            if ((x & 0xFFFFFFFFUL) == 0) { n += 32; x >>= 32; }
            if ((x & 0xFFFFUL) == 0) { n += 16; x >>= 16; }
            if ((x & 0xFFUL) == 0) { n += 8; x >>= 8; }
            if ((x & 0xFUL) == 0) { n += 4; x >>= 4; }
            if ((x & 0x3UL) == 0) { n += 2; x >>= 2; }
            if ((x & 0x1UL) == 0) { n += 1; }
            return n;
        }
    }
}
