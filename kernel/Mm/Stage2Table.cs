using System;
using Hypervisor.Arch;

namespace Hypervisor.Mm
{
    public enum Stage2Status
    {
        Ok,
        Misaligned,          // IPA or PA not aligned to the mapping size
        IpaOutOfRange,       // IPA beyond the VM's IPA size (VTCR_EL2.T0SZ)
        OutputOutOfRange,    // PA beyond the 48 bits a descriptor can hold
        NotMapped,           // nothing valid maps this IPA (a stage-2 translation fault)
        OutOfTables,         // AllocateTable returned 0; nothing was changed
        TableInTheWay,       // Map2M over a level-3 table that still maps pages
    }

    // The result of one software stage-2 walk.
    public struct Stage2Lookup
    {
        public ulong Ipa;
        public ulong Pa;             // valid when the walk succeeded
        public ulong Descriptor;     // the last entry read: the leaf, or the one that faulted
        public int Level;            // level of that entry (0 for an IPA out of range)
        public int Reads;            // memory reads the walk made
    }

    // One VM's stage-2 translation tables: IPA (what the guest thinks is
    // physical) -> PA (host physical). The root is provided by the caller,
    // zeroed and aligned to its size (Stage2Layout.RootTableBytes); the
    // intermediate tables come from PageTableMemory.AllocateTable.
    //
    // Break-before-make (Arm ARM, "Using break-before-make when updating
    // translation table entries"): a valid entry must not be overwritten with
    // another valid entry of a different output address or block size, or
    // another core's TLB could hold both translations at once, which the
    // architecture leaves unpredictable. So a change is always
    //   1. write an invalid entry,
    //   2. invalidate the TLB for that IPA (and wait for completion),
    //   3. write the new entry.
    // Between 1 and 3 a guest access takes a stage-2 fault; the fault path
    // takes the same lock, so when it looks the new entry is in place and the
    // guest simply retries the access.
    // Permission-only changes are allowed without the break; we break anyway,
    // which keeps one rule for every change.
    //
    // Not thread-safe: the caller holds the VM's stage-2 lock. Nothing here
    // allocates managed memory: it runs on the stage-2 fault path.
    public sealed unsafe class Stage2Table
    {
        public const ulong PageSize = 4096;
        public const ulong BlockSize = 2UL << 20;
        public const ulong HugeBlockSize = 1UL << 30;   // a level-1 block
        public const ulong MaxOutputAddress = 1UL << 48;

        private readonly PageTableMemory _memory;
        private readonly TlbMaintenance _tlb;
        private readonly ulong _root;
        private readonly int _startLevel;
        private readonly int _rootEntries;
        private readonly ulong _ipaLimit;

        private ulong _tablesAllocated;
        private ulong _tablesFreed;
        private ulong _livePages;
        private ulong _liveBlocks;
        private ulong _liveHugeBlocks;
        // The new tables of one ReachLevel (at most three). A field, not a
        // stackalloc: a stackalloc'd buffer costs every walk, including the
        // common one that needs no new table, a zeroed frame and a stack
        // cookie check. (One walk at a time: the VM's lock is held.)
        private readonly ulong[] _fresh = new ulong[4];

        // The layout this project uses: a 40-bit IPA, walk starting at level 1
        // with two concatenated level-1 tables (an 8 KiB root).
        public Stage2Table(PageTableMemory memory, TlbMaintenance tlb, ulong rootPhysicalAddress)
            : this(memory, tlb, rootPhysicalAddress, 40) { }

        // An unsupported ipaBits leaves an empty IPA space: every call then
        // answers IpaOutOfRange.
        public Stage2Table(PageTableMemory memory, TlbMaintenance tlb, ulong rootPhysicalAddress, int ipaBits)
        {
            _memory = memory;
            _tlb = tlb;
            _root = rootPhysicalAddress;
            if (Stage2Layout.Geometry(ipaBits, out _startLevel, out _rootEntries)) _ipaLimit = 1UL << ipaBits;
        }

        public ulong Root => _root;
        public int StartLevel => _startLevel;
        public ulong IpaLimit => _ipaLimit;
        public PageTableMemory Memory => _memory;

        public ulong TablesAllocated => _tablesAllocated;   // ever, excluding the root
        public ulong TablesFreed => _tablesFreed;
        public ulong TablesInUse => _tablesAllocated - _tablesFreed;
        public ulong LivePages => _livePages;               // valid 4 KiB page entries
        public ulong LiveBlocks => _liveBlocks;             // valid block entries (2 MiB, or 1 GiB)
        public ulong LiveHugeBlocks => _liveHugeBlocks;     // of those, the 1 GiB ones

