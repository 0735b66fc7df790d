using Hypervisor.Arch;
using Xunit;

namespace Hypervisor.Tests.Unit
{
    // Where an injected exception lands in the guest's vector table, and how
    // far a trapped instruction is stepped over.
    public class ExceptionVectorsTests
    {
        [Theory]
        [InlineData(0x3c4UL, 0x000UL)]   // EL1t, DAIF masked
        [InlineData(0x3c5UL, 0x200UL)]   // EL1h
        [InlineData(0x000UL, 0x400UL)]   // EL0t, AArch64
        [InlineData(0x010UL, 0x600UL)]   // AArch32 User (EL0)
        [InlineData(0x030UL, 0x600UL)]   // AArch32 User, Thumb (T bit)
        [InlineData(0x1d0UL, 0x600UL)]   // AArch32 User with A, I, F masked
        public void SynchronousVectorOffsetFollowsTheInterruptedState(ulong spsr, ulong offset)
        {
            Assert.Equal(offset, ExceptionVectors.SyncOffset(spsr));
        }

        [Theory]
        [InlineData(0x000UL, true)]
        [InlineData(0x010UL, true)]
        [InlineData(0x3c4UL, false)]
        [InlineData(0x3c5UL, false)]
        public void El0IsRecognisedInBothExecutionStates(ulong spsr, bool el0)
        {
            Assert.Equal(el0, ExceptionVectors.FromEl0(spsr));
        }

        [Fact]
        public void InstructionLengthFollowsTheIlBit()
        {
            ulong wfi32 = (ulong)ExceptionClass.WfiWfe << 26 | 1UL << 25;   // A64 or A32 WFI
            ulong wfi16 = (ulong)ExceptionClass.WfiWfe << 26;               // T32 16-bit WFI
            Assert.Equal(4UL, ExceptionVectors.InstructionLength(wfi32));
            Assert.Equal(2UL, ExceptionVectors.InstructionLength(wfi16));
        }
    }
}
