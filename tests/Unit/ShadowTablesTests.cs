using System;
using System.Collections.Generic;
using System.Linq;
using Hypervisor.Arch;
using Hypervisor.Mm;
using Hypervisor.Paging;
using Xunit;

namespace Hypervisor.Tests.Unit
{
    // The VM as the shadow builder sees it: guest RAM at 0x4000_0000, a frame
    // per GPA page once it is backed (frames are handed out 12 KiB apart, so
    // consecutive GPAs never get contiguous frames), write protection and TLB
    // maintenance recorded. Guest frames live in the same FakeTableMemory as
    // the shadow tables (whose frames come from 64 GiB up, far from these).
    internal sealed class FakeShadowHost : ShadowHost
    {
        public const ulong RamBase = 0x4000_0000;
        private const ulong FrameBase = 0x1_0000_0000;
        private const ulong FrameStride = 0x3000;

        public readonly ulong RamSize;
        public readonly FakeTableMemory Memory;
        public readonly Dictionary<ulong, ulong> Frames = new Dictionary<ulong, ulong>();   // GPA page -> frame
        public readonly HashSet<ulong> FrameSet = new HashSet<ulong>();
        public readonly HashSet<ulong> ReadOnly = new HashSet<ulong>();
        public readonly List<(ulong Va, int WritesBefore)> VaInvalidations = new List<(ulong, int)>();
        public int AllInvalidations;
        public int BackCalls;
        public int FramesLeft = int.MaxValue;
        private ulong _nextFrame = FrameBase;

        public FakeShadowHost(FakeTableMemory memory, ulong ramSize)
        {
            Memory = memory;
            RamSize = ramSize;
        }

        public override bool IsRam(ulong gpa) => gpa >= RamBase && gpa - RamBase < RamSize;

        public override bool TouchesRam(ulong gpa, ulong size) => gpa < RamBase + RamSize && gpa + size > RamBase;

        public override ulong FrameOf(ulong gpa) =>
            IsRam(gpa) && Frames.TryGetValue(gpa & ~0xfffUL, out ulong frame) ? frame : 0;

        public override ulong Back(ulong gpa)
        {
            BackCalls++;
            if (!IsRam(gpa)) return 0;
            ulong page = gpa & ~0xfffUL;
            if (Frames.TryGetValue(page, out ulong existing)) return existing;
            if (FramesLeft == 0) return 0;
            FramesLeft--;
            ulong frame = _nextFrame;
            _nextFrame += FrameStride;
            Frames[page] = frame;
            FrameSet.Add(frame);
            return frame;   // never written before: reads as zeros
        }

        public override void WriteProtect(ulong hpa, bool readOnly)
        {
            Assert.True(FrameSet.Contains(hpa), $"write-protect of {hpa:x}, not a guest frame");
            // Exactly one transition each way: protected when first mirrored,
            // writable again when the last mirror goes.
            if (readOnly) Assert.True(ReadOnly.Add(hpa), $"{hpa:x} write-protected twice");
            else Assert.True(ReadOnly.Remove(hpa), $"{hpa:x} made writable but was not protected");
        }

        // Called at every TLBI: the walker may read the tables right after.
        public Action BeforeInvalidate;

        public override void InvalidateVa(ulong va)
        {
            BeforeInvalidate?.Invoke();
            VaInvalidations.Add((va, Memory.Writes.Count));
        }

        public override void InvalidateAll()
        {
            BeforeInvalidate?.Invoke();
            AllInvalidations++;
        }
    }

    // A guest (building its own tables in its RAM, 4 KiB granule) and the
    // shadow builder, on one fake memory.
    internal sealed class ShadowRig
    {
        public readonly FakeTableMemory Memory = new FakeTableMemory();
        public readonly FakeShadowHost Host;
        public readonly ShadowTables Tables;
        public readonly CacheModel Cache;
        private ulong _nextTableGpa;                                          // guest tables from the top of RAM down

        // Unlimited budgets unless asked: every step done in the call that asks for it.
        public ShadowRig(ulong ramSize = 0x0400_0000, int capacity = 256, int buildBudget = int.MaxValue, int freeBudget = int.MaxValue)
        {
            Host = new FakeShadowHost(Memory, ramSize);
            _nextTableGpa = FakeShadowHost.RamBase + ramSize - 0x1000;
            // Shadow tables in DRAM (what a non-cacheable walk reads) must
            // match what was written at every TLBI and whenever the guest
            // runs again (kernel/Mm/Coherency.cs).
            Cache = new CacheModel(Memory.Read64);
            Host.BeforeInvalidate = () => AssertShadowsInDram("at a TLBI");
            Tables = new ShadowTables(Host, Memory, Cache, capacity, buildBudget, freeBudget);
        }

        // A table page the guest has written (so it is backed), all entries invalid.
        public ulong NewTable()
        {
            ulong gpa = _nextTableGpa;
            _nextTableGpa -= 0x1000;
            Assert.NotEqual(0UL, Host.Back(gpa));
            return gpa;
        }

        public ulong Frame(ulong gpa)
        {
            ulong frame = Host.FrameOf(gpa);
            Assert.NotEqual(0UL, frame);
            return frame;
        }

        public ulong Entry(ulong tableGpa, int index) => Memory.Read64(Frame(tableGpa) + (ulong)index * 8);

        // A guest store to a table that is not (yet) mirrored.
        public void Set(ulong tableGpa, int index, ulong value) => Memory.Write64(Frame(tableGpa) + (ulong)index * 8, value);

        // A guest store to a mirrored table: the store, then the trap.
        public ShadowStatus Store(ulong tableGpa, int index, ulong value)
        {
            Set(tableGpa, index, value);
            ShadowStatus status = Tables.OnGuestWrite(Frame(tableGpa), index, value);
            AssertShadowsInDram("after a guest table write");
            return status;
        }

        // Off for the budget tests: they make thousands of pages and TLBIs,
        // and checking every page at each step is quadratic; they check once
        // at the end instead.
        public bool DramChecks = true;

        // Every word of every live shadow page reads the same from DRAM.
        public void AssertShadowsInDram(string when)
        {
            if (!DramChecks) return;
            var words = new List<ulong>();
            foreach (ulong w in Memory.Words.Keys) if (Memory.LiveTables.Contains(w & ~0xfffUL)) words.Add(w);
            Cache.AssertInDram(words, when);
        }

        // The guest table at `level` on the way to `va`, created when missing.
        public ulong TableFor(ulong root, ulong va, int level, int startLevel = 0)
        {
            ulong table = root;
            for (int l = startLevel; l < level; l++)
            {
                int i = Descriptor.Index(va, l);
                ulong e = Entry(table, i);
                if (!Descriptor.IsTable(e, l))
                {
                    e = NewTable() | 3;
                    Set(table, i, e);
                }
                table = e & Descriptor.AddressMask;
            }
            return table;
        }

