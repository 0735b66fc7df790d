using System;
using System.Collections.Generic;
using Hypervisor.Arch;
using Hypervisor.Mm;
using Xunit;

namespace Hypervisor.Tests.Unit
{
    // Physical memory for table code: a sparse dictionary of 64-bit words.
    // Table frames come from a counter far away from everything else, and
    // every allocation, free and write is recorded.
    internal sealed class FakeTableMemory : PageTableMemory
    {
        public const ulong RootAddress = 0x7000_0000;      // 8 KiB, 8 KiB aligned
        private ulong _nextTable = 0x10_0000_0000;          // 64 GiB and up

        public readonly Dictionary<ulong, ulong> Words = new Dictionary<ulong, ulong>();
        public readonly HashSet<ulong> LiveTables = new HashSet<ulong>();
        public readonly List<(ulong Address, ulong Value)> Writes = new List<(ulong, ulong)>();
        public int Allocations;
        public int Frees;
        public int FramesLeft = int.MaxValue;

        public override ulong Read64(ulong physicalAddress)
        {
            Assert.True(physicalAddress % 8 == 0, $"unaligned read at {physicalAddress:x}");
            return Words.TryGetValue(physicalAddress, out ulong v) ? v : 0;
        }

        public override void Write64(ulong physicalAddress, ulong value)
        {
            Assert.True(physicalAddress % 8 == 0, $"unaligned write at {physicalAddress:x}");
            Words[physicalAddress] = value;
            Writes.Add((physicalAddress, value));
        }

        public override ulong AllocateTable()
        {
            if (FramesLeft == 0) return 0;
            FramesLeft--;
            ulong frame = _nextTable;
            _nextTable += 4096;
            Allocations++;
            LiveTables.Add(frame);
            return frame;   // never used before, so it reads as zeros
        }

        public override void FreeTable(ulong physicalAddress)
        {
            Assert.True(LiveTables.Remove(physicalAddress), $"free of {physicalAddress:x}, not a live table");
            Frees++;
            // Poison the frame: a walker that still used it would see garbage.
            for (ulong a = physicalAddress; a < physicalAddress + 4096; a += 8) Words[a] = 0xdead_0000_0000_0001;
        }

        public List<ulong> WritesTo(ulong address)
        {
            var values = new List<ulong>();
            foreach (var w in Writes) if (w.Address == address) values.Add(w.Value);
            return values;
        }
    }

    // Records each TLB invalidation together with what a walk of that IPA
    // would find at that moment, and how many writes had happened, so tests
    // can check the break-before-make order.
    internal sealed class RecordingTlb : TlbMaintenance
    {
        public struct Call
        {
            public ulong Ipa;
            public int WritesBefore;
            public Stage2Status StatusAtCall;
            public ulong DescriptorAtCall;
            public int LevelAtCall;
            public bool MayWait;        // Unmapped: may complete at a batch's end
        }

        public Stage2Table Table;
        public FakeTableMemory Memory;
        public readonly List<Call> Calls = new List<Call>();

        public override void InvalidateIpa(ulong ipa) => Record(ipa, false);
        public override void Unmapped(ulong ipa) => Record(ipa, true);

        private void Record(ulong ipa, bool mayWait)
        {
            var status = Table.Translate(ipa, out _, out ulong descriptor, out int level);
            Calls.Add(new Call { Ipa = ipa, WritesBefore = Memory.Writes.Count, StatusAtCall = status, DescriptorAtCall = descriptor, LevelAtCall = level, MayWait = mayWait });
        }
    }

    public class Stage2Tests
    {
        private const ulong Ipa = 0x4000_0000;
        private const ulong Pa = 0x8_1234_5000;
        private const ulong BlockPa = 0x8_0000_0000;

        private readonly FakeTableMemory _memory = new FakeTableMemory();
        private readonly RecordingTlb _tlb = new RecordingTlb();
        private readonly Stage2Table _table;

        public Stage2Tests()
        {
            _table = new Stage2Table(_memory, _tlb, FakeTableMemory.RootAddress);
            _tlb.Table = _table;
            _tlb.Memory = _memory;
        }

