using Hypervisor.Paging;
using Xunit;

namespace Hypervisor.Tests.Unit
{
    // The SCTLR_EL1/TCR_EL1 values shadow and direct paging accept with the
    // MMU on (kernel/Paging/WalkRules.cs).
    public class WalkRulesTests
    {
        // The C# guest's: M, C, I; T0SZ 16, write-back walks, inner
        // shareable, 4 KiB, TTBR1's half off, 40-bit IPS.
        private const ulong Sctlr = 0x30d00800 | 1 | (1 << 2) | (1 << 12);
        private const ulong Tcr = 16 | (1 << 8) | (1 << 10) | (3 << 12) | (1UL << 23) | (2UL << 32);
        // Linux's: both halves on, 4 KiB, write-back, inner shareable.
        private const ulong LinuxTcr = 0x0000_0032_B559_3519;

        [Fact]
        public void WellBehavedGuestsPass()
        {
            Assert.Null(WalkRules.Refusal(Sctlr, Tcr));
            Assert.Null(WalkRules.Refusal(Sctlr, LinuxTcr));
        }

        [Theory]
        [InlineData(1UL << 25, 0UL, "EE")]            // big-endian walks
        [InlineData(0UL, 1UL << 2, "C=0")]             // walks not cacheable
        public void SctlrFieldsThatChangeWalksAreRefused(ulong set, ulong clear, string named)
        {
            Assert.Contains(named, WalkRules.Refusal((Sctlr | set) & ~clear, Tcr));
        }

        [Theory]
        [InlineData(3UL << 8, 0UL)]                    // IRGN0 non-cacheable
        [InlineData(3UL << 10, 0UL)]                   // ORGN0 non-cacheable
        [InlineData(3UL << 12, 0UL)]                   // SH0 non-shareable
        [InlineData(3UL << 12, 1UL << 12)]             // SH0 reserved
        [InlineData(0UL, 1UL << 14)]                   // TG0 64 KiB
        [InlineData(0UL, 2UL << 14)]                   // TG0 16 KiB
        [InlineData(3UL << 24, 0UL)]                   // IRGN1 (upper half on in Linux's)
        [InlineData(3UL << 30, 1UL << 30)]             // TG1 16 KiB
        [InlineData(0UL, 1UL << 59)]                   // DS: LPA2's descriptor format
        public void TcrFieldsThatChangeWalksAreRefused(ulong clear, ulong set)
        {
            Assert.NotNull(WalkRules.Refusal(Sctlr, (LinuxTcr & ~clear) | set));
        }

        [Fact]
        public void FieldsThatChangeNoEntryAreTaken()
        {
            Assert.Null(WalkRules.Refusal(Sctlr | (1UL << 24), Tcr));               // E0E
            Assert.Null(WalkRules.Refusal(Sctlr, Tcr | (1UL << 37) | (1UL << 38))); // TBI0, TBI1
            Assert.Null(WalkRules.Refusal(Sctlr, Tcr | (1UL << 41) | (1UL << 42))); // HPD0, HPD1
        }

        [Fact]
        public void ADisabledHalfAndAnMmuOffAreNotJudged()
        {
            Assert.Null(WalkRules.Refusal(Sctlr, Tcr & ~(0xFFUL << 24)));           // EPD1: TTBR1's fields unused
            Assert.Null(WalkRules.Refusal((Sctlr | (1UL << 25)) & ~1UL, 0));        // MMU off: nothing walks
        }
    }
}
