using System;
using Hypervisor.Arch;
using Hypervisor.Boot;
using Hypervisor.Devices;
using Hypervisor.Trap;
using Hypervisor.Vm;

namespace Hypervisor.Mm
{
    // A VM's RAM as the hypervisor manages it: frames come from the host pool
    // on first touch (demand paging), are owned by the VM in the frame table,
    // and are scrubbed before they go back.
    public static unsafe class GuestMemory
    {
        private const ulong PageMask = 0xfff;
        private const ulong RamAttributes = Hypervisor.Arch.Stage2.NormalReadWriteExecute;

        // Host-physical address behind `ipa`, or 0 when stage 2 maps nothing there.
        public static ulong HostAddressOf(VirtualMachine vm, ulong ipa) => vm.Stage2.HostAddress(ipa);

        // Stage-2 translation fault on RAM: a fresh frame for that page (free
        // frames are zero), and with fault_around its neighbours too. False
        // when the host has no frame left.
        public static bool MapOnDemand(VirtualMachine vm, ulong ipa)
        {
            if (vm.FaultAround > 1 && Kernel.Frames.FreeFrames > FaultAroundReserve) return MapAround(vm, ipa);
            if (!MapOnePage(vm, ipa & ~PageMask)) return false;
            vm.Counters.Stage2Faults++;
            return true;
        }

        // backing=blocks (vms.conf): every page of RAM gets its frame now, in
        // the largest stage-2 blocks the host's free memory allows: 1 GiB
        // where the IPA and a free host run are both 1 GiB aligned, else
        // 2 MiB, else single pages (an unaligned tail, or no aligned run
        // left). A block is one TLB entry for 512 (or 262144) pages, and the
        // MMU's walk of it stops one (or two) levels early: a TLB miss on
        // it costs fewer memory reads (make bench, "stage-2 backing"). The
        // balloon and the remap service split a block when they need one page
        // of it (Stage2Table.Unmap4K, MapAt: break-before-make). False when
        // the host runs out of frames; what was mapped stays mapped and is
        // released with the VM.
        public static bool BackWithBlocks(VirtualMachine vm)
        {
            ulong ipa = vm.RamBase, end = vm.RamBase + vm.RamSize;
            while (ipa < end)
            {
                if (TryBlock(vm, ipa, end, Stage2Table.HugeBlockSize)) ipa += Stage2Table.HugeBlockSize;
                else if (TryBlock(vm, ipa, end, Stage2Table.BlockSize)) ipa += Stage2Table.BlockSize;
                else if (MapOnePage(vm, ipa)) ipa += Stage2Table.PageSize;
                else return false;
            }
            return true;
        }

        private static bool TryBlock(VirtualMachine vm, ulong ipa, ulong end, ulong size)
        {
            if ((ipa & (size - 1)) != 0 || end - ipa < size) return false;
            uint frames = (uint)(size >> 12);
            ulong pa = Kernel.Frames.AllocateContiguous(frames, frames, vm.Owner);
            if (pa == 0) return false;
            Stage2Status status = size == Stage2Table.HugeBlockSize
                ? vm.Stage2.Map1G(ipa, pa, RamAttributes)
                : vm.Stage2.Map2M(ipa, pa, RamAttributes);
            if (status != Stage2Status.Ok)
            {
                for (ulong off = 0; off < size; off += Stage2Table.PageSize) Kernel.Frames.Free(pa + off, vm.Owner);
                return false;
            }
            vm.Counters.PagesMapped += frames;
            Charge(vm, (int)frames);
            return true;
        }

        // A zeroed frame for the page at `ipa` (the demand fault's, inlined there).
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        private static bool MapOnePage(VirtualMachine vm, ulong ipa)
        {
            ulong frame = Kernel.Frames.Allocate(vm.Owner);
            if (frame == 0) return false;
            if (!vm.Stage2.MapIfEmpty(ipa, frame, RamAttributes)) return MapOnePageSlowly(vm, ipa, frame);
            vm.Counters.PagesMapped++;
            Charge(vm, 1);
            return true;
        }