        [Fact]
        public void MappedPageTranslatesWithItsOffset()
        {
            Assert.Equal(Stage2Status.Ok, _table.Map4K(Ipa, Pa, Stage2.NormalReadWrite));
            Assert.Equal(Stage2Status.Ok, _table.Translate(Ipa + 0x123, out ulong pa, out ulong d, out int level));
            Assert.Equal(Pa + 0x123, pa);
            Assert.Equal(3, level);
            Assert.Equal(Stage2.Page(Pa, Stage2.NormalReadWrite), d);
            Assert.Equal(2UL, _table.TablesAllocated);   // a level-2 and a level-3 table under the level-1 root
            Assert.Equal(1UL, _table.LivePages);
            Assert.Empty(_tlb.Calls);                    // invalid -> valid needs no TLB maintenance

            Assert.Equal(Stage2Status.NotMapped, _table.Translate(Ipa + 0x1000, out _, out _, out level));
            Assert.Equal(3, level);
            Assert.Equal(Stage2Status.NotMapped, _table.Translate(0x1_0000_0000, out _, out _, out level));
            Assert.Equal(1, level);
        }

        // HostAddress is Translate without the bookkeeping: the same answer
        // for pages, blocks, holes and addresses beyond the IPA space.
        [Fact]
        public void HostAddressAgreesWithTranslate()
        {
            Assert.Equal(Stage2Status.Ok, _table.Map4K(Ipa + 0x3000, Pa, Stage2.NormalReadWrite));
            Assert.Equal(Stage2Status.Ok, _table.Map2M(Ipa + Stage2Table.BlockSize, BlockPa, Stage2.NormalReadWrite));
            ulong[] probes =
            {
                Ipa + 0x3000, Ipa + 0x3abc, Ipa + 0x4000, Ipa, Ipa + Stage2Table.BlockSize + 0x12345,
                Ipa + 2 * Stage2Table.BlockSize - 1, Ipa + 2 * Stage2Table.BlockSize, 0, _table.IpaLimit - 1, _table.IpaLimit, ulong.MaxValue,
            };
            foreach (ulong ipa in probes)
            {
                ulong expected = _table.Translate(ipa, out ulong pa, out _, out _) == Stage2Status.Ok ? pa : 0;
                Assert.Equal(expected, _table.HostAddress(ipa));
            }
            Assert.Equal(Pa + 0xabc, _table.HostAddress(Ipa + 0x3abc));
            Assert.Equal(BlockPa + 0x12345, _table.HostAddress(Ipa + Stage2Table.BlockSize + 0x12345));
        }

