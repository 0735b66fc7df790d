using System.IO;
using System.Text.RegularExpressions;
using Hypervisor.Arch;
using Hypervisor.Tests.Support;
using Xunit;

namespace Hypervisor.Tests.Unit
{
    // The vectors (boot/vectors.s, offsets in boot/asm.inc) and C# (TrapFrame)
    // must agree on every field of the register frame, byte for byte.
    public unsafe class TrapFrameLayoutTests
    {
        private static long AsmConstant(string name)
        {
            string text = File.ReadAllText(Repo.Path("boot", "asm.inc"));
            var m = Regex.Match(text, @"\.equ\s+" + name + @",\s*(\d+)");
            Assert.True(m.Success, name + " not in boot/asm.inc");
            return long.Parse(m.Groups[1].Value);
        }

        [Fact]
        public void CSharpFrameMatchesTheVectorsOffsets()
        {
            TrapFrame f = default;
            byte* b = (byte*)&f;
            Assert.Equal(AsmConstant("FRAME_ELR"), (byte*)&f.Elr - b);
            Assert.Equal(AsmConstant("FRAME_SPSR"), (byte*)&f.Spsr - b);
            Assert.Equal(AsmConstant("FRAME_ESR"), (byte*)&f.Esr - b);
            Assert.Equal(AsmConstant("FRAME_FAR"), (byte*)&f.Far - b);
            Assert.Equal(AsmConstant("FRAME_HPFAR"), (byte*)&f.Hpfar - b);
            Assert.Equal(AsmConstant("FRAME_SP_EL0"), (byte*)&f.SpEl0 - b);
            Assert.Equal(AsmConstant("FRAME_Q16"), (byte*)f.Q16 - b);
            Assert.Equal(AsmConstant("FRAME_Q16") + 16, (byte*)f.Q17 - b);
            Assert.Equal(AsmConstant("FRAME_SIZE"), sizeof(TrapFrame));
            Assert.Equal(TrapFrame.Size, sizeof(TrapFrame));
        }
    }
}
