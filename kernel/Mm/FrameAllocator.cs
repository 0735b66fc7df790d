using System;

namespace Hypervisor.Mm
{
    // Who owns a host frame. The owner table is the single source of truth that
    // isolation checks, scrubbing and leak accounting read.
    public static class FrameOwner
    {
        public const ushort Free = 0;
        public const ushort Hypervisor = 1;   // image, allocator metadata, tables, heaps
        public const ushort Firmware = 2;     // the device tree QEMU passed in
        public const ushort Bundle = 3;       // the guest bundle (initrd)
        public const ushort FirstVm = 16;     // VM n owns frames tagged FirstVm + n

        public static string Name(ushort owner)
        {
            switch (owner)
            {
                case Free: return "free";
                case Hypervisor: return "hypervisor";
                case Firmware: return "firmware";
                case Bundle: return "bundle";
                default: return owner >= FirstVm ? "vm" : "reserved";
            }
        }
    }

    public enum FrameStatus
    {
        Ok,
        OutOfRange,    // not a frame of RAM this allocator manages
        Misaligned,    // not the first byte of a 4 KiB frame
        AlreadyFree,   // double free
        WrongOwner,    // freed or handed over by someone who does not own it
        Sealed,        // reservations are only possible before Seal()
        NotSealed,     // frees are only possible after Seal()
    }

    // Physical frame allocator over one contiguous RAM range, 4 KiB frames.
    //
    // Two tables, both outside the managed heap (the caller provides them):
    //   owner[i]  : the owner of frame i (FrameOwner),
    //   freeStack : frame numbers of all free frames, as two stacks in one
    //               array: clean (zeroed) frames from the bottom up, dirty
    //               ones (freed since) from the top down. Allocation pops,
    //               free pushes, so both are O(1): the demand-fault path
    //               depends on that.
    // Start-up order: construct (everything free), Reserve what is already in use
    // (image, DTB, bundle, these tables), then Seal() builds the free stack.
    //
    // One rule keeps memory from leaking between VMs: a frame is zeroed
    // (scrubbed) after its last owner freed it and before anyone gets it
    // again; so allocation hands out zeroed frames and nobody else clears
    // them. When that happens is the allocator's choice. The clean stack
    // holds frames already scrubbed (Seal scrubs all of RAM that is free at
    // boot); the dirty stack, frames freed since. A free only pushes a dirty
    // frame. ScrubSome, called when the CPU would otherwise sleep
    // (kernel/Vm/Scheduler.cs), scrubs the most recently freed dirty frames
    // and moves them to the clean stack. Allocate pops a clean frame while
    // there is one and scrubs a dirty one only when there is none. So the
    // 4 KiB clear leaves the paths a guest waits on (the balloon's inflate,
    // VM teardown, and the demand fault while clean frames last).
    // "Zeroed" means zeroed in DRAM too (kernel/Mm/Coherency.cs): every scrub
    // cleans what it zeroed to the point of coherency and ends with a DSB and
    // an instruction-cache invalidate, so a frame is complete before it is
    // counted clean and allocation itself does no cache maintenance.
    public unsafe sealed class FrameAllocator
    {
        public const ulong FrameSize = 4096;
        public const int FrameShift = 12;

        private readonly ulong _base;
        private readonly uint _frameCount;
        private readonly ushort* _owner;
        private readonly uint* _freeStack;
        private uint _freeCount;     // clean + dirty (read without the lock: one count)
        private uint _cleanCount;    // freeStack[0 .. _cleanCount): zeroed frames
        private uint _dirtyBottom;   // freeStack[_dirtyBottom .. _frameCount): frames not yet scrubbed
        private bool _sealed;
        private const int MaxReservations = 8;
        private readonly ulong[] _reservedStart = new ulong[MaxReservations], _reservedEnd = new ulong[MaxReservations];
        private int _reservedCount;

        // Where the scrubbing happened: frames zeroed by ScrubSome (idle) and
        // by Allocate (the frame was still dirty when someone needed it).
        public ulong ScrubbedIdle, ScrubbedOnAllocation;
        // Zeroes and cleans frames (null: the tables only, for host tests).
        private readonly CacheMaintenance _cache;

        // Held around every change once several CPUs run (rank Frames,
        // kernel/Smp/LockOrder.cs): demand faults, balloon frees and idle
        // scrubbing on different CPUs meet here. Null: one CPU, or a host test
        // that does not watch. Reads of a single count (FreeFrames) take no lock.
        public Hypervisor.Smp.Guard Guard;

        // Bytes of metadata the two tables need for a RAM range of this many frames.
        public static ulong MetadataBytes(uint frameCount) => (ulong)frameCount * (sizeof(ushort) + sizeof(uint));

