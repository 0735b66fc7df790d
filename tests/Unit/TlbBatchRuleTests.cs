using System.Collections.Generic;
using Hypervisor.Mm;
using Xunit;

namespace Hypervisor.Tests.Unit
{
    // kernel/Mm/TlbBatchRule.cs decides which TLBIs a batch of unmaps gets.
    // A model TLB holds, for every page the VM touched, a stage-2 entry and a
    // combined stage-1+2 entry; the batch is played the way Tlb.cs plays it
    // (per-page TLBI IPAS2E1IS while the rule says so, then the rule's flush
    // at the end or when the buffer fills). Afterwards no unmapped page may be
    // reachable through either kind of entry: that is what a stale
    // translation would be, and QEMU would not show it.
    public class TlbBatchRuleTests
    {
        private sealed class ModelTlb
        {
            public readonly HashSet<ulong> Stage2 = new HashSet<ulong>();     // IPA -> PA entries
            public readonly HashSet<ulong> Combined = new HashSet<ulong>();   // VA -> PA entries, by the IPA they lead to
            public int Broadcasts;

            public void Touch(ulong ipa) { Stage2.Add(ipa); Combined.Add(ipa); }

            public void Ipas2e1is(ulong ipa) { Stage2.Remove(ipa); Broadcasts++; }
            public void Vmalle1is() { Combined.Clear(); Broadcasts++; }
            public void Vmalls12e1is() { Stage2.Clear(); Combined.Clear(); Broadcasts++; }

            public bool Reaches(ulong ipa) => Stage2.Contains(ipa) || Combined.Contains(ipa);
        }

        // Tlb.BatchIpa / Tlb.CompleteBatch, with the model in place of the CPU.
        private static void PlayBatch(ModelTlb tlb, IReadOnlyList<ulong> ipas, int flushEvery)
        {
            ulong pending = 0;
            foreach (ulong ipa in ipas)
            {
                pending++;
                if (TlbBatchRule.PerPage(pending)) tlb.Ipas2e1is(ipa);
                if (pending == (ulong)flushEvery) { Complete(tlb, pending); pending = 0; }
            }
            Complete(tlb, pending);
        }

        private static void Complete(ModelTlb tlb, ulong unmapped)
        {
            switch (TlbBatchRule.AtEnd(unmapped))
            {
                case BatchFlush.StageOne: tlb.Vmalle1is(); break;
                case BatchFlush.WholeVmid: tlb.Vmalls12e1is(); break;
            }
        }

        private static List<ulong> Pages(int count, ulong start = 0x4000_0000)
        {
            var list = new List<ulong>();
            for (int i = 0; i < count; i++) list.Add(start + (ulong)i * 4096);
            return list;
        }

        [Theory]
        [InlineData(1, 4096)]
        [InlineData(256, 4096)]          // a Linux inflate request
        [InlineData(511, 4096)]
        [InlineData(512, 4096)]
        [InlineData(513, 4096)]
        [InlineData(1024, 4096)]         // the C# balloon guest's request
        [InlineData(4096, 4096)]
        [InlineData(5000, 1000)]         // flushed mid-way when the frame buffer fills
        [InlineData(1500, 700)]
        public void NoUnmappedPageStaysReachable(int pages, int flushEvery)
        {
            var tlb = new ModelTlb();
            List<ulong> batch = Pages(pages);
            foreach (ulong ipa in batch) tlb.Touch(ipa);
            PlayBatch(tlb, batch, flushEvery);
            foreach (ulong ipa in batch) Assert.False(tlb.Reaches(ipa), $"page {ipa:x} still cached after a batch of {pages}");
        }

        // Below the limit the VM keeps the stage-2 entries of pages the batch
        // did not touch (no VMID-wide stage-2 flush); past it, one broadcast
        // replaces hundreds.
        [Fact]
        public void SmallBatchesSpareTheRestOfTheVmsStage2Entries()
        {
            var tlb = new ModelTlb();
            List<ulong> other = Pages(100, 0x5000_0000);
            foreach (ulong ipa in other) tlb.Touch(ipa);
            PlayBatch(tlb, Pages(256), 4096);
            Assert.All(other, ipa => Assert.Contains(ipa, tlb.Stage2));
            Assert.Equal(256 + 1, tlb.Broadcasts);
        }

        [Fact]
        public void LargeBatchesCostAtMostTheLimitPlusOneBroadcasts()
        {
            var tlb = new ModelTlb();
            PlayBatch(tlb, Pages(4096), 4096);
            Assert.Equal((int)TlbBatchRule.PerPageLimit + 1, tlb.Broadcasts);
            Assert.Equal(TlbBatchRule.PerPageLimit, TlbBatchRule.PerPageIssued(4096));
            Assert.Equal(200UL, TlbBatchRule.PerPageIssued(200));
        }

        // A run of pages at a time (VmTlb.UnmappedRun): PerPageOf gives the
        // run's first pages their TLBIs exactly as PerPage would one by one.
        [Fact]
        public void RunsGetTheTlbisPagesWould()
        {
            for (ulong before = 0; before < 2 * TlbBatchRule.PerPageLimit; before += 7)
                for (ulong count = 0; count < 700; count += 13)
                {
                    ulong expected = 0;
                    for (ulong k = before + 1; k <= before + count; k++) if (TlbBatchRule.PerPage(k)) expected++;
                    Assert.Equal(expected, TlbBatchRule.PerPageOf(before, count));
                }
        }

        [Theory]
        [InlineData(1000, 11)]           // Linux's runs, about 11 pages each
        [InlineData(1024, 256)]
        [InlineData(3000, 1)]
        public void RunByRunNoUnmappedPageStaysReachable(int pages, int run)
        {
            var tlb = new ModelTlb();
            List<ulong> batch = Pages(pages);
            foreach (ulong ipa in batch) tlb.Touch(ipa);
            ulong pending = 0;
            for (int at = 0; at < pages; at += run)
            {
                int length = at + run <= pages ? run : pages - at;
                ulong own = TlbBatchRule.PerPageOf(pending, (ulong)length);
                for (int k = 0; k < (int)own; k++) tlb.Ipas2e1is(batch[at + k]);
                pending += (ulong)length;
            }
            Complete(tlb, pending);
            foreach (ulong ipa in batch) Assert.False(tlb.Reaches(ipa), $"page {ipa:x} still cached after a batch of {pages} in runs of {run}");
        }

        [Fact]
        public void EveryBatchEndsWithAVmidWideFlush()
        {
            // The combined entries: no IPA-based TLBI reaches them.
            Assert.Equal(BatchFlush.None, TlbBatchRule.AtEnd(0));
            for (ulong n = 1; n <= 2 * TlbBatchRule.PerPageLimit; n++) Assert.NotEqual(BatchFlush.None, TlbBatchRule.AtEnd(n));
            // And the stage-2-only flush is chosen only when every page had its own TLBI.
            for (ulong n = 1; n <= 2 * TlbBatchRule.PerPageLimit; n++)
                if (TlbBatchRule.AtEnd(n) == BatchFlush.StageOne)
                    for (ulong k = 1; k <= n; k++) Assert.True(TlbBatchRule.PerPage(k));
        }
    }
}
