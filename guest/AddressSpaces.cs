using Hypervisor.Trap;

namespace Guest
{
    // role=spaces: what an OS does with page tables all day, done the same way
    // under every paging mode (the PageTables backend is the only difference):
    // build address spaces, switch between them, change, remove and add
    // mappings, touch fresh memory. It checks what it reads at every step (a
    // stale translation anywhere -- hypervisor shadow, TLB, or validation --
    // shows as a mismatch) and, with bench=paging, reports what each kind of
    // operation cost in instructions and VM exits.
    public static unsafe class AddressSpaces
    {
        private const int Spaces = 4, Pages = 64, SwitchRounds = 50;
        private const ulong PrivateGva = 0x0000_0100_0000_0000;   // level-0 index 2: one per space
        private const ulong DataOffset = 32UL << 20;                // data pages from RAM base + 32 MiB
        private const ulong Marker = 0x5350_4143_0000_0000;         // "SPAC"
        private const ulong NotGlobal = 1UL << 11;                  // nG: tagged with the space's ASID

        private static readonly ulong[] s_roots = new ulong[Spaces];
        private static readonly ulong[] s_leaves = new ulong[Spaces];   // each space's level-3 table

        private static ulong DataPage(int space, int page) => Mmu.RamBase + DataOffset + (ulong)(uint)(space * Pages + page) * 4096;
        private static ulong FreshPage(int page) => Mmu.RamBase + DataOffset + (ulong)(uint)(Spaces * Pages + page) * 4096;
        private static ulong Pattern(int space, int page) => Marker | ((ulong)(uint)space << 16) | (ulong)(uint)page;
        private static ulong Leaf(ulong gpa) => Mmu.Tables.Address(gpa) | PageTables.NormalPage | NotGlobal;
        private static ulong Va(int page) => PrivateGva + (ulong)page * 4096;

        private struct Cost { public ulong Instructions, Exits, Hypercalls, TableTraps, Tlbis; }

        public static void Run(bool bench)
        {
            if (Mmu.RamSize < DataOffset + (ulong)((Spaces + 1) * Pages) * 4096) Program.Fail("spaces needs 34 MiB of RAM");
            if (bench) Bench.EnableCycleCounter();
            PageTables t = Mmu.Tables;
            for (int s = 0; s < Spaces; s++)
                for (int i = 0; i < Pages; i++)
                {
                    ulong* p = (ulong*)DataPage(s, i);
                    p[0] = p[511] = Pattern(s, i);
                }

            // 1. Build: a root sharing the kernel's halves, and a private tree,
            //    then switch to it once (shadow paging builds its shadow then).
            Cost c0 = Now();
            for (int s = 0; s < Spaces; s++)
            {
                ulong root = t.NewTable(0), l1 = t.NewTable(1), l2 = t.NewTable(2), l3 = t.NewTable(3);
                t.Set(root, 0, PageTables.Read(Mmu.Root, 0));
                t.Set(root, (int)((Mmu.WindowGva >> 39) & 511), PageTables.Read(Mmu.Root, (int)((Mmu.WindowGva >> 39) & 511)));
                t.Link(root, (int)((PrivateGva >> 39) & 511), l1);
                t.Link(l1, 0, l2);
                t.Link(l2, 0, l3);
                for (int i = 0; i < Pages; i++) t.Set(l3, i, Leaf(DataPage(s, i)));
                if (t.Commit() != HypercallAbi.Ok) Program.Fail("address space refused");
                s_roots[s] = root;
                s_leaves[s] = l3;
                Switch(s);   // first use: where a shadow is built
            }
            Cost build = Since(c0, Spaces);

            // 2. Switch: each space sees its own pages.
            ulong wrong = 0;
            ulong switchInstructions = 0, switchExits = 0;
            for (int round = 0; round < SwitchRounds; round++)
            {
                for (int s = 0; s < Spaces; s++)
                {
                    Cost before = Now();
                    Switch(s);
                    Cost one = Since(before, 1);
                    switchInstructions += one.Instructions;
                    switchExits += one.Exits;
                    for (int i = 0; i < Pages; i += 7)
                        if (*(ulong*)Va(i) != Pattern(s, i)) wrong++;
                }
            }
            Cost sw;
            sw = default;
            sw.Instructions = switchInstructions / (SwitchRounds * Spaces);
            sw.Exits = switchExits / (SwitchRounds * Spaces);

            // 3. Remap: space 0's pages now show space 1's data, at once.
            Switch(0);
            for (int i = 0; i < Pages; i++) Read(i);               // the TLB holds the old translations
            c0 = Now();
            for (int i = 0; i < Pages; i++) { t.Set(s_leaves[0], i, Leaf(DataPage(1, i))); t.Invalidate(Va(i)); t.Commit(); }
            Cost remap = Since(c0, Pages);
            for (int i = 0; i < Pages; i++) if (Read(i) != Pattern(1, i)) wrong++;

            // 4. Unmap: every access faults (a stage-1 fault this guest takes).
            c0 = Now();
            for (int i = 0; i < Pages; i++) { t.Set(s_leaves[0], i, 0); t.Invalidate(Va(i)); t.Commit(); }
            Cost unmap = Since(c0, Pages);
            int faults = 0;
            for (int i = 0; i < Pages; i++)
            {
                Traps.Expect();
                Cpu.Load64(Va(i));
                if (Traps.Taken == 1 && ((Traps.LastEsr >> 26) & 0x3f) == 0x25 && (Traps.LastEsr & 0x3f) == 0x07) faults++;
            }
            Traps.Armed = false;

            // 5. Map fresh pages and touch each once: zero, then ours.
            c0 = Now();
            for (int i = 0; i < Pages; i++) { t.Set(s_leaves[0], i, Leaf(FreshPage(i))); t.Invalidate(Va(i)); t.Commit(); }
            Cost map = Since(c0, Pages);
            c0 = Now();
            ulong nonZero = 0;
            for (int i = 0; i < Pages; i++) { ulong* p = (ulong*)Va(i); if (p[0] != 0) nonZero++; p[0] = Pattern(9, i); }
            Cost touch = Since(c0, Pages);
            for (int i = 0; i < Pages; i++) if (*(ulong*)FreshPage(i) != Pattern(9, i)) wrong++;

            // The guest's own walk of that address, then the one the MMU makes
            // (under shadow paging: through the shadow tables), both printed
            // by the hypervisor: `make pictures` draws them side by side.
            Hvc.Call(HypercallAbi.WalkAddress, Va(5));
            var walk = Hvc.Call(HypercallAbi.WalkHardware, Va(5));
            ulong walkAccesses = (long)walk.X0 == HypercallAbi.Ok ? walk.X3 : 0;
            Cpu.WriteTtbr0(Mmu.Tables.Address(Mmu.Root));
            Cpu.TlbFlushAll();

            bool ok = wrong == 0 && faults == Pages && nonZero == 0 && walkAccesses != 0;
            SelfTests.Verdict("spaces", ok);
            Console.Write("spaces=");
            Console.Dec(Spaces);
            Console.Write(" switches=");
            Console.Dec(SwitchRounds * Spaces);
            Console.Write(" wrong=");
            Console.Dec(wrong);
            Console.Write(" unmapped_faults=");
            Console.Dec((ulong)faults);
            Console.Write(" fresh_nonzero=");
            Console.Dec(nonZero);
            Console.Write(" tlb_miss_walk_reads=");
            Console.Dec(walkAccesses);
            Console.Put('\n');
            if (!bench) return;
            Report("build_space", build);
            Report("switch", sw);
            Report("remap_page", remap);
            Report("unmap_page", unmap);
            Report("map_page", map);
            Report("first_touch", touch);
            Console.Write("BENCH paging walk_reads ");
            Console.Dec(walkAccesses);
            Console.Put('\n');
        }

