using Hypervisor.Trap;

namespace Guest
{
    // Hostile page tables, one role per paging mode. Each attempt must end in a
    // defined answer -- an abort this guest catches, or a refusal -- and never
    // in a translation to memory that is not this VM's.
    public static unsafe class PagingHostile
    {
        private const ulong ScratchGva = 0x0000_0180_0000_0000;   // level-0 index 3
        private const ulong DataOffset = 40UL << 20;
        private const ulong Marker = 0x484f_5354_0000_0000;       // "HOST"
        private const int DataPages = 64;

        private static ulong RamEnd => Mmu.RamBase + Mmu.RamSize;
        private static ulong DataPage(int i) => Mmu.RamBase + DataOffset + (ulong)(uint)i * 4096;

        // role=badroot (paging=shadow): TTBR0_EL1 names a root table outside
        // RAM. This guest runs from TTBR0's half, so its very next fetch walks
        // that "table": the shadow's walk reads it through the trap window,
        // the fetch aborts, and so does the fetch of its exception vector. The
        // hypervisor stops the VM for that loop; it must not read host memory
        // or stop anyone else. Never returns.
        public static void BadRoot()
        {
            Console.Line("badroot: TTBR0_EL1 = a GPA 1 GiB past RAM");
            Cpu.WriteTtbr0(RamEnd + (1UL << 30));
            Cpu.TlbFlushAll();
            Console.Line("badroot: STILL RUNNING");
        }

        // role=walkrules (paging=shadow or direct): every SCTLR_EL1/TCR_EL1
        // setting that would make the MMU read a table entry other than as
        // the hypervisor wrote or checked it is refused with an undefined
        // instruction, and leaves the register as it was; the settings that
        // change no entry's meaning are taken. (kernel/Paging/WalkRules.cs.)
        // The first case is the endianness escape: a "table" descriptor stored
        // byte-swapped reads as invalid little-endian, so it is accepted (or
        // mirrored as nothing), and would become a valid table once the MMU
        // walked big-endian.
        public static void WalkRules()
        {
            ulong sctlr = Cpu.ReadSctlr(), tcr = Cpu.ReadTcr();
            ulong refusedBefore = Hvc.Counter(HypercallAbi.Counter.WalkRulesRefused);
            int refused = 0, cases = 0;
            if (Mmu.Tables is DirectTables t)
            {
                ulong root = t.NewTable(0);
                ulong* one = stackalloc ulong[2];
                one[0] = t.Address(root) + 8 * 5;
                one[1] = ByteSwap(t.Address(Mmu.LowL1) | PageTables.TableType);
                if ((long)t.Raw(one, 1).X0 == HypercallAbi.Ok) Console.Line("walkrules: a byte-swapped table entry stored (invalid little-endian)");
            }
            RefuseSctlr(sctlr | (1UL << 25), "SCTLR_EL1.EE=1", ref cases, ref refused);
            RefuseSctlr(sctlr & ~(1UL << 2), "SCTLR_EL1.C=0", ref cases, ref refused);
            RefuseTcr(tcr & ~(3UL << 8), "TCR_EL1.IRGN0=0", ref cases, ref refused);
            RefuseTcr(tcr & ~(3UL << 10), "TCR_EL1.ORGN0=0", ref cases, ref refused);
            RefuseTcr(tcr & ~(3UL << 12), "TCR_EL1.SH0=0", ref cases, ref refused);
            RefuseTcr((tcr & ~(3UL << 12)) | (1UL << 12), "TCR_EL1.SH0=1 (reserved)", ref cases, ref refused);
            RefuseTcr(tcr | (1UL << 14), "TCR_EL1.TG0=64 KiB", ref cases, ref refused);
            RefuseTcr(tcr & ~(1UL << 23), "TCR_EL1.EPD1=0 with IRGN1, ORGN1, SH1, TG1 all 0", ref cases, ref refused);
            // Allowed: EL0's data endianness, top-byte-ignore.
            bool allowed = Accept(sctlr | (1UL << 24), sctlr, true) && Accept(tcr | (1UL << 37), tcr, false);
            bool unchanged = Cpu.ReadSctlr() == sctlr && Cpu.ReadTcr() == tcr;
            ulong counted = Hvc.Counter(HypercallAbi.Counter.WalkRulesRefused) - refusedBefore;
            SelfTests.Verdict("walkrules", refused == cases && allowed && unchanged && counted == (ulong)cases);
            Console.Write("cases=");
            Console.Dec((ulong)cases);
            Console.Write(" refused=");
            Console.Dec((ulong)refused);
            Console.Write(" counted=");
            Console.Dec(counted);
            Console.Write(allowed ? " allowed=taken" : " allowed=REFUSED");
            Console.Write(unchanged ? " registers=unchanged\n" : " registers=CHANGED\n");
        }

