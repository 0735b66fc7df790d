namespace Hypervisor.Paging
{
    // What the shadow-table builder needs from the VM and the machine. The
    // kernel's implementation (ShadowPaging.cs) answers from the VM's stage-2
    // tables and issues real TLBIs; host unit tests pass a fake, so the whole
    // shadow algorithm runs on the host too.
    //
    // Addresses: "GPA" is what the guest's own tables hold; "HPA" is a host
    // frame. The shadow tables hold HPAs (or trap-window IPAs, see
    // ShadowTables.TrapIpa).
    public abstract class ShadowHost
    {
        public abstract bool IsRam(ulong gpa);

        // Does [gpa, gpa + size) overlap the VM's RAM?
        public abstract bool TouchesRam(ulong gpa, ulong size);

        // The frame behind a RAM page, or 0 while the guest has not touched it.
        public abstract ulong FrameOf(ulong gpa);

        // A RAM page the shadow must read (a guest page table) gets its frame
        // now, zeroed as on a demand fault. 0 when the host is out of frames.
        public abstract ulong Back(ulong gpa);

        // Guest page-table pages are read-only to the guest while a shadow
        // mirrors them, so every write it makes traps (ShadowPaging.cs).
        public abstract void WriteProtect(ulong hpa, bool readOnly);

        // A shadow leaf for `va` changed / many changed: TLBI VAAE1IS / VMALLE1IS.
        public abstract void InvalidateVa(ulong va);
        public abstract void InvalidateAll();
    }
}