        public FrameAllocator(ulong ramBase, uint frameCount, ushort* ownerTable, uint* freeStack, CacheMaintenance cache = null)
        {
            _cache = cache;
            _base = ramBase;
            _frameCount = frameCount;
            _owner = ownerTable;
            _freeStack = freeStack;
            for (uint i = 0; i < frameCount; i++) _owner[i] = FrameOwner.Free;
        }

        public ulong Base => _base;
        public uint TotalFrames => _frameCount;
        public uint FreeFrames => _freeCount;
        public bool IsSealed => _sealed;

        // Marks every frame overlapping [start, end) as owned by `owner`. Parts
        // outside RAM are ignored (a DTB may sit in ROM, say).
        public FrameStatus Reserve(ulong start, ulong end, ushort owner)
        {
            if (_sealed) return FrameStatus.Sealed;
            ulong ramEnd = _base + (ulong)_frameCount * FrameSize;
            if (start < _base) start = _base;
            if (end > ramEnd) end = ramEnd;
            for (ulong a = start & ~(FrameSize - 1); a < end; a += FrameSize)
                _owner[(a - _base) >> FrameShift] = owner;
            if (_reservedCount < MaxReservations && start < end)
            {
                _reservedStart[_reservedCount] = start & ~(FrameSize - 1);
                _reservedEnd[_reservedCount++] = end;
            }
            return FrameStatus.Ok;
        }

        // Reserved before Seal (the hypervisor image, its heap and stacks, the
        // allocator's tables, the firmware's device tree, the guest bundle):
        // never handed out, never freed. The identity stage 2 of shadow and
        // direct paging leaves them out (kernel/Paging/IdentityMap.cs).
        public bool IsBootReserved(ulong start, ulong end)
        {
            for (int i = 0; i < _reservedCount; i++)
                if (start < _reservedEnd[i] && _reservedStart[i] < end) return true;
            return false;
        }

        // Frames still free after reservations go on the stack, highest first,
        // so that allocation hands out ascending addresses. All of them are
        // scrubbed here (the boot scrub: nobody knows what RAM held before the
        // hypervisor ran), so a guest's first touches find clean frames.
        public void Seal()
        {
            _freeCount = 0;
            for (uint i = _frameCount; i > 0; i--)
                if (_owner[i - 1] == FrameOwner.Free) _freeStack[_freeCount++] = i - 1;
            Scrub(0, _freeCount);
            _cleanCount = _freeCount;
            _dirtyBottom = _frameCount;
            _sealed = true;
        }

        // Physical address of a zeroed frame now owned by `owner`, or 0 when
        // none is left. A clean frame if there is one (the top of the clean
        // stack). Only when every free frame is dirty does the caller wait
        // for a scrub.
        public ulong Allocate(ushort owner)
        {
            Hypervisor.Smp.Guard guard = Guard;
            if (guard == null) return AllocateLocked(owner);   // the demand-fault path with one CPU
            guard.Enter();
            ulong result = AllocateLocked(owner);
            guard.Exit();
            return result;
        }

        // A frame for every slot i of `frames` whose bit is set in `want`
        // (fault-around: up to 64 at once), under one acquisition of the
        // guard. A slot left 0 got none: the host ran out.
        // Frames come from the clean stack while it lasts, with its count
        // kept in a local (Allocate's per-frame checks and field updates, 33
        // instructions a frame, were a third of a fault-around exit); a dirty
        // frame only when no clean one is left.
        public void AllocateInto(Span<ulong> frames, ulong want, ushort owner)
        {
            Hypervisor.Smp.Guard guard = Guard;
            guard?.Enter();
            if (owner != FrameOwner.Free)
            {
                uint* stack = _freeStack;
                ushort* owners = _owner;
                ulong ramBase = _base;
                uint clean = _cleanCount;
                int n = frames.Length < 64 ? frames.Length : 64;
                fixed (ulong* slot = frames)
                {
                    // Clean frames first, in a loop without calls (it keeps
                    // its counters in registers)...
                    int i = 0;
                    for (; i < n && want != 0 && clean != 0; i++, want >>= 1)
                    {
                        if ((want & 1) == 0) continue;
                        uint frame = stack[--clean];
                        owners[frame] = owner;
                        slot[i] = ramBase + ((ulong)frame << FrameShift);
                    }
                    _freeCount -= _cleanCount - clean;
                    _cleanCount = clean;
                    // ...then, if they ran out, Allocate's way, which scrubs
                    // a dirty frame each.
                    for (; i < n && want != 0; i++, want >>= 1)
                        if ((want & 1) != 0) slot[i] = AllocateLocked(owner);
                }
            }
            guard?.Exit();
        }

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        private ulong AllocateLocked(ushort owner)
        {
            if (_freeCount == 0 || owner == FrameOwner.Free) return 0;
            uint frame;
            if (_cleanCount > 0) frame = _freeStack[--_cleanCount];
            else
            {
                Scrub(_dirtyBottom, 1);
                ScrubbedOnAllocation++;
                frame = _freeStack[_dirtyBottom++];
            }
            _freeCount--;
            _owner[frame] = owner;
            return _base + ((ulong)frame << FrameShift);
        }