        public void Map(ulong root, ulong va, int level, ulong descriptor, int startLevel = 0) =>
            Set(TableFor(root, va, level, startLevel), Descriptor.Index(va, level), descriptor);

        public ulong RootFor(ulong guestRoot, bool upper = false, int startLevel = 0, ulong vaBase = 0, ulong keep = 0)
        {
            ulong shadow = Tables.RootFor(guestRoot, upper, startLevel, vaBase, keep, out _);
            Assert.NotEqual(0UL, shadow);
            AssertShadowsInDram("after building a root");
            return shadow;
        }

        // What the MMU does with the shadow: follow table descriptors that point
        // at (live) shadow pages; stop at a leaf, an invalid entry or a table
        // descriptor into the trap window.
        public (ulong Descriptor, int Level, ulong Entry) Walk(ulong shadowRoot, ulong va, int startLevel = 0)
        {
            ulong table = shadowRoot;
            for (int level = startLevel; ; level++)
            {
                Assert.True(Memory.LiveTables.Contains(table), $"walk through {table:x}, not a live shadow page");
                ulong entry = table + (ulong)Descriptor.Index(va, level) * 8;
                ulong s = Memory.Read64(entry);
                if (level < 3 && Descriptor.IsTable(s, level) && (s & Descriptor.AddressMask) < ShadowTables.TrapBase)
                {
                    table = s & Descriptor.AddressMask;
                    continue;
                }
                return (s, level, entry);
            }
        }

        // Pool accounting agrees with the memory: every shadow page the builder
        // counts is a live table, nothing else was allocated, nothing leaked.
        public void CheckAccounting()
        {
            Assert.Equal(Tables.PagesInUse, Memory.LiveTables.Count);
            Assert.Equal((ulong)Tables.PagesInUse, Tables.PagesBuilt - Tables.PagesFreed);
            Assert.Equal(Memory.Allocations - Memory.Frees, Memory.LiveTables.Count);
            AssertShadowsInDram("at the end");
        }
    }

    public class ShadowTablesTests
    {
        private const ulong RamBase = FakeShadowHost.RamBase;
        private const ulong TrapBase = ShadowTables.TrapBase;
        private const ulong Mask = Descriptor.AddressMask;
        private const ulong Attrs = (1UL << 10) | (3UL << 8) | (1UL << 2);            // AF, SH inner, AttrIndx 1
        private const ulong PageAttrs = Attrs | Stage1.NotGlobal | Stage1.UnprivilegedExecuteNever;
        private const ulong Contiguous = 1UL << 52;
        private const ulong Va = 0x0000_7F12_3456_7000;                                // every level's index non-zero

        private static ulong Page(ulong gpa) => gpa | PageAttrs | 3;
        private static ulong Block(ulong gpa) => gpa | Attrs | 1;

        // ---- building ----

        [Fact]
        public void FourLevelPageMapsTheGuestVaStraightToItsHostFrame()
        {
            var r = new ShadowRig();
            ulong root = r.NewTable();
            ulong gpa = RamBase + 0x20_5000;
            ulong frame = r.Host.Back(gpa);
            r.Map(root, Va, 3, Page(gpa));
            // Hierarchical attributes on the guest's level-0 table descriptor survive.
            int i0 = Descriptor.Index(Va, 0);
            r.Set(root, i0, r.Entry(root, i0) | Stage1.PxnTable | Stage1.UxnTable);
            ulong l1 = r.TableFor(root, Va, 1), l2 = r.TableFor(root, Va, 2), l3 = r.TableFor(root, Va, 3);

            ulong shadow = r.Tables.RootFor(root, false, 0, 0, 0, out bool hit);

            Assert.NotEqual(0UL, shadow);
            Assert.False(hit);
            Assert.NotEqual(root, shadow);
            Assert.NotEqual(r.Frame(root), shadow);
            var w = r.Walk(shadow, Va);
            Assert.Equal(3, w.Level);
            Assert.Equal(frame | PageAttrs | 3, w.Descriptor);
            ulong s0 = r.Memory.Read64(shadow + (ulong)i0 * 8);
            Assert.Equal(Stage1.PxnTable | Stage1.UxnTable, s0 & 0xF800_0000_0000_0000);

            // Every guest table on the path is mirrored and read-only to the guest;
            // the data page is not.
            var guestTables = new HashSet<ulong> { r.Frame(root), r.Frame(l1), r.Frame(l2), r.Frame(l3) };
            Assert.Equal(guestTables, r.Host.ReadOnly);
            foreach (ulong t in guestTables) Assert.True(r.Tables.IsMirrored(t));
            Assert.False(r.Tables.IsMirrored(frame));
            // Four shadow pages, none of them a guest frame.
            Assert.Equal(4, r.Tables.PagesInUse);
            Assert.Equal(1UL, r.Tables.RootsBuilt);
            Assert.DoesNotContain(shadow, r.Host.FrameSet);
            // Neighbours stay unmapped, at the level where the guest's walk stops.
            Assert.Equal((0UL, 3), (r.Walk(shadow, Va + 0x1000).Descriptor, r.Walk(shadow, Va + 0x1000).Level));
            Assert.Equal((0UL, 2), (r.Walk(shadow, Va ^ (1UL << 21)).Descriptor, r.Walk(shadow, Va ^ (1UL << 21)).Level));
            Assert.Equal((0UL, 1), (r.Walk(shadow, Va ^ (1UL << 30)).Descriptor, r.Walk(shadow, Va ^ (1UL << 30)).Level));
            Assert.Equal((0UL, 0), (r.Walk(shadow, Va ^ (1UL << 39)).Descriptor, r.Walk(shadow, Va ^ (1UL << 39)).Level));
            // Building needs no TLB maintenance.
            Assert.Empty(r.Host.VaInvalidations);
            Assert.Equal(0, r.Host.AllInvalidations);
            r.CheckAccounting();
        }

        [Fact]
        public void StartLevelOneTreeIsWalkedAndFixedFromLevelOne()
        {
            var r = new ShadowRig();
            ulong root = r.NewTable();                 // a level-1 root (T0SZ 25..33)
            const ulong va = 0x0000_0000_5678_9000;
            ulong gpa = RamBase + 0x77_7000;
            r.Map(root, va, 3, Page(gpa), startLevel: 1);

            ulong shadow = r.RootFor(root, startLevel: 1);
            Assert.Equal(3, r.Tables.PagesInUse);
            Assert.Equal(ShadowTables.TrapIpa(gpa) | PageAttrs | 3, r.Walk(shadow, va, 1).Descriptor);
            ulong frame = r.Host.Back(gpa);
            Assert.True(r.Tables.FixLeaf(shadow, 1, va, gpa, frame));
            Assert.Equal(frame | PageAttrs | 3, r.Walk(shadow, va, 1).Descriptor);
            // The same guest root walked from level 0 is another tree.
            ulong other = r.Tables.RootFor(root, false, 0, 0, 0, out bool hit);
            Assert.False(hit);
            Assert.NotEqual(shadow, other);
            r.CheckAccounting();
        }