        // No level-3 table yet, a block, or the page is mapped already: two
        // vCPUs of the VM faulted on it together and the other one's exit
        // mapped it first, or (on hardware) the MMU's walk ran before this
        // CPU's own store of the entry reached it: an invalid -> valid write
        // needs no TLBI, so nothing waits for it and the guest may fault once
        // more. Then this frame goes back (mapping it over the other would
        // lose that frame, and the data already written to it).
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
        private static bool MapOnePageSlowly(VirtualMachine vm, ulong ipa, ulong frame)
        {
            bool mappedAlready = HostAddressOf(vm, ipa) != 0;
            if (mappedAlready || vm.Stage2.Map4K(ipa, frame, RamAttributes) != Stage2Status.Ok)
            {
                Kernel.Frames.Free(frame, vm.Owner);
                return mappedAlready;
            }
            vm.Counters.PagesMapped++;
            Charge(vm, 1);
            return true;
        }

        // Below this many free host frames a fault maps only the page it
        // needs: fault-around never takes the host's last memory.
        private const uint FaultAroundReserve = 4096;

        // Fault-around (vms.conf fault_around=N): the faulting page and every
        // unmapped, unballooned page of RAM in its aligned window of N pages
        // get a frame in this one exit. A guest that touches a page usually
        // touches its neighbours soon after (Linux maps file pages around a
        // fault for the same reason), so one exit serves many first touches;
        // the price is frames for pages the guest may never use.
        private static bool MapAround(VirtualMachine vm, ulong ipa)
        {
            ulong page = ipa & ~PageMask;
            ulong start = page & ~(((ulong)vm.FaultAround << 12) - 1);
            if (start < vm.RamBase) start = vm.RamBase;
            ulong end = start + ((ulong)vm.FaultAround << 12);
            if (end > vm.RamBase + vm.RamSize) end = vm.RamBase + vm.RamSize;
            int count = (int)((end - start) >> 12);
            int touched = (int)((page - start) >> 12);
            // A frame for every page of the window but the ballooned ones;
            // FillEmptyPages maps those whose entry is empty, and the frames
            // of pages mapped already go back unused (a window is usually
            // all empty: one pass over the entries instead of two).
            ulong want = count == 64 ? ulong.MaxValue : (1UL << count) - 1;
            if (vm.Balloon != null)
            {
                want &= ~vm.Balloon.BalloonedMask(start, count) | (1UL << touched);
                want = vm.Balloon.LimitToHeadroom(want, touched, vm.FramesOwned);
            }

            Span<ulong> frames = stackalloc ulong[VmConfig.MaxFaultAround];   // zeroed: no frame yet
            frames = frames.Slice(0, count);
            Kernel.Frames.AllocateInto(frames, want, vm.Owner);
            if ((want & (1UL << touched)) != 0 && frames[touched] == 0)
            {
                Kernel.Frames.ReturnUnused(frames, 0, vm.Owner);
                return false;
            }
            Stage2Status status = vm.Stage2.FillEmptyPages(start, frames, RamAttributes, out ulong mapped, out int n);
            if (mapped != want) Kernel.Frames.ReturnUnused(frames, mapped, vm.Owner);   // never mapped, still zero
            if (status != Stage2Status.Ok) return false;
            vm.Counters.Stage2Faults++;
            vm.Counters.PagesMapped += (ulong)n;
            vm.Counters.PagesPrefaulted += (ulong)n - ((mapped >> touched) & 1);
            Charge(vm, n);
            return true;
        }