        [Fact]
        public void UnmapPagesTakesARunWithOneWalkAndBreakBeforeMake()
        {
            for (int i = 0; i < 10; i++)
                if (i != 4) Assert.Equal(Stage2Status.Ok, _table.Map4K(Ipa + (ulong)i * 4096, Pa + (ulong)i * 0x10000, Stage2.NormalReadWrite));
            _tlb.Calls.Clear();
            var pas = new ulong[64];
            Assert.Equal(10, _table.UnmapPages(Ipa, 10, pas, out int withFrames));
            Assert.Equal(9, withFrames);                        // page 4 had none
            for (int i = 0; i < 10; i++)
                Assert.Equal(i == 4 ? 0UL : Pa + (ulong)i * 0x10000, pas[i]);
            Assert.Equal(9, _tlb.Calls.Count);                 // one invalidation per page that was mapped
            Assert.All(_tlb.Calls, c => Assert.Equal(Stage2Status.NotMapped, c.StatusAtCall));   // entry already invalid
            Assert.All(_tlb.Calls, c => Assert.True(c.MayWait));   // pure unmaps: a batch may complete them at its end
            Assert.All(_tlb.Calls, c => Assert.Equal(_memory.Writes.Count, c.WritesBefore));   // the run's writes all come first (one barrier)
            Assert.Equal(0UL, _table.LivePages);
            Assert.Equal(Stage2Status.NotMapped, _table.Translate(Ipa + 3 * 4096, out _, out _, out _));
            // A run stops at the end of its level-3 table and at the caller's span.
            Assert.Equal(Stage2Status.Ok, _table.Map4K(Ipa + 511 * 4096, Pa, Stage2.NormalReadWrite));
            Assert.Equal(1, _table.UnmapPages(Ipa + 511 * 4096, 5, pas, out withFrames));
            Assert.Equal(Pa, pas[0]);
            Assert.Equal(1, withFrames);
            Assert.Equal(3, _table.UnmapPages(Ipa, 100, new ulong[3], out withFrames));
            Assert.Equal(0, withFrames);
            // Where no table exists every page is unmapped already: one walk
            // covers the invalid entry's whole region, up to the caller's span.
            _tlb.Calls.Clear();
            var none = new ulong[600];
            Array.Fill(none, 0xdeadUL);
            Assert.Equal(511, _table.UnmapPages(Ipa + 4 * Stage2Table.BlockSize + 4096, 100_000, none, out withFrames));   // to the 2 MiB's end
            Assert.All(none.AsSpan(0, 511).ToArray(), f => Assert.Equal(0UL, f));
            Assert.Equal(0xdeadUL, none[511]);
            Assert.Equal(0, withFrames);
            Assert.Equal(600, _table.UnmapPages(Ipa + Stage2Table.HugeBlockSize + 4096, 100_000, none, out withFrames));   // no table in this 1 GiB
            Assert.All(none, f => Assert.Equal(0UL, f));
            Assert.Equal(7, _table.UnmapPages(Ipa + Stage2Table.HugeBlockSize, 7, none, out _));   // and never past `count`
            Assert.Empty(_tlb.Calls);
        }

        // Fault-around: one pass over a window maps a frame into every empty
        // entry. Valid entries are never replaced (so no TLB work), and a
        // frame that did not go in is reported back to the caller.
        [Fact]
        public void FaultAroundFillsOnlyEmptyEntries()
        {
            Assert.Equal(Stage2Status.Ok, _table.Map4K(Ipa + 2 * 4096, Pa, Stage2.NormalReadWrite));
            var frames = new ulong[8];
            for (int i = 0; i < 8; i++) frames[i] = i != 5 ? 0x9_0000_0000 + (ulong)i * 4096 : 0;
            frames[2] = 0x9_9999_9000;                          // a frame for a page that is mapped: must come back
            Assert.Equal(Stage2Status.Ok, _table.FillEmptyPages(Ipa, frames, Stage2.NormalReadWrite, out ulong mapped, out int pagesMapped));
            Assert.Equal(0b1101_1011UL, mapped);                  // not page 2 (mapped), not page 5 (no frame)
            Assert.Equal(6, pagesMapped);
            Assert.Empty(_tlb.Calls);
            Assert.Equal(7UL, _table.LivePages);
            Assert.Equal(Stage2Status.Ok, _table.Translate(Ipa + 2 * 4096, out ulong pa, out _, out _));
            Assert.Equal(Pa, pa);                                 // the old mapping stands
            Assert.Equal(Stage2Status.Ok, _table.Translate(Ipa + 7 * 4096, out pa, out _, out _));
            Assert.Equal(0x9_0000_7000UL, pa);
            Assert.Equal(Stage2Status.Ok, _table.Translate(Ipa + 7 * 4096, out _, out ulong leaf, out _));
            Assert.Equal(Stage2.Page(0x9_0000_7000, Stage2.NormalReadWrite), leaf);   // the entry Map4K would write
            Assert.Equal(Stage2Status.NotMapped, _table.Translate(Ipa + 5 * 4096, out _, out _, out _));
            // A frame that is not page aligned, or beyond the output range, is refused.
            Assert.Equal(Stage2Status.Ok, _table.FillEmptyPages(Ipa + 8 * 4096, new ulong[] { 0x9_0000_0800, 1UL << 48, 0x9_0001_0000 }, Stage2.NormalReadWrite, out ulong refused, out pagesMapped));
            Assert.Equal(0b100UL, refused);
            Assert.Equal(1, pagesMapped);

            // A window must lie in one level-3 table and hold at most 64 pages.
            Assert.Equal(Stage2Status.Misaligned, _table.FillEmptyPages(Ipa + 510 * 4096, new ulong[4] { Pa, Pa, Pa, Pa }, Stage2.NormalReadWrite, out mapped, out _));
            Assert.Equal(0UL, mapped);
            Assert.Equal(Stage2Status.Misaligned, _table.FillEmptyPages(Ipa, new ulong[65], Stage2.NormalReadWrite, out _, out _));
            // Where no level-3 table exists yet, it is made.
            Assert.Equal(Stage2Status.Ok, _table.FillEmptyPages(Ipa + 8 * Stage2Table.BlockSize, new ulong[] { Pa, 0 }, Stage2.NormalReadWrite, out mapped, out _));
            Assert.Equal(1UL, mapped);
            Assert.Equal(Pa, _table.HostAddress(Ipa + 8 * Stage2Table.BlockSize));
            // Inside a block every page is mapped already: nothing goes in.
            Assert.Equal(Stage2Status.Ok, _table.Map2M(Ipa + Stage2Table.BlockSize, BlockPa, Stage2.NormalReadWrite));
            Assert.Equal(Stage2Status.Ok, _table.FillEmptyPages(Ipa + Stage2Table.BlockSize, new ulong[] { Pa, Pa + 4096 }, Stage2.NormalReadWrite, out mapped, out _));
            Assert.Equal(0UL, mapped);
            Assert.Equal(BlockPa, _table.HostAddress(Ipa + Stage2Table.BlockSize));
        }

