using System.Runtime;
using System.Runtime.CompilerServices;

namespace Hypervisor.Mm
{
    // Host physical memory as the hypervisor sees it: EL2 runs on an identity
    // map, so a physical address is a pointer.
    public static unsafe class HostMemory
    {
        // DC ZVA over one 4 KiB frame (boot/sysreg.s): 64 instructions instead
        // of 512 stores. Every frame freed to the allocator goes through it.
        [RuntimeImport("*", "frame_zero")][MethodImpl(MethodImplOptions.InternalCall)]
        public static extern void ZeroFrame(ulong physicalAddress);

        // The same for many frames: base + (n << 12) for each frame number n.
        [RuntimeImport("*", "frames_zero")][MethodImpl(MethodImplOptions.InternalCall)]
        private static extern void ZeroFrames(ulong baseAddress, uint* frameNumbers, long count);

        // The frame allocator's scrubber (it takes a function pointer, so host
        // tests can run it without touching RAM).
        public static void Scrub(ulong baseAddress, uint* frameNumbers, int count) => ZeroFrames(baseAddress, frameNumbers, count);

        [RuntimeImport("*", "cache_sync_instructions")][MethodImpl(MethodImplOptions.InternalCall)]
        public static extern void SyncInstructions(ulong physicalAddress, ulong length);

        public static void FillFrame(ulong physicalAddress, ulong pattern)
        {
            ulong* p = (ulong*)physicalAddress;
            for (int i = 0; i < 512; i++) p[i] = pattern;
        }
    }

    // Stage-2 tables live in host frames owned by the hypervisor.
    public sealed unsafe class HostPageTableMemory : PageTableMemory
    {
        private readonly FrameAllocator _frames;
        public uint TablesInUse;

        public HostPageTableMemory(FrameAllocator frames) { _frames = frames; }

        public override ulong Read64(ulong physicalAddress) => *(ulong*)physicalAddress;
        public override void Write64(ulong physicalAddress, ulong value) => *(ulong*)physicalAddress = value;

        public override ulong AllocateTable()
        {
            ulong pa = _frames.Allocate(FrameOwner.Hypervisor);   // zeroed: an empty table
            if (pa == 0) return 0;
            TablesInUse++;
            return pa;
        }

        public override void FreeTable(ulong physicalAddress)
        {
            if (_frames.Free(physicalAddress, FrameOwner.Hypervisor) == FrameStatus.Ok) TablesInUse--;
        }
    }
}
