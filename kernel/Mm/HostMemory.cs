using System.Runtime;
using System.Runtime.CompilerServices;

namespace Hypervisor.Mm
{
    // Host physical memory as the hypervisor sees it: EL2 runs on an identity
    // map, so a physical address is a pointer.
    public static unsafe class HostMemory
    {
        public static void FillFrame(ulong physicalAddress, ulong pattern)
        {
            ulong* p = (ulong*)physicalAddress;
            for (int i = 0; i < 512; i++) p[i] = pattern;
        }
    }

    // The machine's cache maintenance (boot/sysreg.s), with the line size
    // read from CTR_EL0 at boot. The rule for using it: Coherency.cs.
    public sealed unsafe class HostCache : CacheMaintenance
    {
        [RuntimeImport("*", "frames_zero_clean")][MethodImpl(MethodImplOptions.InternalCall)]
        private static extern void FramesZeroClean(ulong baseAddress, uint* frameNumbers, long count, ulong line);

        [RuntimeImport("*", "cache_clean_inval_range")][MethodImpl(MethodImplOptions.InternalCall)]
        private static extern void CleanInvalidateRange(ulong address, ulong length, ulong line);

        [RuntimeImport("*", "cache_clean_line")][MethodImpl(MethodImplOptions.InternalCall)]
        private static extern void CleanLine(ulong address);

        [RuntimeImport("*", "barrier_dsb_sy")][MethodImpl(MethodImplOptions.InternalCall)]
        private static extern void DsbSy();

        [RuntimeImport("*", "cache_invalidate_instructions")][MethodImpl(MethodImplOptions.InternalCall)]
        private static extern void IcIallu();

        public readonly ulong Line;

        public HostCache(ulong lineSize) { Line = lineSize; }

        public override void ZeroFrames(ulong baseAddress, uint* frameNumbers, int count) => FramesZeroClean(baseAddress, frameNumbers, count, Line);
        public override void CleanInvalidate(ulong address, ulong length) => CleanInvalidateRange(address, length, Line);
        public override void CleanEntry(ulong address) => CleanLine(address);
        public override void Barrier() => DsbSy();
        public override void InvalidateInstructions() => IcIallu();
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
