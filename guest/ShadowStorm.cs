namespace Guest
{
    // role=shadowstorm (paging=shadow): the most shadow work one trapped store
    // can ask for. Off to the side the guest builds a level-1 table whose
    // three entries name level-2 tables full of 2 MiB blocks over its own RAM
    // (each block a 512-entry split in the shadow: about 1540 shadow pages,
    // 790,000 entries). Then, for `ms` milliseconds of its virtual time, it
    // links that tree into its live root with one store and unlinks it with
    // another; both trap. It never
    // touches the VAs, so whatever the hypervisor leaves for later is never
    // needed; the store itself must not take long.
    public static unsafe class ShadowStorm
    {
        private const int RootIndex = 3;            // VA 0x180_0000_0000: unused by this guest
        private const int L2Tables = 3;

        public static void Run(ulong ms)
        {
            PageTables t = Mmu.Tables;
            ulong l1 = t.NewTable(1);
            ulong blocks = Mmu.RamSize >> 21;
            for (int k = 0; k < L2Tables; k++)
            {
                ulong l2 = t.NewTable(2);
                for (int i = 0; i < 512; i++) t.Set(l2, i, (Mmu.RamBase + ((ulong)i % blocks << 21)) | PageTables.NormalBlock);
                t.Link(l1, k, l2);
            }
            ulong va = (ulong)RootIndex << 39;
            Console.Line("shadowstorm: linking and unlinking a 1540-page tree");
            ulong end = Cpu.ReadVirtualCount() + ms * 62_500, rounds = 0;   // CNTFRQ 62.5 MHz
            for (; Cpu.ReadVirtualCount() < end; rounds++)
            {
                t.Link(Mmu.Root, RootIndex, l1);
                t.Invalidate(va);
                t.Set(Mmu.Root, RootIndex, 0);
                t.Invalidate(va);
            }
            // Still a working address space: the window reads back what the
            // guest writes through it.
            ulong* window = (ulong*)Mmu.WindowGva;
            *window = 0x5354524d;
            bool alive = *window == 0x5354524d;
            SelfTests.Verdict("shadow-storm", alive);
            Console.Write("rounds=");
            Console.Dec(rounds);
            Console.Put('\n');
        }
    }
}
