using System.Text;
using Hypervisor.Boot;
using Xunit;

namespace Hypervisor.Tests.Unit
{
    public class BootArgsTests
    {
        private static string Get(string args, string key, out bool found) =>
            Encoding.ASCII.GetString(BootArgs.Get(Encoding.ASCII.GetBytes(args), key, out found));

        [Theory]
        [InlineData("fault=null", "fault", "null")]
        [InlineData("  a=1   fault=undef b", "fault", "undef")]
        [InlineData("faulty=x fault=y", "fault", "y")]
        [InlineData("fault= x", "fault", "")]
        public void FindsValues(string args, string key, string value)
        {
            Assert.Equal(value, Get(args, key, out bool found));
            Assert.True(found);
        }

        [Theory]
        [InlineData("", "fault")]
        [InlineData("faulty=null", "fault")]
        [InlineData("afault=null", "fault")]
        [InlineData("fault", "faul")]
        public void MissesOthers(string args, string key)
        {
            Get(args, key, out bool found);
            Assert.False(found);
        }

        [Fact]
        public void BareKeyIsFoundWithEmptyValue()
        {
            Assert.Equal("", Get("quiet debug", "debug", out bool found));
            Assert.True(found);
            Assert.True(BootArgs.Is(Encoding.ASCII.GetBytes("x fault=null"), "fault", "null"));
            Assert.False(BootArgs.Is(Encoding.ASCII.GetBytes("x fault=nullx"), "fault", "null"));
        }
    }
}
