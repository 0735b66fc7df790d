using Hypervisor.Trap;

namespace Guest
{
    // The guest's own stage-1 translation (GVA -> GPA), set up the way any OS
    // kernel would, unaware of stage 2 underneath.
    //
    // 4 KiB granule, 48-bit VA (TCR_EL1.T0SZ = 16): a four-level walk, as in the
    // lecture's figure. Mappings:
    //   GVA 0x0000_0000_0800_0000 (2 MiB)  -> GPA same, Device (the virtual GIC)
    //   GVA 0x0000_0000_0900_0000 (2 MiB)  -> GPA same, Device-nGnRE (the UART)
    //   GVA 0x0000_0000_0a00_0000 (2 MiB)  -> GPA same, Device (virtio-mmio)
    //   GVA 0x0000_0000_2000_0000 (2 MiB)  -> GPA same, Device: no RAM, no device
    //                                         there, so accesses must abort
    //   GVA 0x0000_0000_4000_0000 (1 GiB)  -> GPA same, Normal WB (RAM, identity)
    //   GVA 0x0000_0080_0000_0000 + i*4K   -> GPA RAM base + 16 MiB + i*4K, i < 512
    //                                         (the "window": GVA != GPA != HPA)
    //
    // With paging=direct (the guest asks the hypervisor which mode it runs
    // in) the tables are built through DirectTables instead, and differ where
    // the hypervisor's rules say so: RAM is mapped page by page to the machine
    // frames behind it (no block: the hypervisor checks every frame), the
    // page-table pool is mapped read-only, and the hole and a virtio window
    // without a device are refused (HoleStatus keeps the answer).
    public static unsafe class Mmu
    {
        // T0SZ 16 (48-bit VAs), write-back walks (IRGN0, ORGN0), inner
        // shareable, 4 KiB granule; TTBR1's half off (EPD1); 40-bit IPS.
        public const ulong Tcr = 16 | (1 << 8) | (1 << 10) | (3 << 12) | (1UL << 23) | (2UL << 32);
        public const ulong WindowGva = 0x0000_0080_0000_0000;
        public const ulong WindowGpaOffset = 16UL << 20;
        public const int WindowPages = 512;
        public const ulong HoleGva = 0x2000_0000;
        public const ulong GicGva = 0x0800_0000;   // GICD at +0, GICR at +0xa0000

        public static ulong RamBase, RamSize;
        public static ulong WindowL3;   // GPA of the window's level-3 table
        public static ulong Root;       // GPA of the level-0 table
        public static ulong LowL1;      // GPA of the level-1 table for the low 512 GiB
        public static PageTables Tables;
        public static ulong Mode;       // HypercallAbi.Paging.*
        public static long HoleStatus;  // direct: what MmuUpdate said to mapping the hole
        private static ulong s_poolStart, s_poolEnd;

        public static bool IsDirect => Mode == HypercallAbi.Paging.Direct;

        public static void Enable(ulong poolStart, ulong poolEnd, ulong ramBase, ulong ramSize)
        {
            RamBase = ramBase;
            RamSize = ramSize;
            s_poolStart = poolStart;
            s_poolEnd = poolEnd;
            Mode = Hvc.Call(HypercallAbi.PagingInfo).X1;
            Tables = IsDirect ? new DirectTables(poolStart, poolEnd, ramBase, ramSize) : new NativeTables(poolStart, poolEnd);
            PageTables t = Tables;

            Root = t.NewTable(0);
            LowL1 = t.NewTable(1);
            ulong l2Low = t.NewTable(2);
            ulong l1Win = t.NewTable(1), l2Win = t.NewTable(2), l3Win = t.NewTable(3);
            WindowL3 = l3Win;

            t.Link(Root, 0, LowL1);
            t.Link(LowL1, 0, l2Low);
            t.Set(l2Low, 0x09000000 >> 21, 0x09000000 | PageTables.DeviceBlock);
            t.Set(l2Low, (int)(GicGva >> 21), GicGva | PageTables.DeviceBlock);          // the virtual GIC
            if (IsDirect) MapRamPages(t, LowL1);
            else t.Set(LowL1, (int)(ramBase >> 30), (ramBase & ~((1UL << 30) - 1)) | PageTables.NormalBlock);

            // The window: its own level-1, -2 and -3 tables, 4 KiB pages.
            t.Link(Root, (int)((WindowGva >> 39) & 511), l1Win);
            t.Link(l1Win, 0, l2Win);
            t.Link(l2Win, 0, l3Win);
            for (int i = 0; i < WindowPages; i++)
                t.Set(l3Win, i, t.Address(WindowGpa(i)) | PageTables.NormalPage);
            if (t.Commit() != HypercallAbi.Ok) Program.Fail("the hypervisor refused my page tables");

            // Mappings the direct-paging rules may refuse: each in its own batch.
            if (!IsDirect || Program.Fdt.VirtioBase != 0)
            {
                t.Set(l2Low, 0x0a000000 >> 21, 0x0a000000 | PageTables.DeviceBlock);   // virtio-mmio devices
                t.Commit();
            }
            t.Set(l2Low, (int)(HoleGva >> 21), HoleGva | PageTables.DeviceBlock);
            HoleStatus = t.Commit();

            // MAIR: index 0 Device-nGnRE, index 1 Normal write-back.
            Cpu.WriteMair(0x04 | (0xffUL << 8));
            // TCR: T0SZ=16 (48-bit), IRGN0/ORGN0 WB, SH0 inner, TG0 4K, EPD1 (no
            // TTBR1 walks), IPS 40-bit.
            Cpu.WriteTcr(Tcr);
            Cpu.WriteTtbr0(t.Address(Root));
            Cpu.TlbFlushAll();
            // SCTLR: M, C, I on top of the RES1 bits.
            Cpu.WriteSctlr(0x30d00800 | 1 | (1 << 2) | (1 << 12));
        }

        // Direct paging: RAM identity-mapped page by page onto its machine
        // frames, the table pool read-only (pinned tables may never be writable).
        // Every table is pinned before any page is mapped: a frame mapped
        // writable cannot become a table.
        private static void MapRamPages(PageTables t, ulong l1)
        {
            ulong l2 = t.NewTable(2);
            int chunks = (int)((RamSize + (2UL << 20) - 1) >> 21);
            ulong first = t.NewTable(3);
            for (int c = 1; c < chunks; c++) t.NewTable(3);
            t.Link(l1, (int)(RamBase >> 30), l2);
            for (int c = 0; c < chunks; c++)
            {
                ulong l3 = first + (ulong)c * 4096;
                ulong chunkGpa = RamBase + ((ulong)c << 21);
                t.Link(l2, (int)((chunkGpa >> 21) & 511), l3);
                for (int i = 0; i < 512; i++)
                {
                    ulong gpa = chunkGpa + (ulong)i * 4096;
                    if (gpa - RamBase >= RamSize) break;
                    ulong readOnly = gpa >= s_poolStart && gpa < s_poolEnd ? PageTables.ReadOnly : 0;
                    t.Set(l3, i, t.Address(gpa) | PageTables.NormalPage | readOnly);
                }
            }
        }

        public static ulong WindowGpa(int page) => RamBase + WindowGpaOffset + (ulong)page * 4096;
    }
}
