using System;

namespace Hypervisor.Devices
{
    // What a virtqueue operation found. Ok and Empty are the normal answers;
    // every other value names one way a driver (or, for Configure, a queue
    // set-up) can be wrong, so the hypervisor can say exactly what went wrong.
    public enum VirtqStatus : byte
    {
        Ok,
        Empty,                  // TryPop: the driver has made nothing new available
        NotReady,               // the queue is not configured

        // Configure
        BadSize,                // not a power of two in 1..MaxQueueSize
        DescMisaligned,         // descriptor table not 16-byte aligned
        AvailMisaligned,        // available ring not 2-byte aligned
        UsedMisaligned,         // used ring not 4-byte aligned
        DescNotRam,             // some byte of a ring is outside the VM's RAM
        AvailNotRam,
        UsedNotRam,
        RingsOverlap,           // two of the three rings share bytes

        // TryPop / PushUsed
        AvailIndexJump,         // avail.idx ran more than `size` entries ahead of us
        HeadOutOfRange,         // a head index >= size

        // ReadChain
        IndexOutOfRange,        // a `next` field >= size
        ChainTooLong,           // more than `size` descriptors: the chain loops
        Indirect,               // VIRTQ_DESC_F_INDIRECT, which we never offer
        BufferNotRam,           // [addr, addr+len) leaves RAM or wraps past 2^64
        BufferOverlapsRing,     // a buffer covers part of this queue's own rings
        ReadableAfterWritable,  // a device-readable buffer after a device-writable one
        TooManyBuffers,         // valid chain, but longer than the caller's span

        MemoryFault,            // GuestMemoryView refused an access it had allowed
    }

    // One buffer of a descriptor chain, checked: [Gpa, Gpa + Length) is RAM and
    // touches none of the queue's rings. DeviceWritable: the device fills it
    // (VIRTQ_DESC_F_WRITE); otherwise the device only reads it.
    public struct VirtqBuffer
    {
        public ulong Gpa;
        public uint Length;
        public bool DeviceWritable;
    }

    // Every malformed thing a driver did to one queue, by kind. Kept across
    // Reset, so a hypervisor summary still shows what a guest did before it
    // reset its device. Plain fields: an increment is one instruction.
    public struct VirtqCounters
    {
        public ulong ConfigureFailures;
        public ulong AvailIndexJumps, BadHeads;
        public ulong IndexOutOfRange, ChainTooLong, Indirect, BufferNotRam, BufferOverlapsRing;
        public ulong ReadableAfterWritable, TooManyBuffers, MemoryFaults;
        public ulong Popped, Used;     // the good path, for comparison

        // "malformed descriptor" total the summary prints.
        public ulong Malformed => AvailIndexJumps + BadHeads + IndexOutOfRange + ChainTooLong + Indirect
                                + BufferNotRam + BufferOverlapsRing + ReadableAfterWritable;
    }

    // A split virtqueue (virtio 1.x section 2.7) as the DEVICE sees it. The
    // driver owns three areas in guest RAM:
    //   descriptor table  size * 16 bytes: { le64 addr; le32 len; le16 flags; le16 next; }
    //   available ring    le16 flags; le16 idx; le16 ring[size]; le16 used_event
    //   used ring         le16 flags; le16 idx; { le32 id; le32 len; } ring[size]; le16 avail_event
    // The driver publishes chain heads in the available ring and bumps
    // avail.idx; the device takes them (TryPop), walks each chain (ReadChain),
    // and returns it through the used ring (PushUsed). The indices are
    // free-running 16-bit counters; the slot is idx % size.
    //
    // Everything the driver wrote is untrusted: each field is checked before
    // it is used, guest memory is only read inside ranges IsRam approved, and
    // a bad chain is reported, never followed. TryPop, ReadChain and PushUsed
    // run on the MMIO-notify exit path and allocate nothing.
    //
    // Ordering: the driver writes a ring entry, then avail.idx; the device
    // must read avail.idx before the entry, and write a used element before
    // used.idx. On real hardware with the guest running on another CPU the
    // device side needs a DMB ISHLD after reading avail.idx and a DMB ISH
    // between the used element and used.idx. Today the kernel's memory view is
    // coherent (normal cacheable memory, one inner-shareable domain) and the
    // guest's only vCPU is stopped while its exit is handled, so program order
    // is enough; the places where barriers belong are marked.
    public sealed class Virtqueue
    {
        public const int MaxQueueSize = 256;

        public const ushort DescFlagNext = 1, DescFlagWrite = 2, DescFlagIndirect = 4;
        private const ulong DescSize = 16;

        private readonly GuestMemoryView _memory;

        public bool Ready { get; private set; }
        public ushort Size { get; private set; }
        public ulong DescGpa { get; private set; }
        public ulong AvailGpa { get; private set; }
        public ulong UsedGpa { get; private set; }
        public ushort LastAvailIndex => _lastAvail;   // next avail.idx we will take
        public ushort UsedIndex => _usedIdx;          // what we last wrote to used.idx

        public VirtqCounters Counters;

        private ushort _lastAvail, _usedIdx;