        // Scrubs up to `max` dirty free frames (the most recently freed
        // first) and moves them to the clean stack; returns how many. The
        // idle loop calls it in small steps so an interrupt waits
        // at most one step.
        public uint ScrubSome(uint max)
        {
            Hypervisor.Smp.Guard guard = Guard;
            guard?.Enter();
            uint result = ScrubSomeLocked(max);
            guard?.Exit();
            return result;
        }

        private uint ScrubSomeLocked(uint max)
        {
            uint n = _frameCount - _dirtyBottom;
            if (n > max) n = max;
            Scrub(_dirtyBottom, n);
            for (uint i = 0; i < n; i++) _freeStack[_cleanCount++] = _freeStack[_dirtyBottom++];
            ScrubbedIdle += n;
            return n;
        }

        public uint DirtyFrames => _frameCount - _dirtyBottom;

        // `count` physically contiguous zeroed frames whose first frame number is a
        // multiple of `alignFrames` (e.g. 512 for a 2 MiB stage-2 block, 2 for
        // the 8 KiB concatenated stage-2 root). Returns the address or 0.
        // O(frames): meant for VM creation, never for a fault path.
        public ulong AllocateContiguous(uint count, uint alignFrames, ushort owner)
        {
            Hypervisor.Smp.Guard guard = Guard;
            guard?.Enter();
            ulong result = AllocateContiguousLocked(count, alignFrames, owner);
            guard?.Exit();
            return result;
        }

        private ulong AllocateContiguousLocked(uint count, uint alignFrames, ushort owner)
        {
            if (count == 0 || alignFrames == 0 || owner == FrameOwner.Free || _freeCount < count) return 0;
            // Frame numbers are relative to _base; alignment is of the physical address.
            ulong baseFrame = _base >> FrameShift;
            uint first = (uint)((alignFrames - baseFrame % alignFrames) % alignFrames);
            for (uint start = first; start + count <= _frameCount; start += alignFrames)
            {
                uint run = 0;
                while (run < count && _owner[start + run] == FrameOwner.Free) run++;
                if (run < count) continue;
                for (uint i = 0; i < count; i++) _owner[start + i] = owner;
                RemoveFromFreeStack(start, count);
                return _base + ((ulong)start << FrameShift);
            }
            return 0;
        }

        // Drops frames [start, start+count), just claimed, from both stacks,
        // scrubbing those that were dirty. Each stack keeps its order.
        private void RemoveFromFreeStack(uint start, uint count)
        {
            uint kept = 0;
            for (uint i = 0; i < _cleanCount; i++)
            {
                uint f = _freeStack[i];
                if (f < start || f >= start + count) _freeStack[kept++] = f;
            }
            _cleanCount = kept;
            kept = _frameCount;
            for (uint i = _frameCount; i > _dirtyBottom; i--)
            {
                uint f = _freeStack[i - 1];
                if (f >= start && f < start + count)
                {
                    Scrub(i - 1, 1);
                    ScrubbedOnAllocation++;
                    continue;
                }
                _freeStack[--kept] = f;
            }
            _dirtyBottom = kept;
            _freeCount = _cleanCount + (_frameCount - _dirtyBottom);
        }

        // The frame goes back to the pool, to be scrubbed before anyone gets
        // it again; a refused free (see FrameStatus) changes nothing.
        public FrameStatus Free(ulong address, ushort owner)
        {
            Hypervisor.Smp.Guard guard = Guard;
            guard?.Enter();
            FrameStatus result = FreeLocked(address, owner);
            guard?.Exit();
            return result;
        }

        private FrameStatus FreeLocked(ulong address, ushort owner)
        {
            if (!_sealed) return FrameStatus.NotSealed;
            FrameStatus status = Check(address, out uint frame);
            if (status != FrameStatus.Ok) return status;
            if (_owner[frame] == FrameOwner.Free) return FrameStatus.AlreadyFree;
            if (_owner[frame] != owner) return FrameStatus.WrongOwner;
            _owner[frame] = FrameOwner.Free;
            _freeStack[--_dirtyBottom] = frame;
            _freeCount++;
            return FrameStatus.Ok;
        }

