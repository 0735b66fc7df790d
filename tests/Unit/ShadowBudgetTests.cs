using Hypervisor.Arch;
using Hypervisor.Paging;
using Xunit;

namespace Hypervisor.Tests.Unit
{
    // The shadow builder's per-exit budget (kernel/Paging/ShadowBudget.cs)
    // with the kernel's own limits: one guest store links a tree of about
    // 1540 shadow pages into a live root, another unlinks it. Neither call
    // may build or free more than its share; what was left for later is
    // filled when a walk needs it, and every page is freed in the end.
    public class ShadowBudgetTests
    {
        private const ulong RamBase = FakeShadowHost.RamBase;
        private const ulong Mask = Descriptor.AddressMask;
        private const ulong Attrs = (1UL << 10) | (3UL << 8) | (1UL << 2);
        private const int RootIndex = 3, L2Tables = 3;

        private static ShadowRig Rig() =>
            new ShadowRig(capacity: 2048, buildBudget: ShadowTables.PagesBuiltPerExit, freeBudget: ShadowTables.PagesFreedPerExit) { DramChecks = false };

        // What the budget tests skip at every step: the shadows in DRAM.
        private static void CheckDramOnce(ShadowRig r)
        {
            r.DramChecks = true;
            r.AssertShadowsInDram("at the end");
        }

        // Root (live, shadowed) and, not linked yet, a level-1 table naming
        // three level-2 tables of 512 blocks over the 64 MiB of RAM.
        private static (ulong Root, ulong L1, ulong Shadow) Build(ShadowRig r)
        {
            ulong root = r.NewTable();
            ulong shadow = r.RootFor(root);
            ulong l1 = r.NewTable();
            for (int k = 0; k < L2Tables; k++)
            {
                ulong l2 = r.NewTable();
                for (int i = 0; i < 512; i++) r.Set(l2, i, (RamBase + ((ulong)i % 32 << 21)) | Attrs | 1);
                r.Set(l1, k, l2 | 3);
            }
            return (root, l1, shadow);
        }

        private static ulong VaOf(int k, int i, int j) => (ulong)RootIndex << 39 | (ulong)k << 30 | (ulong)i << 21 | (ulong)j << 12;

        [Fact]
        public void LinkingAHugeTreeBuildsAtMostTheBudgetAndTheRestOnDemand()
        {
            var r = Rig();
            var (root, l1, shadow) = Build(r);
            ulong gpa = RamBase + (5UL << 21) + 7 * 0x1000;
            ulong frame = r.Host.Back(gpa);
            ulong built = r.Tables.PagesBuilt;
            Assert.Equal(ShadowStatus.Ok, r.Store(root, RootIndex, l1 | 3));
            Assert.True(r.Tables.PagesBuilt - built <= (ulong)ShadowTables.PagesBuiltPerExit,
                $"one store built {r.Tables.PagesBuilt - built} pages");
            Assert.True(r.Tables.EntriesDeferred > 0);

            // Walks that need deferred entries get them, a budget at a time.
            foreach (ulong va in new[] { VaOf(2, 5, 7), VaOf(2, 37, 7), VaOf(0, 5, 7) })
            {
                int fills = 0;
                while (true)
                {
                    var w = r.Walk(shadow, va);
                    if (w.Level == 3)
                    {
                        Assert.Equal(frame, w.Descriptor & Mask);
                        break;
                    }
                    Assert.True(Descriptor.IsTable(w.Descriptor, w.Level) && (w.Descriptor & Mask) >= ShadowTables.TrapBase,
                        $"walk of {va:x} stopped at level {w.Level}: {w.Descriptor:x}");
                    built = r.Tables.PagesBuilt;
                    Assert.Equal(ShadowStatus.Ok, r.Tables.FillDeferred(shadow, 0, va, w.Descriptor & Mask, out bool filled));
                    Assert.True(filled);
                    Assert.True(r.Tables.PagesBuilt - built <= (ulong)ShadowTables.PagesBuiltPerExit);
                    Assert.True(++fills < 4, "a walk of four levels needs at most three fills");
                }
            }
            Assert.True(r.Tables.PagesInUse < 64, $"{r.Tables.PagesInUse} pages in use: built ahead of need");
            r.CheckAccounting();
            CheckDramOnce(r);
        }

        [Fact]
        public void AFillOfAnEntryThatIsNotDeferredChangesNothing()
        {
            var r = Rig();
            var (root, l1, shadow) = Build(r);
            Assert.Equal(ShadowStatus.Ok, r.Store(root, RootIndex, l1 | 3));
            int writes = r.Memory.Writes.Count;
            Assert.Equal(ShadowStatus.Ok, r.Tables.FillDeferred(shadow, 0, VaOf(2, 5, 7), ShadowTables.TrapIpa(RamBase + 0x1234_000), out bool filled));
            Assert.False(filled);
            Assert.Equal(ShadowStatus.Ok, r.Tables.FillDeferred(shadow, 0, 0x10_0000, ShadowTables.TrapIpa(RamBase), out filled));
            Assert.False(filled);
            Assert.Equal(writes, r.Memory.Writes.Count);
        }

        [Fact]
        public void UnlinkingFreesAtMostTheBudgetPerCallAndEverythingInTheEnd()
        {
            var r = Rig();
            var (root, l1, shadow) = Build(r);
            // The whole tree built (unlimited fills), then unlinked.
            for (int k = 0; k < L2Tables; k++)
                for (int i = 0; i < 512; i++)
                    for (int fills = 0; fills < 4; fills++)
                    {
                        Assert.Equal(ShadowStatus.Ok, r.Store(root, RootIndex, l1 | 3));   // a no-op rewrite after the first
                        var w = r.Walk(shadow, VaOf(k, i, 0));
                        if (w.Level == 3) break;
                        r.Tables.FillDeferred(shadow, 0, VaOf(k, i, 0), w.Descriptor & Mask, out _);
                    }
            Assert.Equal(ShadowStatus.Ok, r.Store(root, RootIndex, l1 | 3));
            int inUse = r.Tables.PagesInUse;
            Assert.True(inUse > 1000, $"only {inUse} pages built");

            ulong freed = r.Tables.PagesFreed;
            Assert.Equal(ShadowStatus.Ok, r.Store(root, RootIndex, 0));
            Assert.True(r.Tables.PagesFreed - freed <= (ulong)ShadowTables.PagesFreedPerExit);
            Assert.True(r.Tables.PagesWaitingToBeFreed > 0);
            // Later exits (any entry point) carry on; the guest's tables lose
            // their write protection as their mirrors go (checked by the host).
            for (int exits = 0; r.Tables.PagesWaitingToBeFreed > 0; exits++)
            {
                freed = r.Tables.PagesFreed;
                Assert.Equal(ShadowStatus.Ok, r.Store(root, RootIndex + 1, 0));
                Assert.True(r.Tables.PagesFreed - freed <= (ulong)ShadowTables.PagesFreedPerExit);
                Assert.True(exits < 2048);
            }
            Assert.Equal(1, r.Tables.PagesInUse);                 // the root
            Assert.Single(r.Host.ReadOnly);                        // only the root table is still protected
            r.CheckAccounting();
            CheckDramOnce(r);
        }
    }
}
