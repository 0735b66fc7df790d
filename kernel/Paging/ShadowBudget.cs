using Hypervisor.Arch;

namespace Hypervisor.Paging
{
    // How much shadow work one VM exit may do. One trapped store can link a
    // guest table tree of any size into a live root, and one can unlink it:
    // built eagerly, that is up to the whole pool (2048 pages, a million
    // entries derived) in a single exit with interrupts masked, about 240 ms
    // of lateness for a neighbour's timer. So:
    //
    //   building: an exit builds at most PagesBuiltPerExit new shadow pages.
    //     Past that, a table entry that would need a new mirror (or a split of
    //     a guest block) gets a deferred entry instead: a table descriptor
    //     into the trap window (TrapIpa of the GPA), which stage 2 leaves
    //     unmapped. When the MMU walks through it, the walk itself takes a
    //     stage-2 fault (S1PTW) at EL2, and FillDeferred derives that entry
    //     again from the guest's table, now with a fresh budget; deeper
    //     entries may be deferred in turn. This is the table-level version of
    //     the hidden fault FixLeaf serves for leaves: the guest never sees it,
    //     because stage-2 faults on its walks are the hypervisor's. Shared
    //     mirrors cost nothing and are never deferred; a root is never
    //     deferred (one page).
    //   freeing: a page whose last reference goes is taken out of the mirror
    //     lists at once but freed later, PagesFreedPerExit per exit, its
    //     children joining the queue as their last reference goes. Pages
    //     waiting to be freed still count against the pool; while some wait,
    //     a build that finds the pool empty defers rather than fails.
    //
    // Each entry point (OnGuestWrite, RootFor, FillDeferred, DropAll) starts
    // a fresh budget; one exit calls at most three of them (a TCR write drops
    // everything and activates both roots), so an exit builds at most 8
    // pages and frees at most 48. Measured under -icount (tests/Integration/
    // ExitBoundTests.cs): a neighbour's timer 0.3 ms late at worst, against
    // 240 ms with everything built and freed at once.
    public sealed unsafe partial class ShadowTables
    {
        public const int PagesBuiltPerExit = 4;
        public const int PagesFreedPerExit = 16;
        private const int Deferred = -2;               // MirrorTable: over budget, see above

        private readonly int[] _dying;                 // unreachable pages waiting to be freed
        private int _dyingCount;
        private readonly int _buildBudget, _freeBudget;
        private int _builtThisExit, _freedThisExit;

        public ulong EntriesDeferred, DeferredFilled;
        public int PagesWaitingToBeFreed => _dyingCount;

        // Each public entry point starts with a fresh budget, frees what
        // waits (oldest work first), and ends by freeing what it let go of,
        // as far as the budget goes.
        private void BeginExit()
        {
            _builtThisExit = _freedThisExit = 0;
            FreeWithinBudget();
        }

        private void EndExit() => FreeWithinBudget();

        private void FreeWithinBudget()
        {
            while (_dyingCount > 0 && _freedThisExit < _freeBudget) FreeOneDying();
        }

        // A new page now would exceed the budget, or there is none free while
        // some wait to be freed beyond this exit's share.
        private bool MustDefer()
        {
            if (_builtThisExit >= _buildBudget) return true;
            if (_freeCount == 0) FreeWithinBudget();
            return _freeCount == 0 && _dyingCount > 0;
        }

        private ulong DeferredEntry(ulong gpa)
        {
            EntriesDeferred++;
            return (TrapIpa(gpa) & OutputMask) | 3;
        }

        // Frees one waiting page: its children lose a reference (and may join
        // the queue), its frame goes back.
        private void FreeOneDying()
        {
            int slot = _dying[--_dyingCount];
            ref ShadowPage p = ref _pages[slot];
            if (p.Level < 3)
            {
                for (int i = 0; i < Descriptor.EntriesPerTable; i++)
                    ReleaseEntry(_memory.Read64(p.Hpa + (ulong)i * 8), p.Level);
            }
            UnlinkHpa(slot);
            _memory.FreeTable(p.Hpa);
            p.InUse = false;
            p.Generation++;
            _freeSlots[_freeCount++] = slot;
            PagesFreed++;
            _freedThisExit++;
        }

        // Everything waiting is freed now: the VM is being torn down or reset,
        // not in a guest's exit.
        public void FreeAllWaiting()
        {
            while (_dyingCount > 0) FreeOneDying();
        }

        // A stage-2 fault on the guest's walk (S1PTW) at `trapIpa` for `va`:
        // if the walk went through a deferred entry of the tree at
        // `shadowRoot`, derive that entry now (break before make: invalid,
        // TLBI, new value) and say so; the guest's access is retried. False:
        // no deferred entry there (a guest table outside RAM keeps its trap
        // entry; the caller answers as before).
        public ShadowStatus FillDeferred(ulong shadowRoot, int startLevel, ulong va, ulong trapIpa, out bool filled)
        {
            BeginExit();
            ShadowStatus status = Fill(shadowRoot, startLevel, va, trapIpa, out filled);
            EndExit();
            _cache.Barrier();   // the filled entry and any page built for it are in DRAM before the walk again
            return status;
        }

        private ShadowStatus Fill(ulong shadowRoot, int startLevel, ulong va, ulong trapIpa, out bool filled)
        {
            filled = false;
            ulong table = shadowRoot;
            for (int level = startLevel; level < 3; level++)
            {
                int index = Descriptor.Index(va, level);
                ulong entry = table + (ulong)index * 8;
                ulong s = _memory.Read64(entry);
                if (!Descriptor.IsTable(s, level)) return ShadowStatus.Ok;
                ulong output = s & OutputMask;
                if (output < TrapBase)
                {
                    table = output;
                    continue;
                }
                int slot = SlotOf(table);
                if (output != (trapIpa & OutputMask) || slot < 0) return ShadowStatus.Ok;
                ref ShadowPage p = ref _pages[slot];
                ulong g = p.GuestTable != 0 ? _memory.Read64(p.GuestTable + (ulong)index * 8) : SplitEntry(p.SplitOf, level, index);
                ulong entryVa = p.VaBase + (ulong)index * Descriptor.LevelSize(level);
                if (!Derive(level, g, entryVa, out ulong fresh)) return ShadowStatus.OutOfShadowPages;
                if (fresh == s) return ShadowStatus.Ok;
                // Break before make. TLBI VAAE1IS is not the last-level form:
                // it also drops a cached copy of this table entry, which only
                // walks that faulted can have read.
                Publish(entry, 0);
                _cache.Barrier();
                _host.InvalidateVa(va & ~0xfffUL);
                Publish(entry, fresh);
                DeferredFilled++;
                filled = true;
                return ShadowStatus.Ok;
            }
            return ShadowStatus.Ok;
        }
    }
}