        private static ulong ByteSwap(ulong v)
        {
            ulong r = 0;
            for (int i = 0; i < 8; i++) r |= ((v >> (8 * i)) & 0xff) << (8 * (7 - i));
            return r;
        }

        private static bool Undefined() => Traps.Taken == 1 && ((Traps.LastEsr >> 26) & 0x3f) == 0;

        private static void RefuseSctlr(ulong value, string what, ref int cases, ref int refused)
        {
            ulong before = Cpu.ReadSctlr();
            Traps.Expect();
            Cpu.WriteSctlr(value);
            Report(what, Undefined() && Cpu.ReadSctlr() == before, ref cases, ref refused);
        }

        private static void RefuseTcr(ulong value, string what, ref int cases, ref int refused)
        {
            ulong before = Cpu.ReadTcr();
            Traps.Expect();
            Cpu.WriteTcr(value);
            Report(what, Undefined() && Cpu.ReadTcr() == before, ref cases, ref refused);
        }

        private static void Report(string what, bool wasRefused, ref int cases, ref int refused)
        {
            Traps.Armed = false;
            cases++;
            if (wasRefused) refused++;
            Console.Write("walkrules: ");
            Console.Write(what);
            Console.Line(wasRefused ? " refused" : " NOT REFUSED");
        }

        // Write `value`, check it was taken, then put `restore` back.
        private static bool Accept(ulong value, ulong restore, bool sctlr)
        {
            Traps.Expect();
            if (sctlr) Cpu.WriteSctlr(value); else Cpu.WriteTcr(value);
            bool taken = Traps.Taken == 0 && (sctlr ? Cpu.ReadSctlr() : Cpu.ReadTcr()) == value;
            Traps.Armed = false;
            if (sctlr) Cpu.WriteSctlr(restore); else Cpu.WriteTcr(restore);
            return taken;
        }