        public Virtqueue(GuestMemoryView memory)
        {
            _memory = memory;
        }

        // Ring extents in bytes (without VIRTIO_F_EVENT_IDX the trailing
        // used_event/avail_event fields exist but are unused; we still count
        // them, as the spec sizes the areas with them).
        public static ulong DescBytes(uint size) => DescSize * size;
        public static ulong AvailBytes(uint size) => 6 + 2 * (ulong)size;
        public static ulong UsedBytes(uint size) => 6 + 8 * (ulong)size;

        // Takes the driver's queue set-up (QueueNum and the three addresses).
        // On any failure the queue stays not ready.
        public VirtqStatus Configure(uint size, ulong descGpa, ulong availGpa, ulong usedGpa)
        {
            Reset();
            VirtqStatus s = Check(size, descGpa, availGpa, usedGpa);
            if (s != VirtqStatus.Ok) { Counters.ConfigureFailures++; return s; }
            Size = (ushort)size;
            DescGpa = descGpa;
            AvailGpa = availGpa;
            UsedGpa = usedGpa;
            Ready = true;
            return VirtqStatus.Ok;
        }

        private VirtqStatus Check(uint size, ulong desc, ulong avail, ulong used)
        {
            // A power of two lets a free-running 16-bit index wrap cleanly
            // onto slot numbers (65536 is a multiple of every such size).
            if (size == 0 || size > MaxQueueSize || (size & (size - 1)) != 0) return VirtqStatus.BadSize;
            if ((desc & 15) != 0) return VirtqStatus.DescMisaligned;
            if ((avail & 1) != 0) return VirtqStatus.AvailMisaligned;
            if ((used & 3) != 0) return VirtqStatus.UsedMisaligned;
            if (!RangeIsRam(desc, DescBytes(size))) return VirtqStatus.DescNotRam;
            if (!RangeIsRam(avail, AvailBytes(size))) return VirtqStatus.AvailNotRam;
            if (!RangeIsRam(used, UsedBytes(size))) return VirtqStatus.UsedNotRam;
            // The device writes the used ring: if it overlapped the others we
            // would corrupt what the driver gave us (and read our own writes).
            if (Overlaps(desc, DescBytes(size), avail, AvailBytes(size))
                || Overlaps(desc, DescBytes(size), used, UsedBytes(size))
                || Overlaps(avail, AvailBytes(size), used, UsedBytes(size))) return VirtqStatus.RingsOverlap;
            return VirtqStatus.Ok;
        }

        // Back to "not configured"; counters are kept (see VirtqCounters).
        public void Reset()
        {
            Ready = false;
            Size = 0;
            DescGpa = AvailGpa = UsedGpa = 0;
            _lastAvail = _usedIdx = 0;
        }

        // The next chain head the driver made available. Ok: `head` is valid
        // (< Size) and consumed. Empty: nothing new. AvailIndexJump: avail.idx
        // claims more than Size new entries, impossible for a correct driver;
        // nothing is consumed, the caller should put the device into
        // DEVICE_NEEDS_RESET. HeadOutOfRange: the slot held a head >= Size; it
        // IS consumed (so one bad entry is reported once, not forever) and
        // returned in `head` for the log.
        public VirtqStatus TryPop(out ushort head)
        {
            head = 0;
            if (!Ready) return VirtqStatus.NotReady;
            if (!_memory.ReadU16(AvailGpa + 2, out ushort availIdx)) { Counters.MemoryFaults++; return VirtqStatus.MemoryFault; }
            ushort pending = (ushort)(availIdx - _lastAvail);   // wraps correctly at 65536
            if (pending == 0) return VirtqStatus.Empty;
            if (pending > Size) { Counters.AvailIndexJumps++; return VirtqStatus.AvailIndexJump; }
            // Barrier point (real SMP): DMB ISHLD here, so the ring entry is
            // not read before the avail.idx that published it.
            ulong slot = AvailGpa + 4 + 2 * (ulong)(_lastAvail & (Size - 1));
            if (!_memory.ReadU16(slot, out head)) { Counters.MemoryFaults++; return VirtqStatus.MemoryFault; }
            _lastAvail++;
            if (head >= Size) { Counters.BadHeads++; return VirtqStatus.HeadOutOfRange; }
            Counters.Popped++;
            return VirtqStatus.Ok;
        }