        // Maps the 4 KiB page at `ipa` to the frame at `pa`. `attributes` are
        // the stage-2 leaf attribute bits (Stage2.Attributes or a Stage2 constant).
        public Stage2Status Map4K(ulong ipa, ulong pa, ulong attributes)
        {
            Stage2Status status = Check(ipa, pa, PageSize);
            if (status != Stage2Status.Ok) return status;
            return MapAt(ipa, Stage2.Page(pa, attributes), 3);
        }

        // Maps the 2 MiB block at `ipa` to the 2 MiB at `pa` with one level-2
        // entry: one TLB entry covers it, and walks of it stop a level early.
        public Stage2Status Map2M(ulong ipa, ulong pa, ulong attributes)
        {
            Stage2Status status = Check(ipa, pa, BlockSize);
            if (status != Stage2Status.Ok) return status;
            return MapAt(ipa, Stage2.Block(pa, 2, attributes), 2);
        }

        // Maps the 1 GiB at `ipa` to the 1 GiB at `pa` with one level-1 entry.
        public Stage2Status Map1G(ulong ipa, ulong pa, ulong attributes)
        {
            Stage2Status status = Check(ipa, pa, HugeBlockSize);
            if (status != Stage2Status.Ok) return status;
            if (_startLevel > 1) return Stage2Status.Misaligned;   // no level-1 entry to hold it
            return MapAt(ipa, Stage2.Block(pa, 1, attributes), 1);
        }

        // Removes the 4 KiB page at `ipa` and reports the frame it mapped. Inside
        // a block, the block is first split so the neighbours stay mapped (this
        // needs a new table, so it can fail with OutOfTables).
        public Stage2Status Unmap4K(ulong ipa, out ulong pa)
        {
            pa = 0;
            Stage2Status status = Check(ipa, 0, PageSize);
            if (status != Stage2Status.Ok) return status;
            status = ReachLevel(ipa, 3, false, out ulong entry, out ulong old);
            if (status != Stage2Status.Ok) return status;
            if (!Descriptor.IsPage(old, 3)) return Stage2Status.NotMapped;
            pa = Descriptor.OutputAddress(old, 3);
            Replace(entry, old, 0, ipa);
            _livePages--;
            return Stage2Status.Ok;
        }

        // Fault-around: page i of the run from `ipa` maps pas[i] where pas[i]
        // is not 0 and the entry is invalid. Nothing valid is replaced, so
        // there is no TLB work. The run must lie in one level-3 table (at most
        // 64 pages); the table is created if missing, and inside a block every
        // page is mapped already. `pagesMappedMask` says which pages were
        // mapped (bit i for page i; `pagesMapped` of them); a frame whose bit
        // is clear is still the caller's. One pass: the caller need not find
        // the empty entries first (a valid one simply keeps its mapping).
        // (This loop runs for every page Linux zeroes before it balloons it:
        // the leaf's attribute bits are computed once, each frame's address
        // is checked with one compare.)
        public unsafe Stage2Status FillEmptyPages(ulong ipa, ReadOnlySpan<ulong> pas, ulong attributes, out ulong pagesMappedMask, out int pagesMapped)
        {
            pagesMapped = 0;
            pagesMappedMask = 0;
            Stage2Status status = CheckRun(ipa, pas.Length);
            if (status != Stage2Status.Ok) return status;
            int level = FirstNonTableLevel(ipa, 3, out ulong entry, out ulong old);
            if (level != 3)
            {
                if (Descriptor.IsBlock(old, level)) return Stage2Status.Ok;   // mapped already, every page
                status = ReachLevel(ipa, 3, true, out entry, out _);
                if (status != Stage2Status.Ok) return status;
            }
            PageTableMemory memory = _memory;
            ulong leaf = Stage2.Page(0, attributes);
            ulong mapped = 0, bit = 1, at = entry;   // (a local: `entry` had its address taken by the walk)
            int count = 0;
            fixed (ulong* frames = pas)
            {
                for (int i = 0; i < pas.Length; i++, at += 8, bit <<= 1)
                {
                    ulong pa = frames[i];
                    // No frame, not a page-aligned one, beyond the output
                    // range, or the entry is valid already: left alone. (The
                    // address rotated right by 12 is its frame number with
                    // any misaligned bits at the top: one compare refuses
                    // 0, which wraps, misaligned and too high alike.)
                    ulong frameNumber = (pa >> 12) | (pa << 52);
                    if (frameNumber - 1 >= (MaxOutputAddress >> 12) - 1
                        || Descriptor.IsValid(memory.Read64(at))) continue;
                    memory.Write64(at, pa | leaf);
                    mapped |= bit;
                    count++;
                }
            }
            _livePages += (ulong)count;
            pagesMapped = count;
            pagesMappedMask = mapped;
            return Stage2Status.Ok;
        }