        [Fact]
        public void UnbackedPagePointsIntoTheTrapWindowUntilFixLeaf()
        {
            var r = new ShadowRig();
            ulong root = r.NewTable();
            ulong gpa = RamBase + 0x30_0000;
            r.Map(root, Va, 3, Page(gpa));
            ulong shadow = r.RootFor(root);

            var w = r.Walk(shadow, Va);
            Assert.Equal(3, w.Level);
            Assert.Equal((TrapBase + gpa) | PageAttrs | 3, w.Descriptor);
            Assert.Equal(TrapBase + gpa, ShadowTables.TrapIpa(gpa));
            Assert.True(ShadowTables.InTrapWindow(w.Descriptor & Mask));
            Assert.False(r.Host.Frames.ContainsKey(gpa));          // building does not back data pages

            ulong frame = r.Host.Back(gpa);
            Assert.False(r.Tables.FixLeaf(shadow, 0, Va, gpa + 0x1000, frame));     // the leaf traps for another GPA
            Assert.False(r.Tables.FixLeaf(shadow, 0, Va + 0x1000, gpa, frame));     // no leaf there
            Assert.False(r.Tables.FixLeaf(shadow, 0, Va ^ (1UL << 39), gpa, frame)); // no table there
            Assert.Equal(w.Descriptor, r.Memory.Read64(w.Entry));
            Assert.Equal(0UL, r.Tables.LeavesFixed);

            int before = r.Cache.Operations.Count;
            Assert.Empty(r.Host.VaInvalidations);
            Assert.True(r.Tables.FixLeaf(shadow, 0, Va + 0x234, gpa + 0x234, frame)); // FAR and GPA with the offset
            Assert.Equal(frame | PageAttrs | 3, r.Memory.Read64(w.Entry));
            Assert.Equal(1UL, r.Tables.LeavesFixed);
            // Break before make: the valid trap-window leaf is made invalid,
            // its VA invalidated, and only then the frame written.
            var inv = Assert.Single(r.Host.VaInvalidations);
            Assert.Equal(Va, inv.Va);
            Assert.Equal((w.Entry, 0UL), r.Memory.Writes[inv.WritesBefore - 1]);
            Assert.Equal((w.Entry, frame | PageAttrs | 3), r.Memory.Writes[inv.WritesBefore]);
            // Each value is in DRAM before what depends on it: the invalid
            // entry before the TLBI (BeforeInvalidate checks), the frame
            // before the guest's retry walks it.
            r.AssertShadowsInDram("after FixLeaf");
            Assert.Equal(new[] { $"clean {w.Entry:x}", "barrier", $"clean {w.Entry:x}", "barrier" }, r.Cache.Operations.GetRange(before, r.Cache.Operations.Count - before));
            // Once it names a frame, it is not a trap-window leaf any more.
            Assert.False(r.Tables.FixLeaf(shadow, 0, Va, gpa, frame + 0x1000));
            Assert.Equal(frame | PageAttrs | 3, r.Memory.Read64(w.Entry));
            Assert.Single(r.Host.VaInvalidations);
            Assert.Equal(0, r.Host.AllInvalidations);
            r.CheckAccounting();
        }

        [Fact]
        public void GuestTableOutsideRamBecomesATableDescriptorIntoTheTrapWindow()
        {
            var r = new ShadowRig();
            ulong root = r.NewTable();
            ulong l2 = r.TableFor(root, Va, 2);
            const ulong deviceTable = 0x0900_0000;
            r.Set(l2, Descriptor.Index(Va, 2), deviceTable | 3);
            ulong shadow = r.RootFor(root);

            var w = r.Walk(shadow, Va);
            Assert.Equal(2, w.Level);
            Assert.Equal((TrapBase + deviceTable) | 3, w.Descriptor);
            Assert.DoesNotContain(deviceTable, r.Host.Frames.Keys);
            Assert.Equal(3, r.Tables.PagesInUse);
            Assert.False(r.Tables.FixLeaf(shadow, 0, Va, deviceTable, 0x1234_5000));
            Assert.Equal((TrapBase + deviceTable) | 3, r.Memory.Read64(w.Entry));
            r.CheckAccounting();
        }

        [Theory]
        [InlineData(0x0900_0000UL, TrapBase + 0x0900_0000UL)]                  // a device (UART)
        [InlineData(0x2000_0000UL, TrapBase + 0x2000_0000UL)]                  // a hole below RAM
        [InlineData(0x3FFF_F000UL, TrapBase + 0x3FFF_F000UL)]                  // the page just below RAM
        [InlineData(RamBase + 0x0400_0000UL, TrapBase + RamBase + 0x0400_0000UL)]   // the page just past RAM
        [InlineData(0UL, TrapBase)]
        [InlineData(TrapBase, TrapBase + ShadowTables.NothingGpa)]             // the window cannot express it
        [InlineData(TrapBase + RamBase, TrapBase + ShadowTables.NothingGpa)]  // not RAM + TrapBase either
        [InlineData((1UL << 40) - 0x1000, TrapBase + ShadowTables.NothingGpa)]
        [InlineData(1UL << 40, 1UL << 40)]                                     // beyond the IPA space: unchanged
        [InlineData(0x0000_FFFF_FFFF_F000UL, 0x0000_FFFF_FFFF_F000UL)]
        public void GpaOutsideRamNeverYieldsAHostFrame(ulong gpa, ulong expected)
        {
            var r = new ShadowRig();
            ulong root = r.NewTable();
            r.Map(root, Va, 3, Page(gpa) | Contiguous);
            int backCalls = r.Host.BackCalls;
            ulong shadow = r.RootFor(root);

            var w = r.Walk(shadow, Va);
            Assert.Equal(3, w.Level);
            if (gpa >= 1UL << 40)
                Assert.Equal(Page(gpa) | Contiguous, w.Descriptor);            // the guest's descriptor as it is
            else
                Assert.Equal(expected | PageAttrs | 3, w.Descriptor);
            Assert.True(gpa >= 1UL << 40 || ShadowTables.InTrapWindow(w.Descriptor & Mask));
            Assert.DoesNotContain(w.Descriptor & Mask, r.Host.FrameSet);
            Assert.Equal(backCalls, r.Host.BackCalls);                          // no frame was asked for
            Assert.False(r.Tables.FixLeaf(shadow, 0, Va, RamBase, r.Host.Back(RamBase)));
            r.CheckAccounting();
        }

