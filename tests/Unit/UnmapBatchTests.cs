using System;
using System.Collections.Generic;
using System.Linq;
using Hypervisor.Mm;
using Xunit;

namespace Hypervisor.Tests.Unit
{
    // A frame unmapped in a balloon batch is freed only after TLB maintenance
    // that covers it has completed (kernel/Mm/UnmapBatch.cs): QEMU forgives
    // the other order, real CPUs do not, so a recording sink checks it.
    public class UnmapBatchTests
    {
        private sealed class RecordingSink : BatchSink
        {
            public readonly List<string> Events = new List<string>();
            private readonly HashSet<ulong> _unflushed = new HashSet<ulong>();
            public readonly List<ulong> Freed = new List<ulong>();
            public int FreedBeforeFlush;

            // What the batch unmapped, as the caller would before Hold.
            public void Unmapped(IEnumerable<ulong> frames) { foreach (ulong f in frames) _unflushed.Add(f); }

            public override void FlushSoFar() { Events.Add("flush"); _unflushed.Clear(); }
            public override void FlushAndEnd() { Events.Add("flush-end"); _unflushed.Clear(); }

            public override int Free(ReadOnlySpan<ulong> frames)
            {
                Events.Add("free " + frames.Length);
                foreach (ulong f in frames)
                {
                    if (_unflushed.Contains(f)) FreedBeforeFlush++;
                    Freed.Add(f);
                }
                return frames.Length;
            }
        }

        private static ulong[] Frames(int first, int count) => Enumerable.Range(first, count).Select(i => 0x4000_0000UL + (ulong)i * 4096).ToArray();

        [Fact]
        public void FramesAreFreedOnlyAfterTheBatchsFinalFlush()
        {
            var batch = new UnmapBatch(64);
            var sink = new RecordingSink();
            for (int run = 0; run < 3; run++)
            {
                ulong[] f = Frames(run * 10, 10);
                sink.Unmapped(f);
                Assert.Equal(10, batch.Hold(f, sink));
                Assert.Empty(sink.Freed);                        // nothing freed while the batch runs
            }
            Assert.Equal(30, batch.Finish(sink));
            Assert.Equal(new[] { "flush-end", "free 30" }, sink.Events);
            Assert.Equal(0, sink.FreedBeforeFlush);
            Assert.Equal(Frames(0, 30), sink.Freed);
            Assert.Equal(0, batch.Held);
        }

        // More frames than the buffer holds: the maintenance so far completes
        // first, then what was held is freed, then the batch goes on.
        [Fact]
        public void AFullBufferFlushesBeforeItFrees()
        {
            var batch = new UnmapBatch(16);
            var sink = new RecordingSink();
            ulong[] f = Frames(0, 40);
            sink.Unmapped(f.Take(16));
            batch.Hold(f.AsSpan(0, 16), sink);
            sink.Unmapped(f.Skip(16));
            Assert.Equal(24, batch.Hold(f.AsSpan(16), sink));
            batch.Finish(sink);
            Assert.Equal(new[] { "flush", "free 16", "flush", "free 16", "flush-end", "free 8" }, sink.Events);
            Assert.Equal(0, sink.FreedBeforeFlush);
            Assert.Equal(f, sink.Freed);
        }

        [Fact]
        public void AnEmptyBatchStillEndsItsMaintenance()
        {
            var batch = new UnmapBatch(8);
            var sink = new RecordingSink();
            Assert.Equal(0, batch.Finish(sink));
            Assert.Equal(new[] { "flush-end" }, sink.Events);
        }
    }
}