        // The test service behind HypercallAbi.TestRemap: the page at `ipa` moves
        // to a new frame filled with `pattern`; the old frame is scrubbed and freed.
        public static long RemapToFreshFrame(VirtualMachine vm, ulong ipa, ulong pattern)
        {
            if ((ipa & PageMask) != 0 || !vm.IsRam(ipa)) return HypercallAbi.InvalidParameter;
            // A ballooned page's frame went back to the host (maybe to another
            // VM): mapping one again would hand the guest memory it gave away.
            // An unbacked page must fit in what the VM was given, as on a
            // demand fault.
            if (vm.Balloon != null && (vm.Balloon.IsBallooned(ipa)
                || (HostAddressOf(vm, ipa) == 0 && vm.Balloon.Headroom(vm.FramesOwned) == 0)))
            {
                vm.Balloon.RemapRefused++;
                return HypercallAbi.Denied;
            }
            ulong frame = Kernel.Frames.Allocate(vm.Owner);
            if (frame == 0) return HypercallAbi.NoMemory;
            HostMemory.FillFrame(frame, pattern);
            // The guest reads the pattern, perhaps from DRAM (Coherency.cs).
            Kernel.Cache.CleanInvalidate(frame, FrameAllocator.FrameSize);
            Kernel.Cache.Barrier();
            ulong old = HostAddressOf(vm, ipa);
            // Map4K does break-before-make: invalid entry, TLBI, new entry.
            if (vm.Stage2.Map4K(ipa, frame, RamAttributes) != Stage2Status.Ok)
            {
                Kernel.Frames.Free(frame, vm.Owner);
                return HypercallAbi.NoMemory;
            }
            Charge(vm, 1);
            if (old != 0) Release(vm, old);
            return HypercallAbi.Ok;
        }

        // The balloon takes pages back: a run of consecutive pages is unmapped
        // (one stage-2 walk per level-3 table, the entries cleared, then their
        // TLBIs, the batched TLB discipline) and the frames are staged in the
        // balloon device (VirtioBalloon.RunFrames) until HoldStaged passes
        // them on, once per request (EndBatch) rather than once per run
        // (Linux lists runs of about 11 pages). Pages the guest never touched
        // have no frame to return. Returns how many frames went on to the
        // host (only when the staging buffer filled up).
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        public static int ReclaimRun(VirtualMachine vm, ulong ipa, int pages)
        {
            VirtioBalloon balloon = vm.Balloon;
            ulong[] staging = balloon.RunFrames;
            int returned = 0;
            while (pages > 0)
            {
                if (balloon.Staged == staging.Length) returned += HoldStaged(vm);
                Span<ulong> room = new Span<ulong>(staging).Slice(balloon.Staged);
                uint mark = El2Clock.Mark();
                int n = vm.Stage2.UnmapPages(ipa & ~PageMask, pages, room, out int held);
                vm.Counters.El2BalloonUnmap += El2Clock.Since(mark);
                if (n == 0) break;   // outside the IPA space: the device only passes pages of RAM
                // Pages never touched had no frame: their zero slots are
                // squeezed out (rare: Linux zeroes what it gives).
                if (held != n) CompactFrames(room, n);
                balloon.Staged += held;
                pages -= n;
                ipa += (ulong)n << 12;
            }
            return returned;
        }

        // The staged frames go on: inside a batch to the balloon's UnmapBatch,
        // which frees them once the batch's TLB maintenance has completed;
        // outside one (every unmap already flushed) straight to the host.
        // Returns how many went.
        public static int HoldStaged(VirtualMachine vm)
        {
            VirtioBalloon balloon = vm.Balloon;
            int staged = balloon.Staged;
            if (staged == 0) return 0;
            balloon.Staged = 0;
            ReadOnlySpan<ulong> frames = new ReadOnlySpan<ulong>(balloon.RunFrames).Slice(0, staged);
            if (vm.Tlb.Batching) return balloon.Unmapped.Hold(frames, balloon.UnmapSink);
            int freed = Kernel.Frames.FreeMany(frames, vm.Owner);
            Charge(vm, -freed);
            return freed;
        }

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
        private static void CompactFrames(Span<ulong> frames, int n)
        {
            int held = 0;
            for (int i = 0; i < n; i++)
                if (frames[i] != 0) frames[held++] = frames[i];
        }