        [Fact]
        public void BlockOverRamIsSplitIntoPagesEachOnItsOwnFrame()
        {
            var r = new ShadowRig();
            ulong root = r.NewTable();
            ulong blockGpa = RamBase + 0x40_0000;
            const ulong va = 0x0000_1234_5660_0000;   // 2 MiB aligned
            // Back the block's pages in a scrambled order, leaving a few without a frame.
            var unbacked = new HashSet<int> { 7, 107, 207, 307, 407, 507 };
            for (int i = 0; i < 512; i++)
            {
                int j = (i * 167) % 512;
                if (!unbacked.Contains(j)) r.Host.Back(blockGpa + (ulong)j * 0x1000);
            }
            const ulong blockAttrs = Attrs | Stage1.UnprivilegedExecuteNever;
            r.Map(root, va, 2, blockGpa | blockAttrs | Contiguous | 1);
            ulong l2 = r.TableFor(root, va, 2);

            ulong shadow = r.RootFor(root);

            var outputs = new HashSet<ulong>();
            for (int i = 0; i < 512; i++)
            {
                ulong gpa = blockGpa + (ulong)i * 0x1000;
                var w = r.Walk(shadow, va + (ulong)i * 0x1000 + 0x10);
                Assert.Equal(3, w.Level);
                ulong expected = unbacked.Contains(i) ? TrapBase + gpa : r.Host.FrameOf(gpa);
                Assert.Equal(expected | blockAttrs | 3, w.Descriptor);
                Assert.Equal(0UL, w.Descriptor & Contiguous);
                outputs.Add(w.Descriptor & Mask);
            }
            Assert.Equal(512, outputs.Count);
            // L0, L1 and L2 mirrors plus one split page; the split mirrors no guest table.
            Assert.Equal(4, r.Tables.PagesInUse);
            Assert.Equal(3, r.Host.ReadOnly.Count);
            Assert.Contains(r.Frame(l2), r.Host.ReadOnly);
            r.CheckAccounting();
        }

        [Theory]
        [InlineData(0x0800_0000UL, TrapBase + 0x0800_0000UL)]                  // a device window (GIC)
        [InlineData(0x3FE0_0000UL, TrapBase + 0x3FE0_0000UL)]                  // ends exactly where RAM begins
        [InlineData(RamBase + 0x0400_0000UL, TrapBase + RamBase + 0x0400_0000UL)]   // starts exactly where RAM ends
        [InlineData(TrapBase + RamBase, TrapBase + ShadowTables.NothingGpa)]
        [InlineData(1UL << 40, 1UL << 40)]
        public void BlockOutsideRamStaysOneBlockIntoTheTrapWindow(ulong blockGpa, ulong expected)
        {
            var r = new ShadowRig();
            ulong root = r.NewTable();
            const ulong va = 0x0000_1234_5660_0000;
            r.Map(root, va, 2, Block(blockGpa) | Contiguous);
            ulong shadow = r.RootFor(root);

            var w = r.Walk(shadow, va + 0x1_2345);
            Assert.Equal(2, w.Level);
            if (blockGpa >= 1UL << 40)
                Assert.Equal(Block(blockGpa) | Contiguous, w.Descriptor);
            else
                Assert.Equal(expected | Attrs | 1, w.Descriptor);
            Assert.Equal(3, r.Tables.PagesInUse);
            Assert.False(r.Tables.FixLeaf(shadow, 0, va, blockGpa, 0x1_0000_0000));
            r.CheckAccounting();
        }

        [Fact]
        public void GigabyteBlockPartlyOverRamSplitsOnlyWhereRamIs()
        {
            // 5 MiB of RAM: 2 MiB chunks 0 and 1 are RAM, chunk 2 half, the rest not.
            var r = new ShadowRig(ramSize: 0x50_0000);
            ulong root = r.NewTable();
            const ulong va = 0x0000_0040_4000_0000;   // 1 GiB aligned
            for (ulong gpa = RamBase; gpa < RamBase + 0x50_0000; gpa += 0x1000)
                if (gpa != RamBase + 0x12_C000) r.Host.Back(gpa);
            const ulong blockAttrs = Attrs | Stage1.UnprivilegedExecuteNever;
            r.Map(root, va, 1, RamBase | blockAttrs | Contiguous | 1);
            // The gigabyte below RAM, all devices and holes, in the same tree.
            r.Map(root, va - (1UL << 30), 1, Block(0));

            ulong shadow = r.RootFor(root);

            // L0 and L1 mirrors, a split of the 1 GiB block, a split of each RAM chunk.
            Assert.Equal(2 + 1 + 3, r.Tables.PagesInUse);
            Assert.Equal(2, r.Host.ReadOnly.Count);
            for (ulong off = 0; off < 0x60_0000; off += 0x1000)
            {
                ulong gpa = RamBase + off;
                var w = r.Walk(shadow, va + off);
                Assert.Equal(3, w.Level);
                ulong frame = r.Host.FrameOf(gpa);
                ulong expected = frame != 0 ? frame : TrapBase + gpa;
                Assert.Equal(expected | blockAttrs | 3, w.Descriptor);
                Assert.Equal(off >= 0x50_0000 || off == 0x12_C000, frame == 0);
            }
            foreach (int chunk in new[] { 3, 4, 100, 511 })
            {
                ulong off = (ulong)chunk << 21;
                var w = r.Walk(shadow, va + off + 0x5000);
                Assert.Equal(2, w.Level);
                Assert.Equal((TrapBase + RamBase + off) | blockAttrs | 1, w.Descriptor);
            }
            var below = r.Walk(shadow, va - (1UL << 30) + 0x0900_0000);
            Assert.Equal(1, below.Level);
            Assert.Equal(TrapBase | Attrs | 1, below.Descriptor);
            r.CheckAccounting();
        }

        // ---- guest writes to mirrored tables ----

        [Theory]
        [InlineData(false)]
        [InlineData(true)]
        public void ChangingALeafUpdatesTheShadowBreakBeforeMakeAndInvalidatesThatVa(bool upper)
        {
            var r = new ShadowRig();
            ulong vaBase = upper ? 0xFFFF_0000_0000_0000UL : 0;
            ulong va = vaBase | Va;
            ulong root = r.NewTable();
            ulong gpaA = RamBase + 0x1000, gpaB = RamBase + 0x2000, gpaC = RamBase + 0x3000;
            r.Host.Back(gpaA);
            ulong frameB = r.Host.Back(gpaB);
            r.Map(root, va, 3, Page(gpaA));
            ulong l3 = r.TableFor(root, va, 3);
            int idx = Descriptor.Index(va, 3);
            ulong shadow = r.RootFor(root, upper, 0, vaBase);

            Assert.Equal(ShadowStatus.Ok, r.Store(l3, idx, Page(gpaB)));

            var w = r.Walk(shadow, va);
            Assert.Equal(frameB | PageAttrs | 3, w.Descriptor);
            var inv = Assert.Single(r.Host.VaInvalidations);
            Assert.Equal(va, inv.Va);
            Assert.Equal(0, r.Host.AllInvalidations);
            // Invalid written, then the TLBI, then the new entry.
            Assert.Equal((w.Entry, 0UL), r.Memory.Writes[inv.WritesBefore - 1]);
            Assert.Equal((w.Entry, w.Descriptor), r.Memory.Writes[inv.WritesBefore]);

            // A new leaf next to it: nothing to invalidate (it was invalid).
            Assert.Equal(ShadowStatus.Ok, r.Store(l3, idx + 1, Page(gpaC)));
            Assert.Equal((TrapBase + gpaC) | PageAttrs | 3, r.Walk(shadow, va + 0x1000).Descriptor);
            Assert.Single(r.Host.VaInvalidations);

            // Unmapping: the shadow entry goes invalid and the VA is invalidated.
            Assert.Equal(ShadowStatus.Ok, r.Store(l3, idx, 0));
            Assert.Equal(0UL, r.Walk(shadow, va).Descriptor);
            Assert.Equal(2, r.Host.VaInvalidations.Count);
            Assert.Equal(va, r.Host.VaInvalidations[1].Va);
            Assert.Equal(0, r.Host.AllInvalidations);
            Assert.Equal(4, r.Tables.PagesInUse);
            Assert.Equal(3UL, r.Tables.GuestWritesApplied);
            r.CheckAccounting();
        }

