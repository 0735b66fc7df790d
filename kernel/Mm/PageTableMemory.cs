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
        // One stage-2 entry for `ipa` was removed or changed.
        public abstract void InvalidateIpa(ulong ipa);
    }
}