        // Many stage-2 unmaps, one VMID-wide flush at the end: between
        // BeginBatch and EndBatch an unmapped page costs at most one TLBI
        // IPAS2E1IS, and none past TlbBatchRule's limit; EndBatch completes
        // them all with one TLBI VMALLE1IS or VMALLS12E1IS. The frames
        // unmapped inside a batch wait in the VM's balloon device (batches
        // are the balloon's), under the VM's lock, until that maintenance has
        // completed (kernel/Mm/UnmapBatch.cs says why).
        public static void BeginBatch(VirtualMachine vm)
        {
            vm.Tlb.SavedVttbr = Tlb.BeginBatch(vm);
            vm.Tlb.Batching = true;
            vm.Tlb.PendingInBatch = 0;
        }

        public static void EndBatch(VirtualMachine vm)
        {
            vm.Balloon.FramesReturned += (ulong)HoldStaged(vm);   // before the batch's last flush: Finish frees them after it
            vm.Tlb.Batching = false;
            vm.Balloon.Unmapped.Finish(vm.Balloon.UnmapSink);
        }

        // The balloon's sink: the VM's TLB maintenance and the host's frames.
        public sealed class BalloonSink : BatchSink
        {
            private readonly VirtualMachine _vm;

            public BalloonSink(VirtualMachine vm) => _vm = vm;

            public override void FlushSoFar()
            {
                uint mark = El2Clock.Mark();
                Tlb.CompleteBatch(_vm, _vm.Tlb.PendingInBatch);
                _vm.Tlb.PendingInBatch = 0;
                _vm.Counters.El2BalloonFlush += El2Clock.Since(mark);
            }

            public override void FlushAndEnd()
            {
                FlushSoFar();
                Tlb.EndBatch(_vm.Tlb.SavedVttbr);
            }

            public override int Free(ReadOnlySpan<ulong> frames)
            {
                uint mark = El2Clock.Mark();
                int freed = Kernel.Frames.FreeMany(frames, _vm.Owner);
                Charge(_vm, -freed);
                _vm.Counters.El2BalloonFree += El2Clock.Since(mark);
                return freed;
            }
        }

        // Copies bytes into guest RAM (image loading), mapping pages as needed,
        // and cleans them to PoC (Coherency.cs); the caller issues the barrier
        // before the guest runs.
        public static bool CopyIn(VirtualMachine vm, ulong ipa, ReadOnlySpan<byte> data)
        {
            for (int done = 0; done < data.Length;)
            {
                ulong at = ipa + (ulong)done;
                if (!vm.IsRam(at)) return false;
                ulong hpa = HostAddressOf(vm, at);
                if (hpa == 0)
                {
                    if (!MapOnDemand(vm, at)) return false;
                    hpa = HostAddressOf(vm, at);
                }
                int chunk = (int)Math.Min((ulong)(data.Length - done), 4096 - (at & PageMask));
                Coherency.CopyOut(Kernel.Cache, hpa, data.Slice(done, chunk));
                done += chunk;
            }
            return true;
        }

        // Scrubs and frees every frame the VM's stage 2 maps (teardown).
        public static void ReleaseAll(VirtualMachine vm)
        {
            Span<ulong> ipas = stackalloc ulong[64];
            Span<ulong> pas = stackalloc ulong[64];
            ulong next = 0;
            while (next < vm.Stage2.IpaLimit)
            {
                int n = vm.Stage2.CollectMappings(next, ipas, pas, out next);
                for (int i = 0; i < n; i++) Release(vm, pas[i]);
                if (n == 0 && next >= vm.Stage2.IpaLimit) break;
            }
        }

        // A frame leaves the VM (the allocator scrubs it, so nobody else ever
        // sees its data).
        private static void Release(VirtualMachine vm, ulong frame)
        {
            if (Kernel.Frames.Free(frame, vm.Owner) == FrameStatus.Ok) Charge(vm, -1);
        }

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        private static void Charge(VirtualMachine vm, int frames)
        {
            vm.FramesOwned = (ulong)((long)vm.FramesOwned + frames);
            if (vm.FramesOwned > vm.PeakFrames) vm.PeakFrames = vm.FramesOwned;
        }
    }
}
