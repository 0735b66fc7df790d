using System;

namespace Hypervisor.Mm
{
    // The seam between page-table logic and the machine. The kernel's
    // implementation reads and writes host physical memory directly (EL2 runs
    // on an identity map) and takes frames from the frame allocator; host unit
    // tests pass a fake backed by a dictionary, so the same table code is
    // exercised at full speed on the host.
    //
    // (An abstract class rather than an interface: the kernel's runtime has no
    // interface dispatch; virtual calls need nothing from it.)
    public abstract class PageTableMemory
    {
        public abstract ulong Read64(ulong physicalAddress);
        public abstract void Write64(ulong physicalAddress, ulong value);

        // A zeroed 4 KiB frame for a new table, or 0 when none is left.
        public abstract ulong AllocateTable();
        public abstract void FreeTable(ulong physicalAddress);
    }

    // TLB maintenance the table code asks for at the right moment of a
    // break-before-make sequence. The kernel's implementation issues the TLBI
    // instructions under the VM's VMID (kernel/Mm/Tlb.cs); tests record calls.
    public abstract class TlbMaintenance
    {
        // The stage-2 entry for `ipa` was valid, is now invalid, and a new
        // valid entry is about to be written there (break-before-make): the
        // invalidation has completed on every CPU when this returns.
        public abstract void InvalidateIpa(ulong ipa);

        // The stage-2 entry for `ipa` was valid and is now invalid for good
        // (an unmap). Inside a batch the invalidation may complete at the
        // batch's end (kernel/Mm/TlbBatchRule.cs); the caller keeps the frame
        // until then.
        public virtual void Unmapped(ulong ipa) => InvalidateIpa(ipa);

        // A run of entries from `ipa` was cleared, all of them before this
        // call: frames[i] != 0 says page i was valid (`valid` pages in all).
        // The same as Unmapped for each valid page, in order; the kernel's
        // implementation does it with one barrier for the run (kernel/Mm/Tlb.cs).
        public virtual void UnmappedRun(ulong ipa, ReadOnlySpan<ulong> frames, int valid)
        {
            for (int i = 0; i < frames.Length; i++)
                if (frames[i] != 0) Unmapped(ipa + ((ulong)i << 12));
        }
    }
}