        [Fact]
        public void BadArgumentsAreRefused()
        {
            Assert.Equal(Stage2Status.Misaligned, _table.Map4K(Ipa + 8, Pa, Stage2.NormalReadWrite));
            Assert.Equal(Stage2Status.Misaligned, _table.Map4K(Ipa, Pa + 8, Stage2.NormalReadWrite));
            Assert.Equal(Stage2Status.Misaligned, _table.Map2M(Ipa + 0x1000, BlockPa, Stage2.NormalReadWrite));
            Assert.Equal(Stage2Status.IpaOutOfRange, _table.Map4K(1UL << 40, Pa, Stage2.NormalReadWrite));
            Assert.Equal(Stage2Status.OutputOutOfRange, _table.Map4K(Ipa, 1UL << 48, Stage2.NormalReadWrite));
            Assert.Equal(Stage2Status.IpaOutOfRange, _table.Translate(1UL << 40, out _, out _, out int level));
            Assert.Equal(0, level);
            Assert.Empty(_memory.Writes);
        }

        [Fact]
        public void RootIsTwoConcatenatedTablesIndexedByIpaBits39To30()
        {
            ulong high = 0xC0_0000_0000;   // IPA bits [39:30] = 768: entry 256 of the second 4 KiB table
            Assert.Equal(Stage2Status.Ok, _table.Map4K(high, Pa, Stage2.NormalReadWrite));
            Span<TranslationStep> steps = stackalloc TranslationStep[8];
            Assert.Equal(3, _table.Walk(high, steps));
            Assert.Equal(1, steps[0].Level);
            Assert.Equal(FakeTableMemory.RootAddress, steps[0].TableAddress);
            Assert.Equal(768, steps[0].Index);
            Assert.Equal(FakeTableMemory.RootAddress + 0x1800, steps[0].EntryAddress);
            Assert.Equal(2, steps[1].Level);
            Assert.Equal(Descriptor.TableAddress(steps[0].Descriptor), steps[1].TableAddress);
            Assert.Equal(3, steps[2].Level);
            Assert.Equal(Stage2.Page(Pa, Stage2.NormalReadWrite), steps[2].Descriptor);
            for (int i = 0; i < 3; i++) Assert.Equal(2, steps[i].Stage);
        }

