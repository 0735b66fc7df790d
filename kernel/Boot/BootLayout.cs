namespace Hypervisor.Boot
{
    public enum BootLayoutStatus
    {
        Ok,
        ImageOutsideRam,      // the caller's image extent is not inside RAM (GuestImage checks this first)
        InitrdLargerThanRam,  // the initrd alone is bigger than the VM's RAM
        InitrdDoesNotFit,     // no room for it in RAM above the image
        DtbDoesNotFit,        // no room for the device tree above the image and the initrd
    }

    // Guest-physical ranges, each [start, end). An absent initrd has start == end.
    public struct BootLayoutInfo
    {
        public ulong ImageStart, ImageEnd;
        public ulong InitrdStart, InitrdEnd;
        public ulong DtbStart, DtbEnd;      // DtbEnd - DtbStart is the room kept, not the tree's size
    }

    // Where a VM's initrd and device tree go, the way QEMU's loader for
    // -kernel lays them out (hw/arm/boot.c) so that a guest tested under QEMU
    // or KVM finds the same picture here: the image where GuestImage put it,
    // the initrd above the image, the device tree above the initrd. Guests
    // written for that loader (bare-metal test kernels, position-independent
    // ones) take RAM above the device tree or below the image as theirs.
    // One rule for every image kind: Image, raw and ELF differ only in the
    // extent they occupy. (QEMU itself puts an ELF's device tree at the base
    // of RAM when the ELF leaves room there; here the tree goes above every
    // kind, so an ELF guest sees the same order as the others.)
    //
    // The initrd starts at half of RAM, or 128 MiB into it for RAM of 256 MiB
    // and more, as QEMU does: far enough above the image for a kernel that
    // decompresses or relocates itself upwards. This replaces the top of RAM,
    // where the hypervisor used to put it: nothing in booting.rst prefers one
    // or the other, and QEMU's place is the one guests have been tested
    // with. If that leaves too little room, it moves down to the first page
    // after the image instead of refusing the VM as QEMU would. Of a raw
    // image only the file's size is known, not its .bss: the distance to
    // half of RAM is what keeps a raw guest's .bss off the initrd and the
    // tree, and the fallback gives that up only where nothing else fits.
    //
    // The device tree starts at the next 2 MiB boundary after the initrd
    // (QEMU: some arm64 kernels map the 2 MiB block around the tree early),
    // or at the next page when the boundary leaves too little room. Without
    // an initrd it goes where the initrd would have started.
    //
    // Pure arithmetic on offsets from the RAM base, so it cannot overflow and
    // gives the same answer at creation and at every reset.
    public static class BootLayout
    {
        public const ulong PageSize = 0x1000;
        public const ulong DtbAlignment = 0x200000;
        public const ulong InitrdMaxOffset = 128UL << 20;

        public static BootLayoutStatus Place(ulong ramBase, ulong ramSize, ulong imageStart, ulong imageEnd,
                                             ulong initrdLength, ulong dtbRoom, out BootLayoutInfo layout)
        {
            layout = default;
            if (ramSize > ulong.MaxValue - ramBase || imageStart < ramBase || imageEnd < imageStart || imageEnd - ramBase > ramSize)
                return BootLayoutStatus.ImageOutsideRam;
            if (initrdLength > ramSize) return BootLayoutStatus.InitrdLargerThanRam;
            // The first page after the image; none when the image ends in RAM's last page.
            if (!AlignUpWithin(imageEnd - ramBase, PageSize, ramSize, out ulong lowest))
                return initrdLength == 0 ? BootLayoutStatus.DtbDoesNotFit : BootLayoutStatus.InitrdDoesNotFit;
            AlignUpWithin(Min(ramSize / 2, InitrdMaxOffset), PageSize, ramSize, out ulong preferred);
            if (preferred < lowest) preferred = lowest;

            bool initrdFits = false;
            for (int attempt = 0; attempt < 2; attempt++)
            {
                ulong initrd = attempt == 0 ? preferred : lowest;
                if (initrd > ramSize || initrdLength > ramSize - initrd) continue;   // no wrap: both checked
                initrdFits = true;
                ulong afterInitrd = initrd + initrdLength;
                if (!PlaceDtb(afterInitrd, ramSize, dtbRoom, out ulong dtb)) continue;
                layout.ImageStart = imageStart;
                layout.ImageEnd = imageEnd;
                layout.InitrdStart = ramBase + initrd;
                layout.InitrdEnd = ramBase + afterInitrd;
                layout.DtbStart = ramBase + dtb;
                layout.DtbEnd = ramBase + dtb + dtbRoom;
                return BootLayoutStatus.Ok;
            }
            return initrdFits || initrdLength == 0 ? BootLayoutStatus.DtbDoesNotFit : BootLayoutStatus.InitrdDoesNotFit;
        }

        public static string Message(BootLayoutStatus status)
        {
            if (status == BootLayoutStatus.ImageOutsideRam) return "image does not fit in the VM's RAM";
            if (status == BootLayoutStatus.InitrdLargerThanRam) return "initrd larger than the VM's RAM: ";
            if (status == BootLayoutStatus.InitrdDoesNotFit) return "initrd does not fit in RAM above the image: ";
            if (status == BootLayoutStatus.DtbDoesNotFit) return "no room in RAM for the device tree above the image and initrd";
            return "ok";
        }

        // 2 MiB aligned when that still fits, else page-aligned; offsets from the RAM base.
        private static bool PlaceDtb(ulong after, ulong ramSize, ulong room, out ulong at)
        {
            at = 0;
            if (room > ramSize) return false;
            ulong last = ramSize - room;                 // the highest start that still fits
            return AlignUpWithin(after, DtbAlignment, last, out at) || AlignUpWithin(after, PageSize, last, out at);
        }

        // value rounded up to alignment (a power of two), if that is at most
        // limit; written so that no sum can wrap, whatever the VM's size.
        private static bool AlignUpWithin(ulong value, ulong alignment, ulong limit, out ulong result)
        {
            ulong pad = (alignment - (value & (alignment - 1))) & (alignment - 1);
            result = value + pad;
            if (value <= limit && pad <= limit - value) return true;
            result = 0;
            return false;
        }

        private static ulong Min(ulong a, ulong b) => a < b ? a : b;
    }
}