        // root -> L1 -> { [1] A -> T,  [2] B -> { T, U } }: T is mirrored twice.
        private static (ulong Root, ulong L1, ulong A, ulong B, ulong T, ulong U, ulong FrameX, ulong FrameY) SharedLeafTree(ShadowRig r)
        {
            ulong root = r.NewTable(), l1 = r.NewTable(), a = r.NewTable(), b = r.NewTable(), t = r.NewTable(), u = r.NewTable();
            ulong gpaX = RamBase + 0x5000, gpaY = RamBase + 0x6000;
            ulong frameX = r.Host.Back(gpaX), frameY = r.Host.Back(gpaY);
            r.Set(root, 0, l1 | 3);
            r.Set(l1, 1, a | 3);
            r.Set(l1, 2, b | 3);
            r.Set(a, 0, t | 3);
            r.Set(b, 0, t | 3);
            r.Set(b, 1, u | 3);
            r.Set(t, 0, Page(gpaX));
            r.Set(u, 0, Page(gpaY));
            return (root, l1, a, b, t, u, frameX, frameY);
        }

        [Fact]
        public void ClearingATableEntryFreesTheShadowSubtreeAndUnprotectsTablesNoLongerMirrored()
        {
            var r = new ShadowRig();
            var g = SharedLeafTree(r);
            ulong shadow = r.RootFor(g.Root);
            Assert.Equal(7, r.Tables.PagesInUse);
            Assert.Equal(new HashSet<ulong> { r.Frame(g.Root), r.Frame(g.L1), r.Frame(g.A), r.Frame(g.B), r.Frame(g.T), r.Frame(g.U) }, r.Host.ReadOnly);
            Assert.Equal(g.FrameX | PageAttrs | 3, r.Walk(shadow, 1UL << 30).Descriptor);
            Assert.Equal(g.FrameX | PageAttrs | 3, r.Walk(shadow, 2UL << 30).Descriptor);
            Assert.Equal(g.FrameY | PageAttrs | 3, r.Walk(shadow, (2UL << 30) + (1UL << 21)).Descriptor);

            Assert.Equal(ShadowStatus.Ok, r.Store(g.L1, 1, 0));

            Assert.Equal(2UL, r.Tables.PagesFreed);              // A's mirror and its mirror of T
            Assert.Equal(5, r.Tables.PagesInUse);
            Assert.Equal(5, r.Memory.LiveTables.Count);
            Assert.DoesNotContain(r.Frame(g.A), r.Host.ReadOnly);
            Assert.False(r.Tables.IsMirrored(r.Frame(g.A)));
            Assert.Contains(r.Frame(g.T), r.Host.ReadOnly);      // still mirrored under B
            Assert.True(r.Tables.IsMirrored(r.Frame(g.T)));
            Assert.Equal(1, r.Host.AllInvalidations);            // a whole range went: invalidate everything
            Assert.Empty(r.Host.VaInvalidations);
            var gone = r.Walk(shadow, 1UL << 30);
            Assert.Equal((0UL, 1), (gone.Descriptor, gone.Level));
            Assert.Equal(g.FrameX | PageAttrs | 3, r.Walk(shadow, 2UL << 30).Descriptor);

            Assert.Equal(ShadowStatus.Ok, r.Store(g.L1, 2, 0));

            Assert.Equal(5UL, r.Tables.PagesFreed);
            Assert.Equal(2, r.Tables.PagesInUse);
            Assert.Equal(new HashSet<ulong> { r.Frame(g.Root), r.Frame(g.L1) }, r.Host.ReadOnly);
            Assert.False(r.Tables.IsMirrored(r.Frame(g.T)));
            Assert.Equal(2, r.Host.AllInvalidations);
            r.CheckAccounting();
        }

        [Fact]
        public void AddingATableEntryBuildsTheSubtree()
        {
            var r = new ShadowRig();
            var g = SharedLeafTree(r);
            r.Set(g.L1, 2, 0);                                   // B not linked yet
            ulong shadow = r.RootFor(g.Root);
            Assert.Equal(4, r.Tables.PagesInUse);
            Assert.DoesNotContain(r.Frame(g.B), r.Host.ReadOnly);
            Assert.DoesNotContain(r.Frame(g.U), r.Host.ReadOnly);

            Assert.Equal(ShadowStatus.Ok, r.Store(g.L1, 2, g.B | 3));

            Assert.Equal(7, r.Tables.PagesInUse);
            Assert.Equal(g.FrameX | PageAttrs | 3, r.Walk(shadow, 2UL << 30).Descriptor);
            Assert.Equal(g.FrameY | PageAttrs | 3, r.Walk(shadow, (2UL << 30) + (1UL << 21)).Descriptor);
            Assert.Contains(r.Frame(g.B), r.Host.ReadOnly);
            Assert.Contains(r.Frame(g.U), r.Host.ReadOnly);
            Assert.Equal(0, r.Host.AllInvalidations);             // the entry was invalid: nothing cached
            Assert.Empty(r.Host.VaInvalidations);

            // A table the guest never touched gets a frame (zeroed) to be mirrored.
            ulong untouched = RamBase + 0x3F0_0000;
            Assert.False(r.Host.Frames.ContainsKey(untouched));
            Assert.Equal(ShadowStatus.Ok, r.Store(g.L1, 3, untouched | 3));
            Assert.True(r.Host.Frames.ContainsKey(untouched));
            Assert.Contains(r.Frame(untouched), r.Host.ReadOnly);
            var w = r.Walk(shadow, 3UL << 30);
            Assert.Equal((0UL, 2), (w.Descriptor, w.Level));
            Assert.Equal(8, r.Tables.PagesInUse);
            r.CheckAccounting();
        }

