namespace Hypervisor.Boot
{
    public enum InitrdPlacementStatus
    {
        Ok,
        LargerThanRam,     // the file alone is bigger than the VM's RAM
        OverlapsImage,     // at the top of RAM it would cover the image (incl. its .bss)
        OverlapsDtb,       // ... or the device tree
    }

    // Where a VM's initrd goes in its RAM. Linux's booting.rst asks only that
    // it lie in RAM, clear of the kernel image (all of image_size) and of the
    // device tree, inside a 1 GiB-aligned window of at most 32 GiB that also
    // holds the kernel: the top of RAM, page-aligned, keeps it as far as
    // possible from the image and the tree at the bottom. Pure arithmetic, so
    // the same answer comes out at creation and at every reset.
    public static class InitrdPlacement
    {
        private const ulong PageMask = 0xfff;

        // [imageStart, imageEnd) and [dtbStart, dtbEnd) are what must stay
        // clear; start is the initrd's first byte (end = start + length).
        public static InitrdPlacementStatus Place(ulong ramBase, ulong ramSize, ulong length,
                                                  ulong imageStart, ulong imageEnd, ulong dtbStart, ulong dtbEnd,
                                                  out ulong start)
        {
            start = 0;
            if (length > ramSize) return InitrdPlacementStatus.LargerThanRam;
            ulong at = (ramBase + ramSize - length) & ~PageMask;
            if (at < ramBase) return InitrdPlacementStatus.LargerThanRam;   // rounding down left RAM
            ulong end = at + length;
            if (Overlaps(at, end, imageStart, imageEnd)) return InitrdPlacementStatus.OverlapsImage;
            if (Overlaps(at, end, dtbStart, dtbEnd)) return InitrdPlacementStatus.OverlapsDtb;
            start = at;
            return InitrdPlacementStatus.Ok;
        }

        public static string Message(InitrdPlacementStatus status)
        {
            if (status == InitrdPlacementStatus.LargerThanRam) return "initrd larger than the VM's RAM: ";
            if (status == InitrdPlacementStatus.OverlapsImage) return "initrd does not fit in RAM above the image: ";
            if (status == InitrdPlacementStatus.OverlapsDtb) return "initrd does not fit in RAM above the device tree: ";
            return "ok";
        }

        // An empty initrd overlaps nothing.
        private static bool Overlaps(ulong start, ulong end, ulong otherStart, ulong otherEnd) =>
            start < end && otherStart < otherEnd && start < otherEnd && otherStart < end;
    }
}
