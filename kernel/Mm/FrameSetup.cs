using Hypervisor.Arch;
using Hypervisor.Boot;
using Hypervisor.Console;
using Hypervisor.Trap;

namespace Hypervisor.Mm
{
    // Brings up the frame allocator over the RAM the device tree reports.
    // Already in use at that point: the hypervisor image (with .bss, stacks and
    // boot heap), the device tree and the guest bundle; the allocator's own two
    // tables are carved out of RAM just above the image.
    public static unsafe class FrameSetup
    {
        private static ulong s_metadataStart, s_metadataEnd;

        public static void Init(BootInfo* boot, FdtInfo fdt)
        {
            ulong ramBase = fdt.MemoryBase;
            uint frames = (uint)(fdt.MemorySize >> FrameAllocator.FrameShift);
            ulong metadataSize = PageAlign(FrameAllocator.MetadataBytes(frames));

            ulong dtbEnd = boot->Dtb + fdt.TotalSize;
            ulong start = PageAlign(boot->ImageEnd);
            // Slide past the DTB and the bundle if they sit just above the image.
            for (int tries = 0; tries < 4; tries++)
            {
                if (Overlaps(start, metadataSize, boot->Dtb, dtbEnd)) start = PageAlign(dtbEnd);
                else if (fdt.HasInitrd && Overlaps(start, metadataSize, fdt.InitrdStart, fdt.InitrdEnd)) start = PageAlign(fdt.InitrdEnd);
                else break;
            }
            if (start + metadataSize > ramBase + fdt.MemorySize)
                Panic.Message("no room for the frame allocator's tables");

            s_metadataStart = start;
            s_metadataEnd = start + metadataSize;
            var owner = (ushort*)start;
            var stack = (uint*)(start + (ulong)frames * sizeof(ushort));
            // The cache line size first: the allocator's boot scrub cleans by line.
            Kernel.Cache = new HostCache(Coherency.LineSize(SysReg.ReadCtrEl0()));
            var allocator = new FrameAllocator(ramBase, frames, owner, stack, Kernel.Cache);
            allocator.Reserve(boot->ImageStart, boot->ImageEnd, FrameOwner.Hypervisor);
            allocator.Reserve(s_metadataStart, s_metadataEnd, FrameOwner.Hypervisor);
            allocator.Reserve(boot->Dtb, dtbEnd, FrameOwner.Firmware);
            if (fdt.HasInitrd) allocator.Reserve(fdt.InitrdStart, fdt.InitrdEnd, FrameOwner.Bundle);
            // QEMU's firmware stub and loader may use the 2 MiB below the image.
            allocator.Reserve(ramBase, boot->ImageStart, FrameOwner.Firmware);
            allocator.Seal();
            Kernel.Frames = allocator;
        }

        // STAT frames_total=... frames_free=... frames_hypervisor=... ...
        public static void PrintStat()
        {
            FrameAllocator f = Kernel.Frames;
            Log.Write("STAT");
            Log.Stat("frames_total", f.TotalFrames);
            Log.Stat("frames_free", f.FreeFrames);
            Log.Stat("frames_hypervisor", f.CountOwnedBy(FrameOwner.Hypervisor));
            Log.Stat("frames_firmware", f.CountOwnedBy(FrameOwner.Firmware));
            Log.Stat("frames_bundle", f.CountOwnedBy(FrameOwner.Bundle));
            Log.Stat("heap_used", Hypervisor.Runtime.Heap.BytesInUse);
            Log.NewLine();
        }

        private static ulong PageAlign(ulong x) => (x + FrameAllocator.FrameSize - 1) & ~(FrameAllocator.FrameSize - 1);

        private static bool Overlaps(ulong start, ulong size, ulong otherStart, ulong otherEnd) =>
            start < otherEnd && otherStart < start + size;
    }
}