        // Walks the chain starting at `head` into `buffers`. Ok: `count`
        // buffers are filled, each checked as VirtqBuffer describes. On any
        // error `count` is 0 and the chain must not be used (the caller still
        // owns `head`: it should return it with PushUsed(head, 0) or ask for a
        // reset). The whole chain is checked even when `buffers` is full, so a
        // loop is reported as ChainTooLong, not hidden behind TooManyBuffers.
        //
        // Zero-length descriptors are accepted (the spec does not forbid them)
        // and their address is not checked: they cover no byte, so no check
        // could fail and device code that honours Length never touches them.
        public VirtqStatus ReadChain(ushort head, Span<VirtqBuffer> buffers, out int count)
        {
            count = 0;
            if (!Ready) return VirtqStatus.NotReady;
            Span<byte> raw = stackalloc byte[16];
            int stored = 0;
            bool sawWritable = false;
            ushort index = head;
            for (int walked = 0; ; walked++)
            {
                VirtqStatus s = ReadDescriptor(index, walked, raw);
                if (s != VirtqStatus.Ok) return s;
                ulong addr = GuestMemoryView.LoadU64(raw, 0);
                uint len = GuestMemoryView.LoadU32(raw, 8);
                ushort flags = GuestMemoryView.LoadU16(raw, 12);
                ushort next = GuestMemoryView.LoadU16(raw, 14);

                // INDIRECT needs VIRTIO_F_INDIRECT_DESC, which the transport
                // never offers: following it would be trusting a feature the
                // driver was told does not exist.
                if ((flags & DescFlagIndirect) != 0) { Counters.Indirect++; return VirtqStatus.Indirect; }
                bool writable = (flags & DescFlagWrite) != 0;
                // 2.7.4.2: readable (driver -> device) buffers come first.
                if (!writable && sawWritable) { Counters.ReadableAfterWritable++; return VirtqStatus.ReadableAfterWritable; }
                sawWritable |= writable;
                if (len != 0)
                {
                    if (!RangeIsRam(addr, len)) { Counters.BufferNotRam++; return VirtqStatus.BufferNotRam; }
                    if (OverlapsOwnRings(addr, len)) { Counters.BufferOverlapsRing++; return VirtqStatus.BufferOverlapsRing; }
                }
                if (stored < buffers.Length)
                {
                    buffers[stored].Gpa = addr;
                    buffers[stored].Length = len;
                    buffers[stored].DeviceWritable = writable;
                }
                stored++;
                if ((flags & DescFlagNext) == 0) break;
                index = next;
            }
            if (stored > buffers.Length) { Counters.TooManyBuffers++; return VirtqStatus.TooManyBuffers; }
            count = stored;
            return VirtqStatus.Ok;
        }

        // Reads descriptor `index` as the `walked`-th element of a chain.
        private VirtqStatus ReadDescriptor(ushort index, int walked, Span<byte> raw)
        {
            if (index >= Size) { Counters.IndexOutOfRange++; return VirtqStatus.IndexOutOfRange; }
            // A chain can hold at most Size distinct descriptors; one more
            // means some descriptor was visited twice, i.e. a loop (a->b->a,
            // or a descriptor whose next is itself). Counting is enough to
            // stop it: no "visited" bitmap, no allocation.
            if (walked >= Size) { Counters.ChainTooLong++; return VirtqStatus.ChainTooLong; }
            // Inside the descriptor table, which Configure checked is RAM.
            if (!_memory.Read(DescGpa + DescSize * index, raw)) { Counters.MemoryFaults++; return VirtqStatus.MemoryFault; }
            return VirtqStatus.Ok;
        }

        // Returns a chain to the driver: used.ring[usedIdx % size] = { head,
        // writtenBytes }, then used.idx + 1. `writtenBytes` is how much the
        // device wrote into the chain's writable buffers (0 for none).
        public VirtqStatus PushUsed(ushort head, uint writtenBytes)
        {
            if (!Ready) return VirtqStatus.NotReady;
            if (head >= Size) { Counters.BadHeads++; return VirtqStatus.HeadOutOfRange; }
            ulong element = UsedGpa + 4 + 8 * (ulong)(_usedIdx & (Size - 1));
            if (!_memory.WriteU32(element, head) || !_memory.WriteU32(element + 4, writtenBytes))
            {
                Counters.MemoryFaults++;
                return VirtqStatus.MemoryFault;
            }
            // The element must be visible before the index that publishes it:
            // a driver that sees the new used.idx reads the element at once.
            // Barrier point (real SMP): DMB ISH here. The kernel's view is
            // coherent and the guest's vCPU is stopped meanwhile, so program
            // order is enough today.
            ushort nextIdx = (ushort)(_usedIdx + 1);
            if (!_memory.WriteU16(UsedGpa + 2, nextIdx)) { Counters.MemoryFaults++; return VirtqStatus.MemoryFault; }
            _usedIdx = nextIdx;
            Counters.Used++;
            return VirtqStatus.Ok;
        }

        // Explicit overflow check before asking the view, so even a view with
        // a sloppy IsRam can never be handed a range that wraps past 2^64.
        private bool RangeIsRam(ulong gpa, ulong length)
        {
            if (length == 0 || gpa + length < gpa) return false;
            return _memory.IsRam(gpa, length);
        }

        private bool OverlapsOwnRings(ulong gpa, ulong length) =>
            Overlaps(gpa, length, DescGpa, DescBytes(Size))
            || Overlaps(gpa, length, AvailGpa, AvailBytes(Size))
            || Overlaps(gpa, length, UsedGpa, UsedBytes(Size));

        // Two non-empty ranges that do not wrap (both were RAM-checked) share
        // a byte exactly when each starts before the other ends.
        private static bool Overlaps(ulong a, ulong aLength, ulong b, ulong bLength) =>
            a < b + bLength && b < a + aLength;
    }
}