        [Fact]
        public void RemappingALiveEntryIsBreakBeforeMake()
        {
            const ulong other = 0x9_0000_0000;
            Assert.Equal(Stage2Status.Ok, _table.Map4K(Ipa, Pa, Stage2.NormalReadWrite));
            Span<TranslationStep> steps = stackalloc TranslationStep[3];
            _table.Walk(Ipa, steps);
            ulong entry = steps[2].EntryAddress;
            int writesBefore = _memory.Writes.Count;

            Assert.Equal(Stage2Status.Ok, _table.Map4K(Ipa, other, Stage2.NormalReadOnly));

            var call = Assert.Single(_tlb.Calls);
            Assert.Equal(Ipa, call.Ipa);
            Assert.Equal(Stage2Status.NotMapped, call.StatusAtCall);   // invalid when the TLB was invalidated
            Assert.Equal(3, call.LevelAtCall);
            Assert.Equal(0UL, call.DescriptorAtCall);
            // Exactly: invalid written, then the TLBI, then the new entry.
            Assert.Equal(writesBefore + 2, _memory.Writes.Count);
            Assert.Equal((entry, 0UL), _memory.Writes[writesBefore]);
            Assert.Equal(writesBefore + 1, call.WritesBefore);
            Assert.Equal((entry, Stage2.Page(other, Stage2.NormalReadOnly)), _memory.Writes[writesBefore + 1]);

            Assert.Equal(Stage2Status.Ok, _table.Translate(Ipa, out ulong pa, out ulong d, out _));
            Assert.Equal(other, pa);
            Assert.Equal(Stage2Access.ReadOnly, Stage2.Access(d));
            Assert.Equal(1UL, _table.LivePages);
        }

        [Fact]
        public void MappingTheSameValueAgainTouchesNothing()
        {
            _table.Map4K(Ipa, Pa, Stage2.NormalReadWrite);
            int writes = _memory.Writes.Count;
            Assert.Equal(Stage2Status.Ok, _table.Map4K(Ipa, Pa, Stage2.NormalReadWrite));
            Assert.Equal(writes, _memory.Writes.Count);
            Assert.Empty(_tlb.Calls);
        }

        [Fact]
        public void UnmapReturnsThePaAndTheIpaThenFaults()
        {
            _table.Map4K(Ipa, Pa, Stage2.NormalReadWrite);
            _table.Map4K(Ipa + 0x1000, Pa + 0x1000, Stage2.NormalReadWrite);

            Assert.Equal(Stage2Status.Ok, _table.Unmap4K(Ipa, out ulong pa));
            Assert.Equal(Pa, pa);
            var call = Assert.Single(_tlb.Calls);
            Assert.Equal(Ipa, call.Ipa);
            Assert.Equal(Stage2Status.NotMapped, call.StatusAtCall);
            Assert.Equal(Stage2Status.NotMapped, _table.Translate(Ipa, out _, out _, out int level));
            Assert.Equal(3, level);
            Assert.Equal(Stage2Status.Ok, _table.Translate(Ipa + 0x1000, out pa, out _, out _));
            Assert.Equal(Pa + 0x1000, pa);
            Assert.Equal(1UL, _table.LivePages);

            Assert.Equal(Stage2Status.NotMapped, _table.Unmap4K(Ipa, out pa));
            Assert.Equal(0UL, pa);
            ulong tables = _table.TablesAllocated;
            Assert.Equal(Stage2Status.NotMapped, _table.Unmap4K(0x80_0000_0000, out _));   // nothing there at all
            Assert.Equal(tables, _table.TablesAllocated);
            Assert.Single(_tlb.Calls);
        }