        // The demand fault's common case, without MapAt's generality: the
        // level-3 table for `ipa` exists and its entry is invalid, so the page
        // entry is simply written (invalid -> valid: no TLB work, nothing to
        // break). Anything else (no table yet, a block, a valid entry) returns
        // false and the caller takes Map4K's general path. One walk, no
        // callee-saved registers of MapAt and ReachLevel to pay for.
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        public bool MapIfEmpty(ulong ipa, ulong pa, ulong attributes)
        {
            if (Check(ipa, pa, PageSize) != Stage2Status.Ok) return false;
            if (FirstNonTableLevel(ipa, 3, out ulong entry, out ulong old) != 3 || Descriptor.IsValid(old)) return false;
            _memory.Write64(entry, Stage2.Page(pa, attributes));
            _livePages++;
            return true;
        }

        private Stage2Status CheckRun(ulong ipa, int count)
        {
            Stage2Status status = Check(ipa, 0, PageSize);
            if (status != Stage2Status.Ok) return status;
            if (count <= 0 || count > 64 || IndexAt(ipa, 3) + count > Descriptor.EntriesPerTable) return Stage2Status.Misaligned;
            return Stage2Status.Ok;
        }

        // Unmaps a run of 4 KiB pages from `ipa` that share one level-3 table:
        // one walk for the whole run instead of one per page (the balloon hands
        // pages back in runs). Each live entry still goes through
        // break-before-make. Stops at the end of that table, after `count`
        // pages, or when `pas` is full. pas[i] gets the frame that page i had,
        // or 0 when it had none (`withFrames` counts the pages that had one).
        // Returns the number of pages covered (0 only for a bad address). A
        // page inside a 2 MiB block is split out as Unmap4K does. Where the
        // walk stops at an invalid entry above level 3, every page under it
        // is unmapped already: the run covers them all at once (a VM booted
        // with boot_balloon gives pages it never touched, one walk per page
        // before: 95 instructions each).
        public int UnmapPages(ulong ipa, int count, Span<ulong> pas, out int withFrames)
        {
            withFrames = 0;
            if (count <= 0 || pas.Length == 0 || Check(ipa, 0, PageSize) != Stage2Status.Ok) return 0;
            int level = FirstNonTableLevel(ipa, 3, out ulong entry, out ulong old);
            if (level != 3 && Descriptor.IsBlock(old, level))
            {
                pas[0] = 0;
                if (Unmap4K(ipa, out ulong pa) == Stage2Status.Ok)
                {
                    pas[0] = pa;
                    withFrames = 1;
                }
                return 1;
            }
            // Pages to the end of the level-3 table, or of the invalid entry's region.
            ulong regionSize = Descriptor.LevelSize(level == 3 ? 2 : level);
            int n = (int)((regionSize - (ipa & (regionSize - 1))) >> 12);
            if (n > count) n = count;
            if (n > pas.Length) n = pas.Length;
            if (level != 3)
            {
                pas.Slice(0, n).Clear();
                return n;
            }
            ulong unmapped = 0;
            // The table memory in a local: the loop runs for every page the
            // balloon takes, and the field was reloaded and null-checked
            // around each entry. Every entry of the run is cleared first, then
            // the run's invalidations are issued (break, with no make), so the
            // writes need one barrier before the TLBIs instead of one each.
            PageTableMemory memory = _memory;
            fixed (ulong* frames = pas)
            {
                for (int i = 0; i < n; i++, entry += 8)
                {
                    ulong d = memory.Read64(entry);
                    if (!Descriptor.IsPage(d, 3)) { frames[i] = 0; continue; }
                    frames[i] = Descriptor.OutputAddress(d, 3);
                    memory.Write64(entry, 0);
                    unmapped++;
                }
            }
            if (unmapped != 0) _tlb.UnmappedRun(ipa, pas.Slice(0, n), (int)unmapped);
            _livePages -= unmapped;
            withFrames = (int)unmapped;
            return n;
        }

