using System;

namespace Hypervisor.Boot
{
    // Where the randomness a guest finds in its device tree comes from.
    [Flags]
    public enum EntropySource
    {
        None = 0,
        FirmwareRngSeed = 1,     // the host tree's /chosen/rng-seed
        FirmwareKaslrSeed = 2,   // the host tree's /chosen/kaslr-seed
        Rndr = 4,                // the CPU's random number instruction (FEAT_RNG)
    }

    // The seeds each guest is given in /chosen, as QEMU and firmware give
    // Linux on a real machine: rng-seed, from which Linux seeds its random
    // number generator before the first driver runs, and kaslr-seed, from
    // which it picks where its kernel lives. A guest without them starts
    // with an unseeded generator and its kernel at a known address; the
    // Debian kernel of the Linux kit also boots about 12% slower without
    // them, on plain QEMU as here (docs/performance.md).
    //
    // The hypervisor has one secret, taken once at boot from what the
    // firmware and the CPU offer (Absorb); every seed it hands out is
    // SipHash, keyed by that secret, of (VM, reset count, which word). So
    // no two VMs, and no two boots of one VM, get the same seed, and no VM
    // can work out another's from its own: that would mean finding the key
    // of a pseudorandom function from its outputs.
    public struct GuestSeeds
    {
        public const int RngSeedBytes = 32;   // as QEMU gives
        private const ulong KaslrWord = 0xffff_ffff;

        private ulong _k0, _k1;
        public EntropySource Sources;

        // The key: the firmware's seeds, the CPU's random number, a counter
        // reading, hashed (with fixed keys) into 128 bits. Under QEMU, and
        // with firmware that passes rng-seed, that is real entropy; with
        // none of them the counter alone is guessable, and Sources says so.
        public static GuestSeeds Absorb(ReadOnlySpan<byte> firmwareRngSeed, ulong firmwareKaslrSeed, ulong rndr, ulong counter)
        {
            GuestSeeds seeds = default;
            if (firmwareRngSeed.Length != 0) seeds.Sources |= EntropySource.FirmwareRngSeed;
            if (firmwareKaslrSeed != 0) seeds.Sources |= EntropySource.FirmwareKaslrSeed;
            if (rndr != 0) seeds.Sources |= EntropySource.Rndr;
            Span<byte> pool = stackalloc byte[40];
            Store(pool, 0, SipHash.Hash24(1, 2, firmwareRngSeed));
            Store(pool, 8, SipHash.Hash24(3, 4, firmwareRngSeed));
            Store(pool, 16, firmwareKaslrSeed);
            Store(pool, 24, rndr);
            Store(pool, 32, counter);
            seeds._k0 = SipHash.Hash24(5, 6, pool);
            seeds._k1 = SipHash.Hash24(7, 8, pool);
            return seeds;
        }

        // Real entropy went into the key (not the counter alone).
        public bool Unpredictable => Sources != EntropySource.None;

        public void RngSeed(int vm, ulong resets, Span<byte> seed)
        {
            for (int at = 0; at < seed.Length; at += 8)
            {
                ulong word = Word(vm, resets, (ulong)at / 8);
                for (int i = 0; i < 8 && at + i < seed.Length; i++) seed[at + i] = (byte)(word >> (8 * i));
            }
        }

        // Never 0: Linux reads a zero kaslr-seed as "no seed".
        public ulong KaslrSeed(int vm, ulong resets)
        {
            ulong seed = Word(vm, resets, KaslrWord);
            return seed != 0 ? seed : 1;
        }

        private ulong Word(int vm, ulong resets, ulong which)
        {
            Span<byte> message = stackalloc byte[24];
            Store(message, 0, (ulong)vm);
            Store(message, 8, resets);
            Store(message, 16, which);
            return SipHash.Hash24(_k0, _k1, message);
        }

        private static void Store(Span<byte> bytes, int at, ulong value)
        {
            for (int i = 0; i < 8; i++) bytes[at + i] = (byte)(value >> (8 * i));
        }
    }
}