        // role=shadowfuzz (paging=stage2 or shadow: this guest writes its tables
        // itself). Entries naming GPAs outside RAM, tables outside RAM, a table
        // that points at itself, and thousands of random descriptors. A load
        // that completes must have read this VM's own data.
        public static void ShadowFuzz()
        {
            PageTables t = Mmu.Tables;
            if (t.IsDirect) Program.Fail("shadowfuzz writes its own tables: not under paging=direct");
            for (int i = 0; i < DataPages; i++) *(ulong*)DataPage(i) = Marker | (ulong)(uint)i;
            ulong root = t.NewTable(0), l1 = t.NewTable(1), l2 = t.NewTable(2), l3 = t.NewTable(3);
            t.Set(root, 0, PageTables.Read(Mmu.Root, 0));
            t.Link(root, 3, l1);
            t.Link(l1, 0, l2);
            t.Link(l2, 0, l3);
            Cpu.WriteTtbr0(t.Address(root));
            Cpu.TlbFlushAll();

            ulong cases = 0, aborted = 0, violations = 0;
            // Outside RAM: just past it, the end of the 39-bit range, the
            // hypervisor's trap window, the GIC, the flash at 0.
            ulong[] outside = { RamEnd, RamEnd + (1UL << 30), (1UL << 39) - 4096, 1UL << 39, (1UL << 39) + Mmu.RamBase, 0x0800_0000, 0 };
            for (int k = 0; k < outside.Length; k++)
            {
                t.Set(l3, 0, outside[k] | PageTables.NormalPage);
                t.Invalidate(ScratchGva);
                cases++;
                if (Probe(ScratchGva, out ulong v)) { if (!Own(outside[k], v)) violations++; }
                else aborted++;
            }
            t.Set(l3, 0, 0);
            // A level-2 entry whose table is not in RAM: the walk itself aborts.
            t.Set(l2, 1, 0x2000_0000UL | PageTables.TableType);
            t.Invalidate(ScratchGva + (2UL << 20));
            cases++;
            if (Probe(ScratchGva + (2UL << 20), out _)) violations++; else aborted++;
            t.Set(l2, 1, 0);
            // A level-1 entry that points back at the root: whatever the walk
            // makes of it, it stays inside this VM's tables.
            t.Link(l1, 1, root);
            Cpu.TlbFlushAll();
            for (ulong off = 0; off < 4; off++)
            {
                cases++;
                if (!Probe(ScratchGva + (1UL << 30) + off * (1UL << 21), out _)) aborted++;
            }
            t.Set(l1, 1, 0);

            // Random descriptors, their output address anywhere in 40 bits or on
            // one of this VM's data pages.
            ulong seed = 0x5eed_f00d_1234_5678;
            for (int n = 0; n < 3000; n++)
            {
                ulong r = IsolationTests.Next(ref seed);
                int slot = (int)(r & 63);
                ulong oa = (r >> 8 & 1) == 0 ? DataPage((int)((r >> 9) & (DataPages - 1))) : (IsolationTests.Next(ref seed) & 0x00FF_FFFF_F000);
                ulong attributes = IsolationTests.Next(ref seed) & 0xFFF0_0000_0000_0FFFUL;
                ulong d = oa | attributes;
                t.Set(l3, slot, d);
                t.Invalidate(ScratchGva + (ulong)slot * 4096);
                cases++;
                if (Probe(ScratchGva + (ulong)slot * 4096, out ulong v)) { if (!Own(oa, v)) violations++; }
                else aborted++;
            }
            for (int i = 0; i < 512; i++) t.Set(l3, i, 0);
            Cpu.WriteTtbr0(t.Address(Mmu.Root));
            Cpu.TlbFlushAll();

            SelfTests.Verdict("shadowfuzz", violations == 0 && aborted > 0);
            Console.Write("cases=");
            Console.Dec(cases);
            Console.Write(" aborted=");
            Console.Dec(aborted);
            Console.Write(" violations=");
            Console.Dec(violations);
            Console.Write(" injected_aborts=");
            Console.Dec(Hvc.Counter(HypercallAbi.Counter.InjectedAborts));
            Console.Put('\n');
        }

        // A completed load through output address `oa` is fine only if `oa` is
        // this VM's RAM and the value is what that page holds.
        private static bool Own(ulong oa, ulong value)
        {
            ulong page = oa & ~0xfffUL;
            if (page < Mmu.RamBase || page >= RamEnd) return false;
            return value == *(ulong*)page;
        }

        private static bool Probe(ulong va, out ulong value)
        {
            Traps.Expect();
            value = Cpu.Load64(va);
            bool faulted = Traps.Taken != 0;
            Traps.Armed = false;
            return !faulted;
        }

        // role=shadowbomb: a tree whose every entry points at the next level's
        // single table: 512 x 512 distinct places to mirror. The guest walks
        // them all (the hypervisor builds mirrors a few per exit, as walks
        // need them), the shadow pool runs out and the hypervisor stops this
        // VM, not itself.
        public static void ShadowBomb()
        {
            PageTables t = Mmu.Tables;
            ulong root = t.NewTable(0), l1 = t.NewTable(1), l2 = t.NewTable(2), l3 = t.NewTable(3);
            for (int i = 0; i < 512; i++) t.Set(l3, i, Mmu.RamBase | PageTables.NormalPage);
            for (int i = 0; i < 512; i++) t.Link(l2, i, l3);
            for (int i = 0; i < 512; i++) t.Link(l1, i, l2);
            t.Set(root, 0, PageTables.Read(Mmu.Root, 0));
            for (int i = 1; i < 512; i++) t.Link(root, i, l1);
            Console.Line("shadowbomb: switching to the bomb");
            Cpu.WriteTtbr0(t.Address(root));
            Cpu.TlbFlushAll();
            // The hypervisor builds a few shadow pages per exit and the rest
            // when a walk needs them: walk everywhere until the pool is gone.
            for (ulong i = 1; i < 512; i++)
                for (ulong j = 0; j < 512; j++)
                    Cpu.Load64(i << 39 | j << 30);
            Console.Line("TEST shadowbomb FAIL still running");
        }