        // Software walk, the same steps the MMU takes: PA for `ipa`, the leaf
        // descriptor and its level; or NotMapped with the level that faulted.
        public Stage2Status Translate(ulong ipa, out ulong pa, out ulong descriptor, out int level)
        {
            Stage2Status status = Lookup(ipa, default, out Stage2Lookup result);
            pa = result.Pa;
            descriptor = result.Descriptor;
            level = result.Level;
            return status;
        }

        // The host-physical address behind `ipa`, or 0 when nothing maps it:
        // Translate's answer from the walk alone, nothing else recorded. (A
        // device reads guest memory through this several times a request:
        // the queue's rings, its descriptors, the balloon's page lists.)
        public ulong HostAddress(ulong ipa)
        {
            if (ipa >= _ipaLimit) return 0;
            int level = FirstNonTableLevel(ipa, 3, out _, out ulong d);
            if (!Descriptor.IsLeaf(d, level)) return 0;
            return Descriptor.OutputAddress(d, level) | (ipa & (Descriptor.LevelSize(level) - 1));
        }

        // Records every entry the walk for `ipa` reads into `steps` and returns
        // how many were recorded (3 for a page, 2 for a 2 MiB block with a 40-bit IPA).
        public int Walk(ulong ipa, Span<TranslationStep> steps)
        {
            Lookup(ipa, steps, out Stage2Lookup result);
            return result.Reads < steps.Length ? result.Reads : steps.Length;
        }

        // The walk itself. Reads beyond steps.Length are still made and
        // counted in result.Reads, just not recorded.
        public Stage2Status Lookup(ulong ipa, Span<TranslationStep> steps, out Stage2Lookup result)
        {
            result = default;
            result.Ipa = ipa;
            // An IPA beyond T0SZ is reported as a level-0 translation fault.
            if (ipa >= _ipaLimit) return Stage2Status.IpaOutOfRange;
            ulong table = _root;
            for (int level = _startLevel; level <= 3; level++)
            {
                int index = IndexAt(ipa, level);
                ulong entry = table + (ulong)index * 8;
                ulong d = _memory.Read64(entry);
                if (result.Reads < steps.Length)
                {
                    ref TranslationStep step = ref steps[result.Reads];
                    step.Stage = 2;
                    step.Level = level;
                    step.InputAddress = ipa;
                    step.TableAddress = table;
                    step.Index = index;
                    step.EntryAddress = entry;
                    step.HostAddress = entry;
                    step.Descriptor = d;
                }
                result.Reads++;
                result.Level = level;
                result.Descriptor = d;
                if (Descriptor.IsTable(d, level))
                {
                    table = Descriptor.TableAddress(d);
                    continue;
                }
                if (!Descriptor.IsLeaf(d, level)) return Stage2Status.NotMapped;
                result.Pa = Descriptor.OutputAddress(d, level) | (ipa & (Descriptor.LevelSize(level) - 1));
                return Stage2Status.Ok;
            }
            return Stage2Status.NotMapped;
        }

        // Enumerates mapped memory as 4 KiB pages (blocks are reported page by
        // page) in ascending IPA order from `startIpa`, filling both spans as far
        // as they go. Call again with `nextIpa` until it equals IpaLimit. VM
        // teardown uses this to give each guest frame back before Destroy.
        public int CollectMappings(ulong startIpa, Span<ulong> ipas, Span<ulong> pas, out ulong nextIpa)
        {
            int capacity = ipas.Length < pas.Length ? ipas.Length : pas.Length;
            int count = 0;
            ulong ipa = startIpa & ~(PageSize - 1);
            while (ipa < _ipaLimit && count < capacity)
            {
                Stage2Status status = Lookup(ipa, default, out Stage2Lookup found);
                ulong regionSize = Descriptor.LevelSize(found.Level);
                ulong regionEnd = (ipa | (regionSize - 1)) + 1;
                if (status != Stage2Status.Ok)
                {
                    ipa = regionEnd;   // the faulting entry covers this whole region: skip it
                    continue;
                }
                ulong output = Descriptor.OutputAddress(found.Descriptor, found.Level);
                for (; ipa < regionEnd && count < capacity; ipa += PageSize, count++)
                {
                    ipas[count] = ipa;
                    pas[count] = output + (ipa & (regionSize - 1));
                }
            }
            nextIpa = ipa < _ipaLimit ? ipa : _ipaLimit;
            return count;
        }

