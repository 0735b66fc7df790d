using System;
using System.Globalization;
using System.IO;
using System.Text.RegularExpressions;
using Hypervisor.Tests.Support;
using Xunit;

namespace Hypervisor.Tests.Unit
{
    // The EL2 controls every CPU sets in assembly before any C# runs
    // (boot/asm.inc), bit by bit: what they trap for guests is what the ID
    // registers hide (kernel/Arch/IdRegisters.cs).
    public class EL2BootRegistersTests
    {
        private static ulong Constant(string name)
        {
            string text = File.ReadAllText(Repo.Path("boot", "asm.inc"));
            Match m = Regex.Match(text, @"^\.equ\s+" + name + @",\s*0x([0-9a-fA-F]+)", RegexOptions.Multiline);
            Assert.True(m.Success, name + " not found in boot/asm.inc");
            return ulong.Parse(m.Groups[1].Value, NumberStyles.HexNumber);
        }

        private static bool Bit(ulong value, int n) => ((value >> n) & 1) != 0;

        [Fact]
        public void CptrTrapsSveSmeAndTraceButNotFpSimd()
        {
            ulong cptr = Constant("CPTR_EL2_BOOT");
            Assert.False(Bit(cptr, 10), "TFP: FP/SIMD must not trap (guests and the compiled C# use it)");
            Assert.True(Bit(cptr, 8), "TZ: SVE is hidden, its instructions must trap");
            Assert.True(Bit(cptr, 12), "TSM: SME is hidden, its instructions must trap");
            Assert.True(Bit(cptr, 20), "TTA: trace is hidden, the trace unit's registers must trap");
            Assert.True(Bit(cptr, 13), "RES1");
            for (int n = 0; n <= 9; n++) if (n != 8) Assert.True(Bit(cptr, n), $"RES1 bit {n}");
            Assert.False(Bit(cptr, 31), "TCPAC: CPACR_EL1 is the guest's own");
            Assert.Equal(0UL, cptr & ~0x1033ffUL);   // nothing else: TAM is El2Setup's, where AMU exists
        }

        [Fact]
        public void EveryCpuSetsItBeforeCSharp()
        {
            string text = File.ReadAllText(Repo.Path("boot", "asm.inc"));
            Assert.Matches(@"\.macro cpu_fp_and_vectors\s+ldr\s+x1, =CPTR_EL2_BOOT\s+msr\s+cptr_el2, x1", text);
            foreach (string file in new[] { "head.s", "smp.s" })
                Assert.Contains("cpu_fp_and_vectors", File.ReadAllText(Repo.Path("boot", file)));
        }
    }
}
