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
            Assert.Equal(AsmConstant("FRAME_Q16"), (byte*)f.Q16 - b);
            Assert.Equal(AsmConstant("FRAME_Q16") + 16, (byte*)f.Q17 - b);
            Assert.Equal(AsmConstant("FRAME_HV_STACK"), (byte*)&f.HvStack - b);
            Assert.Equal(AsmConstant("FRAME_SIZE"), sizeof(TrapFrame));
            Assert.Equal(TrapFrame.Size, sizeof(TrapFrame));
        }

        // A guest's frame is where SP_EL2 points while it runs (boot/vectors.s),
        // and SP must stay 16-byte aligned: the frame's size keeps it so, and
        // q16/q17, stored with one STP of Q registers, sit on a 16-byte boundary.
        [Fact]
        public void TheFrameKeepsTheStackPointerAligned()
        {
            Assert.Equal(0, AsmConstant("FRAME_SIZE") % 16);
            Assert.Equal(0, AsmConstant("FRAME_Q16") % 16);
            Assert.True(AsmConstant("FRAME_HV_STACK") + 8 <= AsmConstant("FRAME_SIZE"));
        }

        // Every lower-EL vector saves into the frame SP_EL2 points at, with no
        // room taken from it first; every current-EL one pushes a frame on the
        // stack it runs on. A `sub sp` in the wrong place would save a guest's
        // registers below its vCPU's frame, over the rest of its context.
        [Fact]
        public void OnlyTheHypervisorsOwnVectorsPushAFrame()
        {
            string text = File.ReadAllText(Repo.Path("boot", "vectors.s"));
            var macro = Regex.Match(text, @"\.macro vector kind(.*?)\.endm", RegexOptions.Singleline);
            Assert.True(macro.Success);
            Assert.Matches(@"\.if \\kind < 8\s+sub\s+sp, sp, #FRAME_SIZE\s+\.endif", macro.Groups[1].Value);
            var exit = Regex.Match(text, @"guest_exit:(.*?)guest_resume:", RegexOptions.Singleline).Groups[1].Value;
            Assert.Contains("ldr     x2, [sp, #FRAME_HV_STACK]", exit);
            Assert.Contains("mov     sp, x0", exit);
            Assert.DoesNotContain("add     sp", Regex.Match(text, @"guest_resume:(.*?)eret", RegexOptions.Singleline).Groups[1].Value);
        }

        // boot/context.s saves EL1 registers at the offsets it lists; the
        // C# El1State fields must be in the same order.
        [Fact]
        public void El1StateMatchesContextSaveOrder()
        {
            string text = File.ReadAllText(Repo.Path("boot", "context.s"));
            // Two registers a line: "\op first, second, offset-of-first".
            var rows = new System.Collections.Generic.List<(string Reg, long Offset)>();
            foreach (Match m in Regex.Matches(text, @"\\op\s+(\w+),\s*(\w+),\s*(\d+)"))
            {
                rows.Add((m.Groups[1].Value, long.Parse(m.Groups[3].Value)));
                rows.Add((m.Groups[2].Value, long.Parse(m.Groups[3].Value) + 8));
            }
            string[] fields = { "Sctlr", "Tcr", "Ttbr0", "Ttbr1", "Mair", "Amair", "Vbar", "Contextidr", "TpidrEl1",
                                "TpidrEl0", "TpidrroEl0", "SpEl1", "ElrEl1", "SpsrEl1", "EsrEl1", "FarEl1", "Afsr0", "Afsr1",
                                "Par", "Cpacr", "Cntkctl", "CntvCtl", "CntvCval", "Csselr", "Mdscr", "SpEl0" };
            Assert.Equal(fields.Length, rows.Count);
            Assert.Equal(fields.Length * 8, sizeof(Hypervisor.Vm.El1State));
            for (int i = 0; i < rows.Count; i++)
            {
                var field = typeof(Hypervisor.Vm.El1State).GetField(fields[i]);
                Assert.NotNull(field);
                long offset = (long)System.Runtime.InteropServices.Marshal.OffsetOf<Hypervisor.Vm.El1State>(fields[i]);
                Assert.Equal(rows[i].Offset, offset);
                string reg = rows[i].Reg.Replace("_", "").ToLowerInvariant();
                Assert.StartsWith(fields[i].ToLowerInvariant().Replace("el1", "").Replace("el0", ""), reg);
            }
        }
    }
}
