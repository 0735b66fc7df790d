using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using Hypervisor.Paging;
using Hypervisor.Trap;
using Xunit;

namespace Hypervisor.Tests.Unit
{
    // MmuUpdate's apply phase (kernel/Paging/DirectBatch.cs) on two pinned
    // tables in host memory, against the cache model: at every TLBI and when
    // the batch returns, DRAM holds every entry written so far, so an MMU
    // walking non-cacheably finds what the checked batch said.
    public unsafe class DirectBatchTests : IDisposable
    {
        private readonly ulong _tables;
        private readonly CacheModel _cache = CacheModel.OverHostMemory();
        private readonly RecordingTables _recorder;

        private sealed class RecordingTables : DirectTables
        {
            private readonly DirectBatchTests _test;
            public readonly List<(ulong Entry, ulong Old, ulong Value)> Replacements = new List<(ulong, ulong, ulong)>();

            public RecordingTables(DirectBatchTests test) { _test = test; }

            public override void Replaced(ulong entry, ulong old, ulong value) => Replacements.Add((entry, old, value));

            public override void InvalidateVa(ulong va) => _test.Tlbi($"tlbi va {va:x}");
            public override void InvalidateAll() => _test.Tlbi("tlbi all");
        }

        public DirectBatchTests()
        {
            _tables = (ulong)NativeMemory.AlignedAlloc(2 * 4096, 4096);
            for (ulong i = 0; i < 2 * 512; i++) *(ulong*)(_tables + i * 8) = 0x4000_0000 + i * 0x1000 + 3;   // the old entries
            _cache.Seed(_tables, 2 * 4096);
            _recorder = new RecordingTables(this);
        }

        public void Dispose() => NativeMemory.AlignedFree((void*)_tables);

        private void Tlbi(string what)
        {
            _cache.AssertInDram(_tables, 2 * 4096, what);
            _cache.Operations.Add(what);
        }

        private ulong Entry(int table, int index) => _tables + (ulong)table * 4096 + (ulong)index * 8;

        private ulong Apply(params ulong[] requests)
        {
            ulong writes = DirectBatch.Apply(requests, _recorder, _cache);
            _cache.AssertInDram(_tables, 2 * 4096, "when the batch returns");
            return writes;
        }

        [Fact]
        public void EachEntryIsStoredThenCleanedAndABarrierPrecedesEveryTlbiAndTheReturn()
        {
            const ulong Va = 0x7f_1234_5000;
            ulong writes = Apply(
                Entry(0, 5), 0x4100_0003,
                Entry(0, 6), 0,
                Va | HypercallAbi.Update.InvalidateVa, Va,
                Entry(1, 511), 0x4200_0443,
                HypercallAbi.Update.InvalidateAll, 0,
                Entry(1, 0), 0x4300_0003);

            Assert.Equal(4UL, writes);
            Assert.Equal(0x4100_0003UL, *(ulong*)Entry(0, 5));
            Assert.Equal(0x4300_0003UL, *(ulong*)Entry(1, 0));
            Assert.Equal(new[]
            {
                $"clean {Entry(0, 5):x}", $"clean {Entry(0, 6):x}", "barrier", $"tlbi va {Va:x}",
                $"clean {Entry(1, 511):x}", "barrier", "tlbi all",
                $"clean {Entry(1, 0):x}", "barrier",
            }, _cache.Operations);
        }

        [Fact]
        public void TheCountsSeeTheOldAndNewValueOfEveryEntry()
        {
            ulong old = *(ulong*)Entry(0, 9);
            Apply(Entry(0, 9), 0x4400_0003, Entry(0, 9), 0);
            Assert.Equal(new[] { (Entry(0, 9), old, 0x4400_0003UL), (Entry(0, 9), 0x4400_0003UL, 0UL) }, _recorder.Replacements);
        }

        // A full batch, as a guest's boot map sends them: every line it
        // touched reaches DRAM.
        [Fact]
        public void AFullBatchOfWritesIsInDram()
        {
            var requests = new ulong[2 * 256];
            for (int i = 0; i < 256; i++)
            {
                requests[2 * i] = Entry(1, 2 * i + 1);
                requests[2 * i + 1] = 0x5000_0000 + (ulong)i * 0x1000 + 0x743;
            }
            Assert.Equal(256UL, Apply(requests));
        }
    }
}