        // Frees every intermediate table and empties the root; the root itself
        // and the mapped frames stay with the caller (collect those first).
        // No TLB maintenance here: at teardown the caller invalidates the whole
        // VMID (TLBI VMALLS12E1IS) before the VMID or any of these frames is
        // reused.
        public void Destroy(out int freedTables)
        {
            freedTables = 0;
            for (int i = 0; i < _rootEntries; i++)
            {
                ulong entry = _root + (ulong)i * 8;
                ulong d = _memory.Read64(entry);
                if (Descriptor.IsTable(d, _startLevel))
                    freedTables += FreeTree(Descriptor.TableAddress(d), _startLevel + 1);
                if (d != 0) _memory.Write64(entry, 0);
            }
            _livePages = 0;
            _liveBlocks = 0;
            _liveHugeBlocks = 0;
        }

        // ---- internals ----

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        private Stage2Status Check(ulong ipa, ulong pa, ulong size)
        {
            if (!Descriptor.IsAligned(ipa, size) || !Descriptor.IsAligned(pa, size)) return Stage2Status.Misaligned;
            if (ipa >= _ipaLimit) return Stage2Status.IpaOutOfRange;
            if (pa >= MaxOutputAddress) return Stage2Status.OutputOutOfRange;
            return Stage2Status.Ok;
        }

        // Index into the table at `level`. At the start level the index may have
        // more than 9 bits: that is how concatenated root tables are addressed.
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        private int IndexAt(ulong ipa, int level)
        {
            int mask = level == _startLevel ? _rootEntries - 1 : Descriptor.EntriesPerTable - 1;
            return (int)((ipa >> Descriptor.LevelShift(level)) & (ulong)mask);
        }

        private Stage2Status MapAt(ulong ipa, ulong leaf, int targetLevel)
        {
            // LAB 1 BEGIN Stage2Table.MapAt | return Stage2Status.OutOfTables;
            Stage2Status status = ReachLevel(ipa, targetLevel, true, out ulong entry, out ulong old);
            if (status != Stage2Status.Ok) return status;
            if (old == leaf) return Stage2Status.Ok;   // already so: nothing to do, no TLB work

            ulong regionBase = ipa & ~(Descriptor.LevelSize(targetLevel) - 1);
            if (Descriptor.IsTable(old, targetLevel))
            {
                // Map2M where a level-3 table hangs. Only an empty one may go:
                // otherwise pages the caller mapped would silently change.
                ulong child = Descriptor.TableAddress(old);
                if (TableHasValidEntries(child)) return Stage2Status.TableInTheWay;
                // The walker may have cached the table entry: break, invalidate,
                // and only then recycle the frame.
                _memory.Write64(entry, 0);
                _tlb.InvalidateIpa(regionBase);
                _memory.FreeTable(child);
                _tablesFreed++;
                _memory.Write64(entry, leaf);
            }
            else
            {
                CountLeaf(old, targetLevel, -1);
                Replace(entry, old, leaf, regionBase);
            }
            CountLeaf(leaf, targetLevel, +1);
            return Stage2Status.Ok;
            // LAB 1 END
        }

        // Walks to the entry for `ipa` at `targetLevel`, creating missing tables
        // (when createMissing) and splitting larger blocks on the way. Every
        // table the walk will need is allocated before anything is written, so
        // running out of frames leaves the tables exactly as they were.
        private Stage2Status ReachLevel(ulong ipa, int targetLevel, bool createMissing, out ulong entry, out ulong old)
        {
            // LAB 1 BEGIN Stage2Table.ReachLevel | entry = 0; old = 0; return Stage2Status.OutOfTables;
            int level = FirstNonTableLevel(ipa, targetLevel, out entry, out old);
            if (level == targetLevel) return Stage2Status.Ok;
            bool isBlock = Descriptor.IsBlock(old, level);
            if (!createMissing && !isBlock) return Stage2Status.NotMapped;

            int needed = targetLevel - level;   // one new table per level below this one
            Span<ulong> fresh = _fresh;
            for (int i = 0; i < needed; i++)
            {
                fresh[i] = _memory.AllocateTable();
                if (fresh[i] == 0)
                {
                    for (int j = 0; j < i; j++) _memory.FreeTable(fresh[j]);
                    return Stage2Status.OutOfTables;
                }
            }
            _tablesAllocated += (ulong)needed;

            for (int i = 0; i < needed; i++, level++)
            {
                ulong table = fresh[i];
                if (Descriptor.IsBlock(old, level))
                    SplitBlock(entry, old, level, ipa, table);
                else
                    Replace(entry, old, Stage2.Table(table), ipa);   // an empty table: nothing maps yet
                entry = table + (ulong)IndexAt(ipa, level + 1) * 8;
                old = _memory.Read64(entry);
            }
            return Stage2Status.Ok;
            // LAB 1 END
        }