        [Fact]
        public void ATableSharedByTwoRootsIsMirroredOnceAtOneVaAndEveryMirrorFollowsAWrite()
        {
            var r = new ShadowRig();
            ulong root1 = r.NewTable(), root2 = r.NewTable();
            ulong gpaA = RamBase + 0x1000, gpaB = RamBase + 0x2000, gpaC = RamBase + 0x3000;
            ulong frameA = r.Host.Back(gpaA), frameB = r.Host.Back(gpaB), frameC = r.Host.Back(gpaC);
            r.Map(root1, Va, 3, Page(gpaA));
            int i0 = Descriptor.Index(Va, 0);
            ulong l1 = r.TableFor(root1, Va, 1), l2 = r.TableFor(root1, Va, 2), l3 = r.TableFor(root1, Va, 3);
            const ulong other = 1UL << 39;                       // one level-0 entry further
            r.Set(root2, i0, l1 | 3);                            // the same level-1 table at the same VA (a shared kernel half)
            r.Set(root2, i0 + 1, l1 | 3);                        // and again at another VA: a mirror of its own

            ulong shadow1 = r.RootFor(root1), shadow2 = r.RootFor(root2);

            Assert.NotEqual(shadow1, shadow2);
            Assert.Equal(4 + 1 + 3, r.Tables.PagesInUse);       // root2 shares L1-L3 at Va, builds them at Va + 512 GiB
            Assert.Equal(1UL, r.Tables.MirrorsShared);
            Assert.Equal(r.Walk(shadow1, Va).Entry, r.Walk(shadow2, Va).Entry);
            Assert.NotEqual(r.Walk(shadow2, Va).Entry, r.Walk(shadow2, Va + other).Entry);
            foreach (var w in new[] { r.Walk(shadow1, Va), r.Walk(shadow2, Va), r.Walk(shadow2, Va + other) })
                Assert.Equal(frameA | PageAttrs | 3, w.Descriptor);
            Assert.Equal(new HashSet<ulong> { r.Frame(root1), r.Frame(root2), r.Frame(l1), r.Frame(l2), r.Frame(l3) }, r.Host.ReadOnly);

            // One store to the shared level-3 table: both of its mirrors follow.
            Assert.Equal(ShadowStatus.Ok, r.Store(l3, Descriptor.Index(Va, 3), Page(gpaB)));
            foreach (var w in new[] { r.Walk(shadow1, Va), r.Walk(shadow2, Va), r.Walk(shadow2, Va + other) })
                Assert.Equal(frameB | PageAttrs | 3, w.Descriptor);
            Assert.Equal(new[] { Va, Va + other }, r.Host.VaInvalidations.Select(v => v.Va).OrderBy(v => v));

            // A new branch in the shared level-1 table appears wherever it is mapped.
            ulong va2 = Va ^ (1UL << 30);
            ulong l2b = r.NewTable(), l3b = r.NewTable();
            r.Set(l2b, Descriptor.Index(va2, 2), l3b | 3);
            r.Set(l3b, Descriptor.Index(va2, 3), Page(gpaC));
            Assert.Equal(ShadowStatus.Ok, r.Store(l1, Descriptor.Index(va2, 1), l2b | 3));
            foreach (var w in new[] { r.Walk(shadow1, va2), r.Walk(shadow2, va2), r.Walk(shadow2, va2 + other) })
                Assert.Equal(frameC | PageAttrs | 3, w.Descriptor);
            Assert.Equal(12, r.Tables.PagesInUse);
            r.CheckAccounting();

            // root1 lets go of the shared mirror: root2 still holds it.
            Assert.Equal(ShadowStatus.Ok, r.Store(root1, i0, 0));
            Assert.Equal(12, r.Tables.PagesInUse);
            Assert.Equal(0UL, r.Tables.PagesFreed);
            Assert.Equal((0UL, 0), (r.Walk(shadow1, Va).Descriptor, r.Walk(shadow1, Va).Level));
            Assert.Equal(frameB | PageAttrs | 3, r.Walk(shadow2, Va).Descriptor);
            Assert.Equal(frameC | PageAttrs | 3, r.Walk(shadow2, va2).Descriptor);

            // root2 lets go of it too: that copy of L1-L3 and the new branch go;
            // the guest tables stay protected, still mirrored at Va + 512 GiB.
            Assert.Equal(ShadowStatus.Ok, r.Store(root2, i0, 0));
            Assert.Equal(12 - 5, r.Tables.PagesInUse);
            Assert.Equal(frameB | PageAttrs | 3, r.Walk(shadow2, Va + other).Descriptor);
            Assert.Equal(new HashSet<ulong> { r.Frame(root1), r.Frame(root2), r.Frame(l1), r.Frame(l2), r.Frame(l3), r.Frame(l2b), r.Frame(l3b) }, r.Host.ReadOnly);
            r.CheckAccounting();

            r.Tables.DropAll();
            Assert.Equal(0, r.Tables.PagesInUse);
            Assert.Empty(r.Host.ReadOnly);
            r.CheckAccounting();
        }

        // A guest table linked from many places (Linux's KASAN early shadow: one
        // level-3 table under hundreds of level-2 entries) has more mirrors than
        // OnGuestWrite's batch of 32. Every mirror must follow the write.
        [Fact]
        public void AGuestTableWithMoreThan32MirrorsIsUpdatedInAllOfThem()
        {
            const int links = 40;
            var r = new ShadowRig();
            ulong root = r.NewTable();
            ulong gpaA = RamBase + 0x1000, gpaB = RamBase + 0x2000;
            ulong frameA = r.Host.Back(gpaA), frameB = r.Host.Back(gpaB);
            ulong l2 = r.TableFor(root, 0, 2);
            ulong t = r.NewTable();
            for (int i = 0; i < links; i++) r.Set(l2, i, t | 3);
            r.Set(t, 0, Page(gpaA));
            ulong shadow = r.RootFor(root);
            Assert.Equal(3 + links, r.Tables.PagesInUse);
            for (int i = 0; i < links; i++) Assert.Equal(frameA | PageAttrs | 3, r.Walk(shadow, (ulong)i << 21).Descriptor);

            Assert.Equal(ShadowStatus.Ok, r.Store(t, 0, Page(gpaB)));

            var stale = Enumerable.Range(0, links)
                .Where(i => r.Walk(shadow, (ulong)i << 21).Descriptor != (frameB | PageAttrs | 3))
                .ToList();
            Assert.True(stale.Count == 0, $"{stale.Count} of {links} mirrors still map the old frame (L2 entries {string.Join(",", stale)})");
            Assert.Equal(links, r.Host.VaInvalidations.Count);
            r.CheckAccounting();
        }

