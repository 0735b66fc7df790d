using Hypervisor.Tests.Support;
using Xunit;

namespace Hypervisor.Tests.Integration
{
    // kernel/Vm/El2Clock.cs: the hypervisor's own instructions per VM, from a
    // PMU counter that counts at EL2 only (QEMU counts instructions only
    // under -icount, hence --icount here).
    [Trait("Category", "Integration")]
    public class El2ClockTests
    {
        // A VM that computes 20 million rounds (about 140 million guest
        // instructions) with few exits. Every exit costs the hypervisor at
        // least the bare round trip (98 instructions, docs/performance.md);
        // and if the counter counted the guest's instructions too, the total
        // would be in the hundreds of millions.
        [Fact]
        public void OnlyTheHypervisorsInstructionsAreCounted()
        {
            string conf = GuestConfig.Write("vm c mem=32M image=$ELF args=\"role=compute millions=20\"\n");
            var r = Qemu.Run(new[] { "--icount", conf }, timeoutSeconds: 120);
            r.AssertPasses("c", "compute");
            long el2 = r.Stat("el2_instructions"), exits = r.Stat("exits");
            Assert.True(el2 >= 98 * exits, $"el2_instructions={el2} for {exits} exits");
            Assert.True(el2 < 20_000_000, $"el2_instructions={el2}: the guest's own work counted?");
        }

        // A balloon VM's parts: the queue work contains its unmaps, flushes
        // and frees, and every part happened.
        [Fact]
        public void TheBalloonsPartsAddUp()
        {
            string conf = GuestConfig.Write("vm h mem=64M image=$ELF balloon=on args=\"role=balloonfuzz\"\n");
            var r = Qemu.Run(new[] { "--icount", conf }, timeoutSeconds: 120);
            r.AssertPasses("h", "balloon-hostile");
            long all = r.Stat("el2_instructions"), balloon = r.Stat("el2_balloon");
            long unmap = r.Stat("el2_balloon_unmap"), flush = r.Stat("el2_balloon_flush"), free = r.Stat("el2_balloon_free");
            Assert.True(unmap > 0 && flush > 0 && free > 0 && r.Stat("el2_faults") > 0);
            Assert.True(balloon > unmap + flush + free, $"el2_balloon={balloon} <= its parts {unmap}+{flush}+{free}");
            Assert.True(all > balloon + r.Stat("el2_faults"));
        }
    }
}
