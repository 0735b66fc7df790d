using System;
using System.Linq;
using Hypervisor.Boot;
using Xunit;

namespace Hypervisor.Tests.Unit
{
    public class SipHashTests
    {
        // The key 00 01 .. 0f of the SipHash paper's test vectors.
        private const ulong K0 = 0x0706050403020100, K1 = 0x0f0e0d0c0b0a0908;

        private static byte[] Counting(int length) => Enumerable.Range(0, length).Select(i => (byte)i).ToArray();

        // The reference vectors for messages 00 01 .. (n-1): empty, one
        // whole word, the paper's worked example (15 bytes: a whole word and
        // a partial one) and the longest of the table.
        [Theory]
        [InlineData(0, 0x726fdb47dd0e0e31UL)]
        [InlineData(8, 0x93f5f5799a932462UL)]
        [InlineData(15, 0xa129ca6149be45e5UL)]
        [InlineData(63, 0x958a324ceb064572UL)]
        public void MatchesTheReferenceVectors(int length, ulong expected)
        {
            Assert.Equal(expected, SipHash.Hash24(K0, K1, Counting(length)));
        }

        [Fact]
        public void EveryKeyAndMessageBitMatters()
        {
            byte[] message = Counting(15);
            ulong reference = SipHash.Hash24(K0, K1, message);
            Assert.NotEqual(reference, SipHash.Hash24(K0 ^ 1, K1, message));
            Assert.NotEqual(reference, SipHash.Hash24(K0, K1 ^ (1UL << 63), message));
            for (int bit = 0; bit < message.Length * 8; bit++)
            {
                var flipped = (byte[])message.Clone();
                flipped[bit / 8] ^= (byte)(1 << (bit % 8));
                Assert.NotEqual(reference, SipHash.Hash24(K0, K1, flipped));
            }
            // A trailing zero byte is a different message (the length is hashed).
            Assert.NotEqual(reference, SipHash.Hash24(K0, K1, message.Concat(new byte[1]).ToArray()));
        }
    }
}