        [Fact]
        public void OutOfPagesDuringAGuestWriteLeaksNothing()
        {
            var r = new ShadowRig(capacity: 5);
            ulong root = r.NewTable();
            r.Map(root, Va, 3, Page(RamBase + 0x1000));
            ulong shadow = r.RootFor(root);
            Assert.Equal(4, r.Tables.PagesInUse);
            ulong l1 = r.TableFor(root, Va, 1);
            ulong va2 = Va ^ (1UL << 30);
            ulong l2b = r.NewTable(), l3b = r.NewTable();
            r.Set(l2b, Descriptor.Index(va2, 2), l3b | 3);
            r.Set(l3b, Descriptor.Index(va2, 3), Page(RamBase + 0x2000));
            var protectedBefore = new HashSet<ulong>(r.Host.ReadOnly);

            Assert.Equal(ShadowStatus.OutOfShadowPages, r.Store(l1, Descriptor.Index(va2, 1), l2b | 3));

            Assert.Equal(4, r.Tables.PagesInUse);
            Assert.Equal(protectedBefore, r.Host.ReadOnly);
            Assert.Equal(0UL, r.Walk(shadow, va2).Descriptor);
            Assert.Equal((TrapBase + RamBase + 0x1000) | PageAttrs | 3, r.Walk(shadow, Va).Descriptor);
            r.CheckAccounting();
        }

        // ---- the root cache ----

        [Fact]
        public void TheSameGuestRootTwiceIsACacheHit()
        {
            var r = new ShadowRig();
            ulong root = r.NewTable();
            r.Map(root, Va, 3, Page(RamBase + 0x1000));
            ulong first = r.Tables.RootFor(root, false, 0, 0, 0, out bool hit1);
            ulong built = r.Tables.PagesBuilt;
            // TTBR bits that are not the address (CnP, ASID) do not make another tree.
            ulong second = r.Tables.RootFor(root | 1 | (5UL << 48), false, 0, 0, 0, out bool hit2);

            Assert.False(hit1);
            Assert.True(hit2);
            Assert.Equal(first, second);
            Assert.Equal(1UL, r.Tables.RootHits);
            Assert.Equal(1UL, r.Tables.RootsBuilt);
            Assert.Equal(built, r.Tables.PagesBuilt);

            // The other TTBR's view of the same table is a tree of its own.
            ulong upper = r.Tables.RootFor(root, true, 0, 0xFFFF_0000_0000_0000, first, out bool hit3);
            Assert.False(hit3);
            Assert.NotEqual(first, upper);
            Assert.Equal(2UL, r.Tables.RootsBuilt);
            r.CheckAccounting();
        }

        [Fact]
        public void TheLeastRecentlyUsedRootIsEvictedButNeverTheKeptOne()
        {
            var r = new ShadowRig();
            int n = ShadowTables.MaxRoots;
            var roots = new ulong[n];
            var shadows = new ulong[n];
            for (int i = 0; i < n; i++)
            {
                roots[i] = r.NewTable();
                r.Map(roots[i], Va, 3, Page(RamBase + 0x1000 * (ulong)(i + 1)));
                shadows[i] = r.RootFor(roots[i]);
            }
            Assert.Equal(4 * n, r.Tables.PagesInUse);
            Assert.Equal(0UL, r.Tables.RootEvictions);
            r.Tables.RootFor(roots[0], false, 0, 0, 0, out bool hit);
            Assert.True(hit);                                      // roots[1] is now the least recently used

            ulong extra = r.NewTable();
            r.RootFor(extra, keep: shadows[1]);                    // ...but the other TTBR uses it

            Assert.Equal(1UL, r.Tables.RootEvictions);
            Assert.False(r.Tables.IsMirrored(r.Frame(roots[2])));  // the next oldest went
            Assert.DoesNotContain(r.Frame(roots[2]), r.Host.ReadOnly);
            Assert.DoesNotContain(r.Frame(r.TableFor(roots[2], Va, 3)), r.Host.ReadOnly);
            Assert.True(r.Tables.IsMirrored(r.Frame(roots[1])));
            Assert.Equal(4 * (n - 1) + 1, r.Tables.PagesInUse);
            Assert.Equal(shadows[1], r.Tables.RootFor(roots[1], false, 0, 0, 0, out hit));
            Assert.True(hit);

            // Without a keep, the least recently used goes: roots[3].
            ulong extra2 = r.NewTable();
            r.RootFor(extra2);
            Assert.Equal(2UL, r.Tables.RootEvictions);
            Assert.False(r.Tables.IsMirrored(r.Frame(roots[3])));
            foreach (int i in new[] { 0, 1, 4, 5, 6, 7 })
            {
                Assert.Equal(shadows[i], r.Tables.RootFor(roots[i], false, 0, 0, 0, out hit));
                Assert.True(hit);
            }
            // An evicted root comes back as a fresh build (a miss).
            r.Tables.RootFor(roots[2], false, 0, 0, shadows[1], out hit);
            Assert.False(hit);
            Assert.Equal(3UL, r.Tables.RootEvictions);
            r.CheckAccounting();
        }

        // Eviction frees shadow table pages the MMU may have cached walks
        // through (TTBR0 switches keep the guest's ASID, so a cached walk of the
        // old tree can be used again); they go back to the host allocator, so
        // the TLB must forget them, as DropAll and OnGuestWrite do.
        [Fact]
        public void EvictingARootInvalidatesTheTlb()
        {
            var r = new ShadowRig();
            for (int i = 0; i < ShadowTables.MaxRoots; i++)
            {
                ulong root = r.NewTable();
                r.Map(root, Va, 3, Page(RamBase + 0x1000));
                r.RootFor(root);
            }
            Assert.Equal(0, r.Host.AllInvalidations);
            int live = r.Memory.LiveTables.Count;

            r.RootFor(r.NewTable());

            Assert.Equal(1UL, r.Tables.RootEvictions);
            Assert.Equal(live - 3, r.Memory.LiveTables.Count);      // four pages freed, one built
            Assert.True(r.Host.AllInvalidations >= 1, "an evicted tree's pages were freed without a TLB invalidation");
            r.CheckAccounting();
        }

        [Fact]
        public void DropAllFreesEveryPageAndUnprotectsEveryGuestTable()
        {
            var r = new ShadowRig();
            var g = SharedLeafTree(r);
            ulong other = r.NewTable();
            r.Set(other, 0, g.L1 | 3);
            r.Map(other, Va, 2, Block(RamBase + 0x20_0000));
            r.RootFor(g.Root);
            r.RootFor(other);
            r.RootFor(g.Root, upper: true, vaBase: 0xFFFF_0000_0000_0000);
            Assert.NotEmpty(r.Host.ReadOnly);

            r.Tables.DropAll();

            Assert.Equal(0, r.Tables.PagesInUse);
            Assert.Empty(r.Memory.LiveTables);
            Assert.Empty(r.Host.ReadOnly);
            Assert.Equal(1, r.Host.AllInvalidations);
            foreach (ulong t in new[] { g.Root, g.L1, g.A, g.B, g.T, g.U, other })
                Assert.False(r.Tables.IsMirrored(r.Frame(t)));
            r.Tables.RootFor(g.Root, false, 0, 0, 0, out bool hit);
            Assert.False(hit);
            r.CheckAccounting();
        }

