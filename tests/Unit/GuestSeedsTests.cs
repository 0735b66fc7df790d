using System;
using System.Collections.Generic;
using System.Linq;
using Hypervisor.Boot;
using Xunit;

namespace Hypervisor.Tests.Unit
{
    public class GuestSeedsTests
    {
        private static readonly byte[] FirmwareSeed = Enumerable.Range(0, 32).Select(i => (byte)(i * 7 + 3)).ToArray();

        private static GuestSeeds Host(byte[] seed = null, ulong kaslr = 0x1234, ulong rndr = 0, ulong counter = 99) =>
            GuestSeeds.Absorb(seed ?? FirmwareSeed, kaslr, rndr, counter);

        private static string Rng(GuestSeeds seeds, int vm, ulong resets)
        {
            var bytes = new byte[GuestSeeds.RngSeedBytes];
            seeds.RngSeed(vm, resets, bytes);
            return Convert.ToHexString(bytes);
        }

        // No two VMs, and no two boots of one VM, share a seed: a guest that
        // learnt its own could otherwise predict another's random numbers.
        [Fact]
        public void EveryVmAndEveryResetGetsItsOwnSeeds()
        {
            GuestSeeds seeds = Host();
            var rng = new HashSet<string>();
            var kaslr = new HashSet<ulong>();
            for (int vm = 0; vm < 16; vm++)
                for (ulong resets = 0; resets < 4; resets++)
                {
                    Assert.True(rng.Add(Rng(seeds, vm, resets)));
                    Assert.True(kaslr.Add(seeds.KaslrSeed(vm, resets)));
                }
            // Within one seed, the 8-byte words differ too (not one word repeated).
            string one = Rng(seeds, 0, 0);
            Assert.Equal(4, Enumerable.Range(0, 4).Select(i => one.Substring(i * 16, 16)).Distinct().Count());
        }

        // The same VM and reset count give the same seed (the key is fixed at
        // boot), and a different boot secret gives different seeds: each
        // source of entropy reaches the key.
        [Fact]
        public void SeedsFollowTheBootSecret()
        {
            Assert.Equal(Rng(Host(), 3, 1), Rng(Host(), 3, 1));
            var otherSeed = (byte[])FirmwareSeed.Clone();
            otherSeed[31] ^= 1;
            string reference = Rng(Host(), 3, 1);
            Assert.NotEqual(reference, Rng(Host(seed: otherSeed), 3, 1));
            Assert.NotEqual(reference, Rng(Host(kaslr: 0x1235), 3, 1));
            Assert.NotEqual(reference, Rng(Host(rndr: 5), 3, 1));
            Assert.NotEqual(reference, Rng(Host(counter: 100), 3, 1));
            Assert.NotEqual(Host().KaslrSeed(3, 1), Host(seed: otherSeed).KaslrSeed(3, 1));
        }

        [Fact]
        public void SourcesSayWhereTheEntropyCameFrom()
        {
            Assert.Equal(EntropySource.FirmwareRngSeed | EntropySource.FirmwareKaslrSeed, Host().Sources);
            Assert.Equal(EntropySource.Rndr, GuestSeeds.Absorb(default, 0, 42, 1).Sources);
            GuestSeeds counterOnly = GuestSeeds.Absorb(default, 0, 0, 1);
            Assert.Equal(EntropySource.None, counterOnly.Sources);
            Assert.False(counterOnly.Unpredictable);
            Assert.True(Host().Unpredictable);
        }

        // Linux reads kaslr-seed = 0 as "no seed" (and leaves KASLR off).
        [Fact]
        public void KaslrSeedIsNeverZero()
        {
            GuestSeeds seeds = GuestSeeds.Absorb(default, 0, 0, 0);
            for (int vm = 0; vm < 64; vm++) Assert.NotEqual(0UL, seeds.KaslrSeed(vm, 0));
        }
    }
}
