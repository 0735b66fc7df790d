using System;

namespace Hypervisor.Mm
{
    // Cache coherency with guests: the rule, in one place.
    //
    //   Whatever the hypervisor writes where a guest can see it is cleaned to
    //   the point of coherency (PoC, the DRAM every observer agrees on), and a
    //   DSB completes the clean, before the guest can look.
    //
    // Why: the hypervisor writes through its caches (EL2 maps all RAM Normal
    // write-back), but a guest need not read through them. With its MMU off
    // its data accesses are Device and its fetches non-cacheable; with the MMU
    // on it may choose non-cacheable attributes, or invalidate lines (DC IVAC,
    // which stage 2 upgrades to clean-and-invalidate); and the MMU may walk a
    // guest's tables non-cacheably if its TCR says so. Each of these reads
    // DRAM, which can still hold the previous owner's data while the new bytes
    // sit in a cache. QEMU models no caches, so only real hardware shows it;
    // the host tests check the order of the operations against a model of a
    // cache (tests/Unit/CacheModel.cs: DRAM changes only when a barrier
    // completes a clean).
    //
    // What it covers, and where the cost goes:
    //   frames scrubbed for reuse   zeroed and cleaned+invalidated in one pass,
    //                               then DSB and IC IALLUIS per batch: no
    //                               instruction of the previous owner stays
    //                               cached for them (FrameAllocator); the idle
    //                               scrub pays, taking a clean frame nothing
    //   a table pinned for direct   the same zero-and-clean (DirectPaging.Pin)
    //   entries the MMU walks       one DC CVAC per entry written: MmuUpdate,
    //                               shadow tables; a DSB before the TLBI or the
    //                               return to the guest
    //   images, initrd, device tree cleaned+invalidated as they are copied
    //                               (VmBuilder); before the guest's first
    //                               instruction a DSB and IC IALLUIS, since it
    //                               will fetch the image
    //   hypercall results in RAM    cleaned+invalidated like the images
    // Not covered, on purpose: the stage-2 tables (VTCR_EL2 makes their walks
    // write-back cacheable, and only the hypervisor sets it), and the
    // virtqueues (the device tree marks virtio dma-coherent, so the guest
    // maps its rings cacheable).
    //
    // Clean+invalidate (DC CIVAC) for guest memory: no line of it stays in a
    // cache, so a guest that wrote DRAM with its MMU off and then reads with it
    // on cannot hit an old line (real hardware starts with empty caches, and a
    // guest may rely on it). Clean only (DC CVAC) for table entries: nothing
    // but the hypervisor writes them (they are read-only to the guest, and
    // hardware access-flag updates are refused), so after the clean cache and
    // DRAM agree, and the line may stay cached for the hypervisor's next read.
    //
    // The line size is CTR_EL0.DminLine, the smallest data-cache line of any
    // cache in the system, read once at boot. A machine with FEAT_S2FWB could
    // force guest memory write-back in stage 2 instead (KVM does); QEMU's
    // cortex-a72 does not have it.
    public abstract unsafe class CacheMaintenance
    {
        // Zero the frames base + (n << 12) for `count` frame numbers n and
        // clean+invalidate them to PoC: the only way the hypervisor zeroes
        // a frame, so no scrub can forget the clean.
        public abstract void ZeroFrames(ulong baseAddress, uint* frameNumbers, int count);

        // DC CIVAC on every line holding a byte of [address, address + length).
        public abstract void CleanInvalidate(ulong address, ulong length);

        // DC CVAC on the line holding the 8-byte table entry at `address`.
        public abstract void CleanEntry(ulong address);

        // DSB: the cleans above have reached PoC, for every observer.
        public abstract void Barrier();

        // IC IALLUIS (after a Barrier): no stale instruction is fetched.
        public abstract void InvalidateInstructions();
    }

    public static unsafe class Coherency
    {
        // CTR_EL0.DminLine (bits 19:16) is log2 of the line size in 4-byte words.
        public static ulong LineSize(ulong ctr) => 4UL << (int)((ctr >> 16) & 0xf);

        // Copies bytes where a guest will read them (its image, initrd,
        // device tree, a hypercall's answer) and cleans them to PoC. The
        // caller issues the Barrier before the guest runs.
        //
        // Eight bytes a step wherever the destination is 8-byte aligned (a
        // guest frame is): a file in the guest bundle (a cpio entry) is only
        // 4-byte aligned, and copying a 36 MiB Linux Image byte by byte took
        // about 300 million instructions (eight a byte) at every VM start and
        // reset. The loads may then be unaligned: SCTLR_EL2.A is 0
        // (boot/mmu.s) and both sides are Normal memory, where the
        // architecture allows that.
        public static void CopyOut(CacheMaintenance cache, ulong destination, ReadOnlySpan<byte> source)
        {
            byte* d = (byte*)destination;
            int i = 0;
            fixed (byte* s = source)
            {
                if ((destination & 7) == 0)
                    for (; i + 8 <= source.Length; i += 8) *(ulong*)(d + i) = *(ulong*)(s + i);
                for (; i < source.Length; i++) d[i] = s[i];
            }
            cache.CleanInvalidate(destination, (ulong)source.Length);
        }

        // One frame, zeroed and cleaned+invalidated (no barrier).
        public static void ZeroFrame(CacheMaintenance cache, ulong address)
        {
            uint first = 0;
            cache.ZeroFrames(address, &first, 1);
        }

        // An entry of a table the MMU walks with the guest's attributes: the
        // store, then the clean of its line (one DC CVAC).
        public static void WriteEntry(CacheMaintenance cache, ulong address, ulong value)
        {
            *(ulong*)address = value;
            cache.CleanEntry(address);
        }
    }
}