        // ---- running out ----

        [Theory]
        [InlineData(0)]
        [InlineData(1)]
        [InlineData(3)]
        [InlineData(4)]
        public void RootForReturnsZeroWithoutLeakingWhenThePoolIsExhausted(int capacity)
        {
            // Five pages needed: L0, L1, L2 and two L3 mirrors.
            var r = new ShadowRig(capacity: capacity);
            ulong root = r.NewTable();
            r.Map(root, Va, 3, Page(RamBase + 0x1000));
            r.Map(root, Va ^ (1UL << 21), 3, Page(RamBase + 0x2000));
            int allocated = r.Memory.LiveTables.Count;

            Assert.Equal(0UL, r.Tables.RootFor(root, false, 0, 0, 0, out bool hit));

            Assert.False(hit);
            Assert.Equal(0, r.Tables.PagesInUse);
            Assert.Equal(allocated, r.Memory.LiveTables.Count);
            Assert.Empty(r.Host.ReadOnly);
            Assert.Equal(0UL, r.Tables.RootsBuilt);
            r.CheckAccounting();

            // The failed root is not cached: with room it is built from scratch.
            var big = new ShadowRig(capacity: 5);
            ulong root2 = big.NewTable();
            big.Map(root2, Va, 3, Page(RamBase + 0x1000));
            big.Map(root2, Va ^ (1UL << 21), 3, Page(RamBase + 0x2000));
            big.RootFor(root2);
            Assert.Equal(5, big.Tables.PagesInUse);
        }

        [Fact]
        public void AFailedRootLeavesTheCachedOnesIntact()
        {
            var r = new ShadowRig(capacity: 6);
            ulong root1 = r.NewTable();
            r.Map(root1, Va, 3, Page(RamBase + 0x1000));
            ulong shadow1 = r.RootFor(root1);
            ulong root2 = r.NewTable();
            r.Map(root2, Va, 3, Page(RamBase + 0x1000));
            r.Map(root2, Va ^ (1UL << 21), 3, Page(RamBase + 0x2000));

            Assert.Equal(0UL, r.Tables.RootFor(root2, false, 0, 0, shadow1, out _));
            Assert.Equal(4, r.Tables.PagesInUse);
            Assert.Equal(4, r.Host.ReadOnly.Count);
            Assert.Equal(shadow1, r.Tables.RootFor(root1, false, 0, 0, 0, out bool hit));
            Assert.True(hit);
            Assert.Equal(TrapBase + RamBase + 0x1000, r.Walk(shadow1, Va).Descriptor & Mask);
            r.CheckAccounting();
        }

        [Fact]
        public void RootForReturnsZeroWithoutLeakingWhenTheHostHasNoTableFrames()
        {
            var r = new ShadowRig();
            ulong root = r.NewTable();
            r.Map(root, Va, 3, Page(RamBase + 0x1000));
            r.Memory.FramesLeft = 3;                               // AllocateTable fails on the fourth page
            Assert.Equal(0UL, r.Tables.RootFor(root, false, 0, 0, 0, out _));
            Assert.Equal(0, r.Tables.PagesInUse);
            Assert.Empty(r.Memory.LiveTables);
            Assert.Empty(r.Host.ReadOnly);
            r.CheckAccounting();

            // A table at a RAM GPA the host cannot back any more.
            var s = new ShadowRig();
            ulong root2 = s.NewTable();
            s.Set(root2, 0, (RamBase + 0x300_0000) | 3);
            s.Host.FramesLeft = 0;
            Assert.Equal(0UL, s.Tables.RootFor(root2, false, 0, 0, 0, out _));
            Assert.Equal(0, s.Tables.PagesInUse);
            Assert.Empty(s.Host.ReadOnly);
            s.CheckAccounting();
        }

        // ---- hostile guests ----

        [Fact]
        public void ATableThatPointsToItselfIsMirroredOncePerLevel()
        {
            var r = new ShadowRig();
            ulong t = r.NewTable();
            r.Set(t, 0, t | 3);                                   // level 0, 1, 2: a table; level 3: a page

            ulong shadow = r.RootFor(t);

            Assert.Equal(4, r.Tables.PagesInUse);
            var w = r.Walk(shadow, 0x123);
            Assert.Equal(3, w.Level);
            Assert.Equal(r.Frame(t) | 3, w.Descriptor);           // the guest sees its own table at VA 0
            Assert.Equal(new HashSet<ulong> { r.Frame(t) }, r.Host.ReadOnly);

            // A write to it reaches all four mirrors, some of which the others free.
            Assert.Equal(ShadowStatus.Ok, r.Store(t, 0, t | 3));
            Assert.Equal(4, r.Tables.PagesInUse);
            Assert.Equal(r.Frame(t) | 3, r.Walk(shadow, 0x123).Descriptor);
            r.CheckAccounting();

            Assert.Equal(ShadowStatus.Ok, r.Store(t, 0, 0));
            Assert.Equal(1, r.Tables.PagesInUse);                 // only the root mirror is left
            Assert.Equal(new HashSet<ulong> { r.Frame(t) }, r.Host.ReadOnly);
            r.CheckAccounting();
        }

        [Fact]
        public void TwoTablesPointingToEachOtherTerminate()
        {
            var r = new ShadowRig();
            ulong a = r.NewTable(), b = r.NewTable();
            r.Set(a, 0, b | 3);
            r.Set(b, 0, a | 3);
            ulong shadow = r.RootFor(a);
            Assert.Equal(4, r.Tables.PagesInUse);
            Assert.Equal(r.Frame(a) | 3, r.Walk(shadow, 0).Descriptor);   // A, B, A, B[0] = A as a page
            Assert.Equal(new HashSet<ulong> { r.Frame(a), r.Frame(b) }, r.Host.ReadOnly);
            r.CheckAccounting();
        }

        [Theory]
        [InlineData(64)]
        [InlineData(2048)]   // the kernel's pool (ShadowPaging.PoolPages)
        public void ATableThatPointsToItselfEverywhereIsBoundedByThePool(int capacity)
        {
            var r = new ShadowRig(capacity: capacity);
            ulong t = r.NewTable();
            for (int i = 0; i < Descriptor.EntriesPerTable; i++) r.Set(t, i, t | 3);   // 512^3 pages to mirror it all

            Assert.Equal(0UL, r.Tables.RootFor(t, false, 0, 0, 0, out _));

            Assert.Equal(0, r.Tables.PagesInUse);
            Assert.Empty(r.Memory.LiveTables);
            Assert.Empty(r.Host.ReadOnly);
            Assert.Equal((ulong)capacity, r.Tables.PagesBuilt);
            Assert.True(r.Tables.EntriesDerived <= (ulong)capacity * Descriptor.EntriesPerTable + 4,
                $"{r.Tables.EntriesDerived} entries derived for a pool of {capacity}");
            r.CheckAccounting();
        }
    }
}