        // Frees a batch of frames of one owner (the balloon returns hundreds at
        // a time). Frames that fail Free's checks are skipped and counted in
        // the result's complement: returns how many were freed.
        public int FreeMany(ReadOnlySpan<ulong> addresses, ushort owner)
        {
            Hypervisor.Smp.Guard guard = Guard;
            if (guard == null) return FreeManyLocked(addresses, owner);
            guard.Enter();
            int result = FreeManyLocked(addresses, owner);
            guard.Exit();
            return result;
        }

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        private int FreeManyLocked(ReadOnlySpan<ulong> addresses, ushort owner)
        {
            if (!_sealed) return 0;
            uint bottom = _dirtyBottom, first = bottom;
            ushort* owners = _owner;                                     // locals: stores through the
            uint* stack = _freeStack;                                    // tables would reload the fields
            ulong ramBase = _base, frames = _frameCount;
            fixed (ulong* list = addresses)
            {
                for (int i = 0; i < addresses.Length; i++)
                {
                    // The offset rotated right by 12: the frame number, with
                    // any misaligned low bits moved to the top, so the one
                    // compare with the frame count refuses an address below
                    // RAM (wrapped), beyond it, or not at a frame's start.
                    ulong offset = list[i] - ramBase;
                    ulong frame = (offset >> FrameShift) | (offset << (64 - FrameShift));
                    if (frame >= frames || owners[frame] != owner) continue;
                    owners[frame] = FrameOwner.Free;
                    stack[--bottom] = (uint)frame;        // onto the dirty stack
                }
            }
            _dirtyBottom = bottom;
            _freeCount += first - bottom;
            return (int)(first - bottom);
        }

        // Frames that Allocate or AllocateInto handed out and nobody used
        // (mapped nowhere, written by no one: fault-around's frames for pages
        // another exit had mapped already) go back as they came, clean: they
        // still hold the zeroes their scrub left, so a scrub now would only
        // cost time. Slots that are 0 or whose bit is set in `keep` are
        // skipped, as is any frame `owner` does not own. Returns how many
        // went back.
        public int ReturnUnused(ReadOnlySpan<ulong> frames, ulong keep, ushort owner)
        {
            Hypervisor.Smp.Guard guard = Guard;
            guard?.Enter();
            int returned = 0;
            for (int i = 0; i < frames.Length && i < 64; i++)
            {
                if ((keep & (1UL << i)) != 0 || Check(frames[i], out uint frame) != FrameStatus.Ok || _owner[frame] != owner) continue;
                _owner[frame] = FrameOwner.Free;
                _freeStack[_cleanCount++] = frame;
                _freeCount++;
                returned++;
            }
            guard?.Exit();
            return returned;
        }

        // Moves a frame from one owner to another without it ever being free.
        public FrameStatus Transfer(ulong address, ushort from, ushort to)
        {
            Hypervisor.Smp.Guard guard = Guard;
            guard?.Enter();
            FrameStatus result = TransferLocked(address, from, to);
            guard?.Exit();
            return result;
        }

        private FrameStatus TransferLocked(ulong address, ushort from, ushort to)
        {
            FrameStatus status = Check(address, out uint frame);
            if (status != FrameStatus.Ok) return status;
            if (_owner[frame] == FrameOwner.Free) return FrameStatus.AlreadyFree;
            if (_owner[frame] != from || to == FrameOwner.Free) return FrameStatus.WrongOwner;
            _owner[frame] = to;
            return FrameStatus.Ok;
        }

        // Owner of the frame holding `address`. Addresses outside RAM report
        // Hypervisor: nobody may hand them out.
        public ushort OwnerOf(ulong address)
        {
            if (address < _base) return FrameOwner.Hypervisor;
            ulong frame = (address - _base) >> FrameShift;
            return frame < _frameCount ? _owner[frame] : FrameOwner.Hypervisor;
        }

        public uint CountOwnedBy(ushort owner)
        {
            uint n = 0;
            for (uint i = 0; i < _frameCount; i++) if (_owner[i] == owner) n++;
            return n;
        }

        // Zeroes the frames at free-stack positions [first, first + count),
        // in DRAM too: zero and clean each, then one DSB for the batch; and
        // drops any instruction the previous owner left cached for them, so
        // the next one cannot execute it (one IC IALLUIS for the batch).
        private void Scrub(uint first, uint count)
        {
            if (_cache == null || count == 0) return;
            _cache.ZeroFrames(_base, _freeStack + first, (int)count);
            _cache.Barrier();
            _cache.InvalidateInstructions();
        }

        private FrameStatus Check(ulong address, out uint frame)
        {
            frame = 0;
            if ((address & (FrameSize - 1)) != 0) return FrameStatus.Misaligned;
            if (address < _base) return FrameStatus.OutOfRange;
            ulong index = (address - _base) >> FrameShift;
            if (index >= _frameCount) return FrameStatus.OutOfRange;
            frame = (uint)index;
            return FrameStatus.Ok;
        }
    }
}
