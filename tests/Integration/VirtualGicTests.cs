using Hypervisor.Tests.Support;
using Xunit;

namespace Hypervisor.Tests.Integration
{
    // The virtual GIC against a hostile guest: SGIs routed every way (only
    // those naming this vCPU may become pending), thousands of random reads
    // and writes over its distributor and redistributor (8 and 32 bits, any
    // offset, reserved space too) and random values in the SGI registers. Each completes or aborts; that VM and the
    // one beside it carry on, and nothing panics.
    [Trait("Category", "Integration")]
    public class VirtualGicTests
    {
        [Fact]
        public void RandomGicAccessesAffectOnlyThatVm()
        {
            string conf = GuestConfig.Write(
                "vm f mem=32M image=$ELF args=\"role=gicfuzz\"\n" +
                "vm g mem=32M image=$ELF args=\"tests=uart,demand,walk\"\n");
            var r = Qemu.Run(new[] { conf });
            string verdict = r.Require("[f] TEST gicfuzz PASS");
            Assert.Contains("accesses=6000", verdict);
            Assert.Contains("sgi_writes=3000 sgi_routing=self-only", verdict);
            foreach (var t in new[] { "uart", "demand", "walk" }) r.AssertPasses("g", t);
            Assert.Null(r.Line("[hv] PANIC"));
            Assert.Equal(r.Stat("frames_free_start"), r.Stat("frames_free_end"));
        }
    }
}