        [Fact]
        public void Map4KInsideABlockSplitsItAndKeepsTheOther511Pages()
        {
            Assert.Equal(Stage2Status.Ok, _table.Map2M(Ipa, BlockPa, Stage2.NormalReadWriteExecute));
            Assert.Equal(Stage2Status.Ok, _table.Translate(Ipa + 0x12_3456, out ulong pa, out _, out int level));
            Assert.Equal(BlockPa + 0x12_3456, pa);
            Assert.Equal(2, level);
            Assert.Equal(1UL, _table.LiveBlocks);
            Assert.Equal(1UL, _table.TablesAllocated);

            ulong page = Ipa + 5 * 0x1000;
            Assert.Equal(Stage2Status.Ok, _table.Map4K(page, Pa, Stage2.NormalReadWrite));

            // First the block is swapped for a table (break on the block's IPA),
            // then the page inside it is changed (break on the page's IPA).
            Assert.Equal(2, _tlb.Calls.Count);
            Assert.Equal(Ipa, _tlb.Calls[0].Ipa);
            Assert.Equal(Stage2Status.NotMapped, _tlb.Calls[0].StatusAtCall);
            Assert.Equal(2, _tlb.Calls[0].LevelAtCall);
            Assert.Equal(page, _tlb.Calls[1].Ipa);
            Assert.Equal(Stage2Status.NotMapped, _tlb.Calls[1].StatusAtCall);
            Assert.Equal(3, _tlb.Calls[1].LevelAtCall);
            // Both are break-before-make: a new entry follows, so neither
            // invalidation may wait for a batch's end (TlbBatchRule).
            Assert.All(_tlb.Calls, c => Assert.False(c.MayWait));

            for (ulong i = 0; i < 512; i++)
            {
                Assert.Equal(Stage2Status.Ok, _table.Translate(Ipa + i * 0x1000 + 0x10, out pa, out ulong d, out level));
                Assert.Equal(3, level);
                if (i == 5)
                {
                    Assert.Equal(Pa + 0x10, pa);
                    continue;
                }
                Assert.Equal(BlockPa + i * 0x1000 + 0x10, pa);
                Assert.Equal(Stage2.Page(BlockPa + i * 0x1000, Stage2.NormalReadWriteExecute), d);
            }
            Assert.Equal(512UL, _table.LivePages);
            Assert.Equal(0UL, _table.LiveBlocks);
            Assert.Equal(2UL, _table.TablesAllocated);
        }

        // The demand fault's shortcut: only an invalid entry in an existing
        // level-3 table is filled; everything else is left to Map4K.
        [Fact]
        public void MapIfEmptyFillsOnlyAnInvalidEntryOfAnExistingTable()
        {
            Assert.False(_table.MapIfEmpty(Ipa, Pa, Stage2.NormalReadWrite));              // no level-3 table yet
            Assert.Equal(Stage2Status.Ok, _table.Map4K(Ipa, Pa, Stage2.NormalReadWrite));   // now there is one
            _tlb.Calls.Clear();
            Assert.True(_table.MapIfEmpty(Ipa + 0x1000, Pa + 0x1000, Stage2.NormalReadWrite));
            Assert.Equal(Stage2Status.Ok, _table.Translate(Ipa + 0x1000, out ulong pa, out _, out int level));
            Assert.Equal(Pa + 0x1000, pa);
            Assert.Equal(3, level);
            Assert.False(_table.MapIfEmpty(Ipa, Pa + 0x5000, Stage2.NormalReadWrite));     // valid: never replaced here
            Assert.Equal(Stage2Status.Ok, _table.Translate(Ipa, out pa, out _, out _));
            Assert.Equal(Pa, pa);
            Assert.False(_table.MapIfEmpty(Ipa + 0x2001, Pa, Stage2.NormalReadWrite));     // misaligned
            Assert.Empty(_tlb.Calls);                                                      // invalid -> valid only
            Assert.Equal(2UL, _table.LivePages);

            _table.Map2M(Ipa + 0x20_0000, BlockPa, Stage2.NormalReadWrite);
            Assert.False(_table.MapIfEmpty(Ipa + 0x20_1000, Pa, Stage2.NormalReadWrite));  // inside a block
        }

