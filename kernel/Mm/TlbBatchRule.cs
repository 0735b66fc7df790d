namespace Hypervisor.Mm
{
    // How a batch of stage-2 unmaps is made invisible to every CPU
    // (kernel/Mm/Tlb.cs carries it out; the balloon's batches are the big ones).
    //
    // Each unmapped page may be cached twice: as a stage-2 entry (IPA -> PA,
    // removed by TLBI IPAS2E1IS for that IPA) and inside combined stage-1+2
    // entries (VA -> PA, which an IPA cannot name: only TLBI VMALLE1IS, all
    // of the VMID's stage-1, removes them). So a batch always ends with one
    // VMID-wide instruction, and the only choice is what comes before it:
    //
    //   up to PerPageLimit pages: one TLBI IPAS2E1IS per page, then
    //       TLBI VMALLE1IS. The VM keeps its other stage-2 entries.
    //   past PerPageLimit pages: no more per-page TLBIs, and the batch ends
    //       with TLBI VMALLS12E1IS, which removes stage 1 and stage 2 of the
    //       VMID in one broadcast: it covers every page of the batch, those
    //       that had their own TLBI and those that did not. The VM refills
    //       its TLB from the tables, at most one walk per page it touches.
    //
    // Why 512: one level-3 table's worth. Each broadcast TLBI is a message
    // every CPU of the inner-shareable domain must act on (on real hardware
    // hundreds of cycles each, and they queue); past a full table of pages
    // the refill costs less than the broadcasts. Linux's arm64 code draws
    // its line at the same place (a range flush of more than PTRS_PER_PTE
    // pages becomes a flush of the whole ASID). Under QEMU -icount each TLBI
    // is one instruction, so the bench cannot show the saving; the
    // instructions of the call around each one it can (docs/performance.md).
    //
    // Only unmaps wait for the batch's end. A change that writes a new valid
    // entry where an old one was (a block split, break-before-make) must see
    // its invalidation complete before the write: that one is flushed at
    // once, whatever the batch (Stage2Table.Replace, TlbMaintenance).
    // Frames unmapped in a batch are freed only after the batch's last flush
    // (kernel/Mm/UnmapBatch.cs).
    public static class TlbBatchRule
    {
        public const ulong PerPageLimit = 512;

        // The batch's `ordinal`-th unmap (counting from 1): its own TLBI?
        public static bool PerPage(ulong ordinal) => ordinal <= PerPageLimit;

        // What completes a batch (or the part of it flushed mid-way) of
        // `unmapped` pages.
        public static BatchFlush AtEnd(ulong unmapped) =>
            unmapped == 0 ? BatchFlush.None : unmapped <= PerPageLimit ? BatchFlush.StageOne : BatchFlush.WholeVmid;

        // How many per-page TLBIs a batch of `unmapped` pages issued.
        public static ulong PerPageIssued(ulong unmapped) => unmapped < PerPageLimit ? unmapped : PerPageLimit;

        // Of `count` more unmaps, after `before` in the batch: how many get
        // their own TLBI (the first ones, up to the limit).
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        public static ulong PerPageOf(ulong before, ulong count) =>
            before >= PerPageLimit ? 0 : PerPageLimit - before < count ? PerPageLimit - before : count;
    }

    public enum BatchFlush
    {
        None,        // nothing was unmapped
        StageOne,    // DSB, TLBI VMALLE1IS, DSB: the per-page TLBIs did stage 2
        WholeVmid,   // DSB, TLBI VMALLS12E1IS, DSB: stage 1 and 2 of the VMID
    }
}