        private static void Switch(int space)
        {
            Cpu.WriteTtbr0(Mmu.Tables.Address(s_roots[space]) | ((ulong)(space + 1) << 48));
        }

        private static ulong Read(int page) => *(ulong*)Va(page);

        private static Cost Now()
        {
            Cost c;
            c.Instructions = Cpu.ReadCycles();
            c.Exits = Hvc.Counter(HypercallAbi.Counter.Exits);
            c.Hypercalls = Hvc.Counter(HypercallAbi.Counter.Hypercalls);
            c.TableTraps = Hvc.Counter(HypercallAbi.Counter.TableWriteTraps);
            c.Tlbis = Hvc.Counter(HypercallAbi.Counter.TlbiVa) + Hvc.Counter(HypercallAbi.Counter.TlbiVmallE1);
            c.Instructions = Cpu.ReadCycles();
            return c;
        }

        // The cost of what ran since `start`, per operation. Reading the
        // counters is itself 8 hypercalls between the two exit counts (the
        // ReadCycles ones included), and the two cycle readings cost one
        // hypercall's round trip between them: measured once with nothing in
        // between (s_readCost), both are taken off.
        private static ulong s_readCost = ulong.MaxValue;

        private static Cost Since(Cost start, int operations)
        {
            ulong end = Cpu.ReadCycles();
            Cost now = Now();
            if (s_readCost == ulong.MaxValue)
            {
                Cost empty = Now();
                s_readCost = Cpu.ReadCycles() - empty.Instructions;
            }
            Cost d;
            d.Instructions = (end - start.Instructions - s_readCost) / (ulong)operations;
            d.Exits = (now.Exits - start.Exits - 8) / (ulong)operations;
            d.Hypercalls = (now.Hypercalls - start.Hypercalls - 8) / (ulong)operations;
            d.TableTraps = (now.TableTraps - start.TableTraps) / (ulong)operations;
            d.Tlbis = (now.Tlbis - start.Tlbis) / (ulong)operations;
            return d;
        }

        // BENCH paging <op> instructions=N exits=N hypercalls=N table_traps=N tlbis=N
        private static void Report(string op, Cost c)
        {
            Console.Write("BENCH paging ");
            Console.Write(op);
            Console.Write(" instructions=");
            Console.Dec(c.Instructions);
            Console.Write(" exits=");
            Console.Dec(c.Exits);
            Console.Write(" hypercalls=");
            Console.Dec(c.Hypercalls);
            Console.Write(" table_traps=");
            Console.Dec(c.TableTraps);
            Console.Write(" tlbis=");
            Console.Dec(c.Tlbis);
            Console.Put('\n');
        }
    }
}