        [Fact]
        public void UnmapInsideABlockSplitsIt()
        {
            _table.Map2M(Ipa, BlockPa, Stage2.NormalReadWrite);
            Assert.Equal(Stage2Status.Ok, _table.Unmap4K(Ipa + 0x1F_F000, out ulong pa));
            Assert.Equal(BlockPa + 0x1F_F000, pa);
            // The block's break completes before the table goes in; only the
            // page's own removal may wait for a batch's end.
            Assert.Equal(2, _tlb.Calls.Count);
            Assert.Equal(Ipa, _tlb.Calls[0].Ipa);
            Assert.False(_tlb.Calls[0].MayWait);
            Assert.Equal(Ipa + 0x1F_F000, _tlb.Calls[1].Ipa);
            Assert.True(_tlb.Calls[1].MayWait);
            Assert.Equal(Stage2Status.NotMapped, _table.Translate(Ipa + 0x1F_F000, out _, out _, out _));
            Assert.Equal(Stage2Status.Ok, _table.Translate(Ipa, out pa, out _, out _));
            Assert.Equal(BlockPa, pa);
            Assert.Equal(511UL, _table.LivePages);
        }

        [Fact]
        public void RunningOutOfTablesMidwayLeavesNothingBehind()
        {
            _memory.FramesLeft = 1;   // the walk needs two: level 2 and level 3
            Assert.Equal(Stage2Status.OutOfTables, _table.Map4K(Ipa, Pa, Stage2.NormalReadWrite));
            Assert.Equal(1, _memory.Allocations);
            Assert.Equal(1, _memory.Frees);
            Assert.Empty(_memory.LiveTables);
            Assert.Empty(_memory.Writes);
            Assert.Equal(0UL, _table.TablesInUse);
            Assert.Equal(Stage2Status.NotMapped, _table.Translate(Ipa, out _, out _, out _));

            _memory.FramesLeft = int.MaxValue;
            Assert.Equal(Stage2Status.Ok, _table.Map4K(Ipa, Pa, Stage2.NormalReadWrite));
        }

        [Fact]
        public void RunningOutOfTablesWhileSplittingKeepsTheBlock()
        {
            _table.Map2M(Ipa, BlockPa, Stage2.NormalReadWrite);
            _memory.FramesLeft = 0;
            int writes = _memory.Writes.Count;
            Assert.Equal(Stage2Status.OutOfTables, _table.Map4K(Ipa + 0x3000, Pa, Stage2.NormalReadWrite));
            Assert.Equal(Stage2Status.OutOfTables, _table.Unmap4K(Ipa + 0x3000, out _));
            Assert.Equal(writes, _memory.Writes.Count);
            Assert.Empty(_tlb.Calls);
            Assert.Equal(Stage2Status.Ok, _table.Translate(Ipa + 0x3000, out ulong pa, out _, out int level));
            Assert.Equal(BlockPa + 0x3000, pa);
            Assert.Equal(2, level);
        }

        [Fact]
        public void Map2MRefusesATableThatStillMapsPagesButReplacesAnEmptyOne()
        {
            _table.Map4K(Ipa + 0x7000, Pa, Stage2.NormalReadWrite);
            Assert.Equal(Stage2Status.TableInTheWay, _table.Map2M(Ipa, BlockPa, Stage2.NormalReadWrite));
            Assert.Equal(Stage2Status.Ok, _table.Translate(Ipa + 0x7000, out ulong pa, out _, out _));
            Assert.Equal(Pa, pa);

            _table.Unmap4K(Ipa + 0x7000, out _);
            _tlb.Calls.Clear();
            Assert.Equal(Stage2Status.Ok, _table.Map2M(Ipa, BlockPa, Stage2.NormalReadWrite));
            var call = Assert.Single(_tlb.Calls);   // the old table entry could be cached: broken first
            Assert.Equal(Ipa, call.Ipa);
            Assert.Equal(Stage2Status.NotMapped, call.StatusAtCall);
            Assert.Equal(1, _memory.Frees);
            Assert.Equal(1UL, _table.TablesInUse);
            Assert.Equal(Stage2Status.Ok, _table.Translate(Ipa + 0x7000, out pa, out _, out int level));
            Assert.Equal(BlockPa + 0x7000, pa);
            Assert.Equal(2, level);
        }

