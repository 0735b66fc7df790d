using System.Text;
using Hypervisor.Monitor;
using Xunit;

namespace Hypervisor.Tests.Unit
{
    public class CommandLineTests
    {
        private static byte[] B(string s) => Encoding.ASCII.GetBytes(s);

        [Theory]
        [InlineData("balloon a 128M", 0, "balloon")]
        [InlineData("  balloon   a  128M ", 1, "a")]
        [InlineData("balloon a 128M", 2, "128M")]
        [InlineData("balloon a 128M", 3, "")]
        [InlineData("", 0, "")]
        public void SplitsWords(string line, int index, string word) =>
            Assert.Equal(word, Encoding.ASCII.GetString(CommandLine.Word(B(line), index)));

        [Theory]
        [InlineData("128M", 128UL << 20)]
        [InlineData("4k", 4096UL)]
        [InlineData("1G", 1UL << 30)]
        [InlineData("0", 0UL)]
        [InlineData("8192", 8192UL)]
        public void ParsesSizes(string text, ulong bytes)
        {
            Assert.True(CommandLine.TryParseSize(B(text), out ulong v));
            Assert.Equal(bytes, v);
        }

        [Theory]
        [InlineData("")]
        [InlineData("M")]
        [InlineData("12x")]
        [InlineData("100")]            // not a whole page
        [InlineData("-4K")]
        [InlineData("99999999999999G")]
        public void RejectsBadSizes(string text) => Assert.False(CommandLine.TryParseSize(B(text), out _));

        [Theory]
        [InlineData("0x8000005128", 0x8000005128UL)]
        [InlineData("ff", 0xffUL)]
        [InlineData("0XABC", 0xabcUL)]
        public void ParsesHex(string text, ulong value)
        {
            Assert.True(CommandLine.TryParseHex(B(text), out ulong v));
            Assert.Equal(value, v);
        }

        [Theory]
        [InlineData("")]
        [InlineData("0x")]
        [InlineData("0xg1")]
        [InlineData("12345678901234567")]
        public void RejectsBadHex(string text) => Assert.False(CommandLine.TryParseHex(B(text), out _));
    }
}
