using System;
using System.Collections.Generic;
using Hypervisor.Mm;
using Xunit;

namespace Hypervisor.Tests.Unit
{
    // A write-back data cache in front of DRAM, as far as the coherency rule
    // (kernel/Mm/Coherency.cs) needs it. The memory the code under test
    // writes is "the cache": what the CPU reads. DRAM is a separate copy that
    // changes only when a clean of a line is completed by a barrier, so it is
    // what a guest with its MMU off, or an MMU walking non-cacheably, would
    // read. A write with no clean of its line, a clean before the write, or a
    // clean with no barrier after it leaves DRAM different from memory, and
    // AssertInDram says where.
    internal sealed class CacheModel : CacheMaintenance
    {
        public const ulong Line = 64;

        private readonly Func<ulong, ulong> _readThroughCache;            // 8-byte word -> what the CPU reads
        private readonly Dictionary<ulong, ulong> _dram = new Dictionary<ulong, ulong>();   // absent: 0, as a scrubbed frame
        private readonly List<(ulong Word, ulong Value)> _cleaning = new List<(ulong, ulong)>();
        private readonly List<ulong> _zeroing = new List<ulong>();

        // Frames zeroed and cleaned with the barrier after it, since the test
        // last called Dirty for them; and of those, the ones whose old
        // instructions were invalidated after that.
        public readonly HashSet<ulong> FramesZeroInDram = new HashSet<ulong>();
        public readonly HashSet<ulong> FramesWithoutOldInstructions = new HashSet<ulong>();
        public readonly List<string> Operations = new List<string>();
        public Action<ulong> OnZeroFrame;                                 // a test's own checks, per frame

        public CacheModel(Func<ulong, ulong> readThroughCache) { _readThroughCache = readThroughCache; }

        public static unsafe CacheModel OverHostMemory() => new CacheModel(a => *(ulong*)a);

        // DRAM holds what memory holds now (a buffer's contents before the test).
        public void Seed(ulong address, ulong length)
        {
            for (ulong w = address & ~7UL; w < address + length; w += 8) _dram[w] = _readThroughCache(w);
        }

        public void Dirty(ulong frame)
        {
            FramesZeroInDram.Remove(frame);
            FramesWithoutOldInstructions.Remove(frame);
        }

        public ulong Dram(ulong word) => _dram.TryGetValue(word, out ulong v) ? v : 0;

        public override unsafe void ZeroFrames(ulong baseAddress, uint* frameNumbers, int count)
        {
            for (int i = 0; i < count; i++)
            {
                ulong frame = baseAddress + ((ulong)frameNumbers[i] << 12);
                OnZeroFrame?.Invoke(frame);
                _zeroing.Add(frame);
                Operations.Add($"zero+clean {frame:x}");
            }
        }

        public override void CleanInvalidate(ulong address, ulong length)
        {
            Operations.Add($"clean+invalidate {address:x}+{length}");
            if (length == 0) return;
            for (ulong line = address & ~(Line - 1); line < address + length; line += Line) Clean(line);
        }

        public override void CleanEntry(ulong address)
        {
            Assert.True(address % 8 == 0, $"clean of an unaligned entry at {address:x}");
            Operations.Add($"clean {address:x}");
            Clean(address & ~(Line - 1));
        }

        // The line's contents now are what reaches DRAM when a barrier completes the clean.
        private void Clean(ulong line)
        {
            for (ulong w = line; w < line + Line; w += 8) _cleaning.Add((w, _readThroughCache(w)));
        }

        public override void Barrier()
        {
            Operations.Add("barrier");
            foreach (var (word, value) in _cleaning) _dram[word] = value;
            _cleaning.Clear();
            foreach (ulong frame in _zeroing)
            {
                for (ulong w = frame; w < frame + 4096; w += 8) _dram.Remove(w);
                FramesZeroInDram.Add(frame);
            }
            _zeroing.Clear();
        }

        public override void InvalidateInstructions()
        {
            Assert.True(_cleaning.Count == 0 && _zeroing.Count == 0, "instruction caches invalidated before the cleans completed");
            Operations.Add("ic ialluis");
            FramesWithoutOldInstructions.UnionWith(FramesZeroInDram);
        }

        // Every word given reads the same from DRAM as through the cache.
        public void AssertInDram(IEnumerable<ulong> words, string when)
        {
            foreach (ulong w in words)
            {
                ulong cached = _readThroughCache(w), dram = Dram(w);
                Assert.True(cached == dram, $"{when}: {w:x} holds {cached:x} but DRAM still {dram:x}");
            }
        }

        public void AssertInDram(ulong address, ulong length, string when)
        {
            var words = new List<ulong>();
            for (ulong w = address & ~7UL; w < address + length; w += 8) words.Add(w);
            AssertInDram(words, when);
        }
    }
}