        [Fact]
        public void DestroyFreesEveryTableAndNothingElse()
        {
            _table.Map4K(Ipa, Pa, Stage2.NormalReadWrite);
            _table.Map4K(Ipa + 0x20_0000, Pa + 0x1000, Stage2.NormalReadWrite);      // another level-3 table
            _table.Map4K(0x80_4000_0000, Pa + 0x2000, Stage2.NormalReadWrite);      // another level-2 table, second root half
            _table.Map2M(0x1_0000_0000, BlockPa, Stage2.NormalReadWrite);          // another level-2 table, no level 3
            _table.Map2M(Ipa + 0x40_0000, BlockPa, Stage2.NormalReadWrite);
            _table.Map4K(Ipa + 0x40_1000, Pa, Stage2.NormalReadWrite);              // split: one more table
            Assert.Equal(7, _memory.Allocations);
            Assert.Equal(7UL, _table.TablesInUse);

            _table.Destroy(out int freed);
            Assert.Equal(7, freed);
            Assert.Equal(_memory.Allocations, _memory.Frees);
            Assert.Empty(_memory.LiveTables);
            Assert.Equal(0UL, _table.TablesInUse);
            Assert.Equal(0UL, _table.LivePages);
            Assert.Equal(0UL, _table.LiveBlocks);
            for (ulong a = FakeTableMemory.RootAddress; a < FakeTableMemory.RootAddress + 8192; a += 8)
                Assert.Equal(0UL, _memory.Read64(a));
            Assert.Equal(Stage2Status.NotMapped, _table.Translate(Ipa, out _, out _, out _));
        }

        [Fact]
        public void CollectMappingsEnumeratesEveryPageInBatches()
        {
            var expected = new SortedDictionary<ulong, ulong>();
            void Page(ulong ipa, ulong pa) { Assert.Equal(Stage2Status.Ok, _table.Map4K(ipa, pa, Stage2.NormalReadWrite)); expected[ipa] = pa; }
            Page(0x1000, 0x5_0000_0000);
            Page(Ipa + 0x3000, Pa);
            Page(0xFF_FFFF_F000, 0x5_0000_1000);   // the last IPA there is
            Assert.Equal(Stage2Status.Ok, _table.Map2M(0x80_0000_0000, BlockPa, Stage2.NormalReadWrite));
            for (ulong i = 0; i < 512; i++) expected[0x80_0000_0000 + i * 0x1000] = BlockPa + i * 0x1000;

            var ipas = new ulong[100];
            var pas = new ulong[100];
            var seen = new List<(ulong, ulong)>();
            ulong next = 0;
            int calls = 0;
            while (next < _table.IpaLimit)
            {
                int n = _table.CollectMappings(next, ipas, pas, out next);
                for (int i = 0; i < n; i++) seen.Add((ipas[i], pas[i]));
                Assert.True(++calls < 100, "no progress");
            }
            Assert.Equal(expected.Count, seen.Count);
            int k = 0;
            foreach (var e in expected) Assert.Equal((e.Key, e.Value), seen[k++]);
        }

        [Fact]
        public void SmallerIpaStartsAtLevel2()
        {
            var table = new Stage2Table(_memory, _tlb, FakeTableMemory.RootAddress, 32);
            _tlb.Table = table;
            Assert.Equal(2, table.StartLevel);
            Assert.Equal(Stage2Status.Ok, table.Map4K(0xFFFF_F000, Pa, Stage2.NormalReadWrite));
            Span<TranslationStep> steps = stackalloc TranslationStep[4];
            Assert.Equal(2, table.Walk(0xFFFF_F000, steps));
            Assert.Equal(2047, steps[0].Index);   // four concatenated level-2 tables
            Assert.Equal(1UL, table.TablesAllocated);
            Assert.Equal(Stage2Status.IpaOutOfRange, table.Map4K(0x1_0000_0000, Pa, Stage2.NormalReadWrite));
        }
    }
}