        // Follows table entries from the root towards `targetLevel` and stops at
        // the first entry that is not a table, or at targetLevel.
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        private int FirstNonTableLevel(ulong ipa, int targetLevel, out ulong entry, out ulong descriptor)
        {
            // IndexAt, unrolled by hand: the shift drops by 9 bits a level and
            // only the root's mask can differ (every demand fault comes here).
            ulong table = _root;
            int level = _startLevel;
            int shift = Descriptor.LevelShift(level);
            ulong mask = (ulong)_rootEntries - 1;
            while (true)
            {
                ulong at = table + ((ipa >> shift) & mask) * 8;
                ulong d = _memory.Read64(at);
                if (level == targetLevel || !Descriptor.IsTable(d, level))
                {
                    entry = at;
                    descriptor = d;
                    return level;
                }
                table = Descriptor.TableAddress(d);
                level++;
                shift -= 9;
                mask = Descriptor.EntriesPerTable - 1;
            }
        }

        // Replaces the block at `entry` by `newTable` holding 512 entries of the
        // next level that map exactly what the block mapped, with the same
        // attributes. The new table is complete before it becomes visible, and
        // the swap itself is a break-before-make on the block's IPA: for the
        // instant in between, the whole block faults.
        private void SplitBlock(ulong entry, ulong block, int level, ulong ipa, ulong newTable)
        {
            int childLevel = level + 1;
            ulong childSize = Descriptor.LevelSize(childLevel);
            ulong output = Descriptor.OutputAddress(block, level);
            ulong attributes = Descriptor.Attributes(block);
            for (int i = 0; i < Descriptor.EntriesPerTable; i++)
            {
                ulong pa = output + (ulong)i * childSize;
                ulong child = childLevel == 3 ? Stage2.Page(pa, attributes) : Stage2.Block(pa, childLevel, attributes);
                _memory.Write64(newTable + (ulong)i * 8, child);
            }
            Replace(entry, block, Stage2.Table(newTable), ipa & ~(Descriptor.LevelSize(level) - 1));
            _liveBlocks--;
            if (level == 1) _liveHugeBlocks--;
            if (childLevel == 3) _livePages += (ulong)Descriptor.EntriesPerTable;
            else _liveBlocks += (ulong)Descriptor.EntriesPerTable;
        }

        // Writes `value` into `entry`, with break-before-make when the old
        // entry was valid. An invalid entry needs no TLB work: the TLB never
        // holds a translation that faulted.
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        private void Replace(ulong entry, ulong old, ulong value, ulong ipa)
        {
            if (Descriptor.IsValid(old))
            {
                _memory.Write64(entry, 0);
                if (value != 0) _tlb.InvalidateIpa(ipa);   // complete before the new entry
                else _tlb.Unmapped(ipa);                   // may wait for the batch's end
            }
            if (value != 0) _memory.Write64(entry, value);
        }

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        private void CountLeaf(ulong descriptor, int level, int delta)
        {
            if (Descriptor.IsPage(descriptor, level)) _livePages = (ulong)((long)_livePages + delta);
            else if (Descriptor.IsBlock(descriptor, level))
            {
                _liveBlocks = (ulong)((long)_liveBlocks + delta);
                if (level == 1) _liveHugeBlocks = (ulong)((long)_liveHugeBlocks + delta);
            }
        }

        private bool TableHasValidEntries(ulong table)
        {
            for (int i = 0; i < Descriptor.EntriesPerTable; i++)
                if (Descriptor.IsValid(_memory.Read64(table + (ulong)i * 8))) return true;
            return false;
        }

        // Frees `table` (at `level`) and every table below it; returns how many.
        // Recursion depth is at most three.
        private int FreeTree(ulong table, int level)
        {
            int freed = 0;
            if (level < 3)
            {
                for (int i = 0; i < Descriptor.EntriesPerTable; i++)
                {
                    ulong d = _memory.Read64(table + (ulong)i * 8);
                    if (Descriptor.IsTable(d, level)) freed += FreeTree(Descriptor.TableAddress(d), level + 1);
                }
            }
            _memory.FreeTable(table);
            _tablesFreed++;
            return freed + 1;
        }
    }
}