        // role=directfuzz (paging=direct): every way to break out through the
        // validated interface, each refused.
        public static void DirectFuzz()
        {
            var t = Mmu.Tables as DirectTables;
            if (t == null) Program.Fail("directfuzz needs paging=direct");
            ulong refusedBefore = Hvc.Counter(HypercallAbi.Counter.DirectRefused);
            ulong l3 = t.NewTable(3), l2 = t.NewTable(2);
            ulong l3m = t.Address(l3);
            ulong ownPage = t.Address(DataPage(0));
            ulong attempts = 0, refused = 0;

            // Leaves to memory that is not this VM's: the hypervisor image,
            // the firmware's device tree, frames far from any of ours.
            ulong[] foreign = { 0x4020_0000, 0x4000_0000, ownPage ^ (64UL << 20), ownPage ^ (128UL << 20), ownPage + (256UL << 20) };
            for (int k = 0; k < foreign.Length; k++)
                if (!IsMine(t, foreign[k])) Expect(t, l3m, foreign[k] | PageTables.NormalPage, HypercallAbi.Denied, ref attempts, ref refused);
            // Its own table, writable (read-only is allowed).
            Expect(t, l3m, t.Address(Mmu.Root) | PageTables.NormalPage, HypercallAbi.Denied, ref attempts, ref refused);
            Expect(t, l3m, t.Address(Mmu.Root) | PageTables.NormalPage | PageTables.ReadOnly, HypercallAbi.Ok, ref attempts, ref refused);
            // Devices that are not this VM's: the GIC's ITS as a page, the
            // flash as a block. (Its own virtual GIC, UART and virtio windows
            // it may map: accesses there trap and are emulated.)
            Expect(t, l3m, 0x0808_0000UL | PageTables.NormalPage, HypercallAbi.Denied, ref attempts, ref refused);
            Expect(t, t.Address(l2), 0x0400_0000UL | PageTables.DeviceBlock, HypercallAbi.Denied, ref attempts, ref refused);
            // RAM as a block (the hypervisor checks RAM page by page only).
            Expect(t, t.Address(l2), (Mmu.RamBase + (64UL << 20)) | PageTables.NormalBlock, HypercallAbi.Denied, ref attempts, ref refused);
            // A table entry to a frame that is no table, or a table of the wrong level.
            ulong l2m = t.Address(Mmu.LowL1);   // a pinned level-1 table
            Expect(t, l2m + 8 * 100, ownPage | PageTables.TableType, HypercallAbi.Denied, ref attempts, ref refused);
            Expect(t, l2m + 8 * 100, t.Address(Mmu.Root) | PageTables.TableType, HypercallAbi.Denied, ref attempts, ref refused);
            // Writing into something that is not one of its tables.
            Expect(t, ownPage, 0, HypercallAbi.Denied, ref attempts, ref refused);
            // Reserved encodings and the contiguous hint.
            Expect(t, l3m, ownPage | 1, HypercallAbi.InvalidParameter, ref attempts, ref refused);
            Expect(t, l3m, ownPage | PageTables.NormalPage | (1UL << 52), HypercallAbi.InvalidParameter, ref attempts, ref refused);

            // Half-valid batch: two good writes, then a bad one. Nothing applied.
            ulong* batch = stackalloc ulong[6];
            batch[0] = l3m + 8; batch[1] = ownPage | PageTables.NormalPage;
            batch[2] = l3m + 16; batch[3] = ownPage | PageTables.NormalPage;
            batch[4] = l3m + 24; batch[5] = 0x4020_0000UL | PageTables.NormalPage;
            var r = t.Raw(batch, 3);
            attempts++;
            bool halfRefused = (long)r.X0 == HypercallAbi.Denied && r.X1 == 2 && PageTables.Read(l3, 1) == 0 && PageTables.Read(l3, 2) == 0;
            if (halfRefused) refused++;

            // Malformed calls.
            attempts += 4;
            if ((long)Hvc.Call(HypercallAbi.MmuUpdate, (ulong)batch, 0).X0 == HypercallAbi.InvalidParameter) refused++;
            if ((long)Hvc.Call(HypercallAbi.MmuUpdate, (ulong)batch, 1000).X0 == HypercallAbi.InvalidParameter) refused++;
            if ((long)Hvc.Call(HypercallAbi.MmuUpdate, 0x2000_0000, 1).X0 == HypercallAbi.InvalidParameter) refused++;
            if ((long)Hvc.Call(HypercallAbi.MachineFrames, l3, Mmu.RamBase, 1).X0 == HypercallAbi.Denied) refused++;   // buffer is a table

            // Pinning a page mapped writable; unpinning a table still linked, or the live root.
            attempts += 3;
            if ((long)Hvc.Call(HypercallAbi.PinTable, DataPage(1), 3).X0 == HypercallAbi.Denied) refused++;
            if ((long)Hvc.Call(HypercallAbi.UnpinTable, t.Address(Mmu.LowL1)).X0 == HypercallAbi.Denied) refused++;
            if ((long)Hvc.Call(HypercallAbi.UnpinTable, t.Address(Mmu.Root)).X0 == HypercallAbi.Denied) refused++;

            // TTBR0 naming a page that is no pinned root, and TCR asking for
            // hardware access flags: each MSR raises an undefined instruction.
            attempts += 2;
            Traps.Expect();
            Cpu.WriteTtbr0(ownPage);
            if (Traps.Taken == 1 && ((Traps.LastEsr >> 26) & 0x3f) == 0) refused++;
            Traps.Expect();
            Cpu.WriteTcr(16 | (1 << 8) | (1 << 10) | (3 << 12) | (1UL << 23) | (2UL << 32) | (1UL << 39));
            if (Traps.Taken == 1 && ((Traps.LastEsr >> 26) & 0x3f) == 0) refused++;
            Traps.Armed = false;
            bool stillRunning = (Cpu.ReadTtbr0() & 0x0000_FFFF_FFFF_F000) == t.Address(Mmu.Root);

            ulong counted = Hvc.Counter(HypercallAbi.Counter.DirectRefused) - refusedBefore;
            bool ok = refused == attempts && halfRefused && stillRunning && counted >= attempts - 2;
            SelfTests.Verdict("directfuzz", ok);
            Console.Write("attempts=");
            Console.Dec(attempts);
            Console.Write(" refused=");
            Console.Dec(refused);
            Console.Write(" counted=");
            Console.Dec(counted);
            Console.Write(halfRefused ? " half_batch=refused" : " half_batch=APPLIED");
            Console.Put('\n');
        }

        private static bool IsMine(DirectTables t, ulong machine)
        {
            for (ulong gpa = Mmu.RamBase; gpa < RamEnd; gpa += 4096)
                if (t.Address(gpa) == machine) return true;
            return false;
        }

        // One single-request batch; counts it refused when the status is the
        // expected refusal (or accepted when Ok is expected).
        private static void Expect(DirectTables t, ulong target, ulong value, long want, ref ulong attempts, ref ulong refused)
        {
            ulong* one = stackalloc ulong[2];
            one[0] = target;
            one[1] = value;
            var r = t.Raw(one, 1);
            if (want == HypercallAbi.Ok)
            {
                if ((long)r.X0 != HypercallAbi.Ok) { Console.Write("  refused unexpectedly: "); Console.Hex(value); Console.Put('\n'); attempts++; }
                // Undo it.
                one[1] = 0;
                t.Raw(one, 1);
                return;
            }
            attempts++;
            if ((long)r.X0 == want) refused++;
            else
            {
                Console.Write("  not refused: target=");
                Console.Hex(target);
                Console.Write(" value=");
                Console.Hex(value);
                Console.Write(" status=");
                Console.Hex(r.X0);
                Console.Put('\n');
            }
        }
    }
}
