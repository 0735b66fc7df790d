using System;

namespace Hypervisor.Mm
{
    // What a batch of stage-2 unmaps needs from the rest of the hypervisor:
    // the TLB maintenance that makes the unmapped pages unreachable from
    // every CPU, and the frame allocator.
    public abstract class BatchSink
    {
        // Mid-batch: what the batch unmapped so far is gone from every TLB
        // once this returns (DSB ISH, TLBI VMALLE1IS, DSB ISH).
        public abstract void FlushSoFar();
        // The batch's last maintenance: the same, and the batch is over.
        public abstract void FlushAndEnd();
        // Gives the frames back to the host; returns how many it took.
        public abstract int Free(ReadOnlySpan<ulong> frames);
    }

    // Frames whose last stage-2 mapping a batch removed wait here, and are
    // freed only after the batch's TLB maintenance has completed. Until then
    // a vCPU of the VM on another CPU may still reach a frame through a
    // combined stage-1+2 TLB entry (the per-page TLBI IPAS2E1IS does not
    // remove those; the final TLBI VMALLE1IS does), and a frame freed
    // earlier could already belong to another VM. So: every Free comes after
    // a flush that covers every frame it frees. Host tests record the order
    // (tests/Unit/UnmapBatchTests.cs).
    public sealed class UnmapBatch
    {
        private readonly ulong[] _frames;
        private int _count;

        public UnmapBatch(int capacity) => _frames = new ulong[capacity];

        public int Held => _count;

        // Holds the frames until Finish. A batch larger than the buffer
        // completes its maintenance early and frees what it held first.
        // Returns how many frames it took (all of them).
        // (The balloon holds every frame it takes back here, a request at a
        // time, so the copy is a plain pointer loop: checking the buffer and
        // both bounds for each frame cost 17 instructions a page.)
        public unsafe int Hold(ReadOnlySpan<ulong> frames, BatchSink sink)
        {
            // LAB 6 BEGIN UnmapBatch.Hold | return 0;
            int taken = 0;
            while (taken < frames.Length)
            {
                if (_count == _frames.Length)
                {
                    sink.FlushSoFar();
                    FreeHeld(sink);
                }
                int n = frames.Length - taken;
                if (n > _frames.Length - _count) n = _frames.Length - _count;
                fixed (ulong* from = frames)
                fixed (ulong* to = _frames)
                {
                    ulong* source = from + taken, destination = to + _count;
                    for (int i = 0; i < n; i++) destination[i] = source[i];
                }
                _count += n;
                taken += n;
            }
            return frames.Length;
            // LAB 6 END
        }

        // The batch's end: its TLB maintenance, then the frames. Returns how
        // many frames the host took back.
        public int Finish(BatchSink sink)
        {
            // LAB 6 BEGIN UnmapBatch.Finish | return 0;
            sink.FlushAndEnd();
            return FreeHeld(sink);
            // LAB 6 END
        }

        private int FreeHeld(BatchSink sink)
        {
            if (_count == 0) return 0;
            int freed = sink.Free(new ReadOnlySpan<ulong>(_frames).Slice(0, _count));
            _count = 0;
            return freed;
        }
    }
}
