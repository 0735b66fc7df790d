namespace Guest
{
    // The guest's own stage-1 translation (GVA -> GPA), set up the way any OS
    // kernel would, unaware of stage 2 underneath.
    //
    // 4 KiB granule, 48-bit VA (TCR_EL1.T0SZ = 16): a four-level walk, as in the
    // lecture's figure. Mappings:
    //   GVA 0x0000_0000_0900_0000 (2 MiB)  -> GPA same, Device-nGnRE (the UART)
    //   GVA 0x0000_0000_0a00_0000 (2 MiB)  -> GPA same, Device (virtio-mmio)
    //   GVA 0x0000_0000_2000_0000 (2 MiB)  -> GPA same, Device: no RAM, no device
    //                                         there, so accesses must abort
    //   GVA 0x0000_0000_4000_0000 (1 GiB)  -> GPA same, Normal WB (RAM, identity)
    //   GVA 0x0000_0080_0000_0000 + i*4K   -> GPA RAM base + 16 MiB + i*4K, i < 512
    //                                         (the "window": GVA != GPA != HPA)
    public static unsafe class Mmu
    {
        public const ulong WindowGva = 0x0000_0080_0000_0000;
        public const ulong WindowGpaOffset = 16UL << 20;
        public const int WindowPages = 512;
        public const ulong HoleGva = 0x2000_0000;

        private const ulong Valid = 1, Table = 3, Page = 3, Block = 1;
        private const ulong AttrDevice = 0 << 2, AttrNormal = 1 << 2;
        private const ulong AccessFlag = 1 << 10, InnerShareable = 3 << 8;
        private const ulong NormalBlock = Block | AttrNormal | AccessFlag | InnerShareable;
        private const ulong DeviceBlock = Block | AttrDevice | AccessFlag | (1UL << 54) | (1UL << 53);

        private static ulong s_next, s_end;
        public static ulong RamBase;
        public static ulong WindowL3;   // GPA of the window's level-3 table

        private static ulong* NewTable()
        {
            if (s_next + 4096 > s_end) Program.Fail("guest page-table pool exhausted");
            ulong* t = (ulong*)s_next;
            s_next += 4096;
            for (int i = 0; i < 512; i++) t[i] = 0;
            return t;
        }

        public static void Enable(ulong poolStart, ulong poolEnd, ulong ramBase)
        {
            s_next = poolStart;
            s_end = poolEnd;
            RamBase = ramBase;

            ulong* l0 = NewTable();
            ulong* l1Low = NewTable();
            ulong* l2Low = NewTable();
            l0[0] = (ulong)l1Low | Table;
            l1Low[0] = (ulong)l2Low | Table;
            l2Low[0x09000000 >> 21] = 0x09000000 | DeviceBlock;
            l2Low[0x0a000000 >> 21] = 0x0a000000 | DeviceBlock;        // virtio-mmio devices
            l2Low[HoleGva >> 21] = HoleGva | DeviceBlock;
            l1Low[ramBase >> 30] = (ramBase & ~((1UL << 30) - 1)) | NormalBlock;

            // The window: its own level-1, -2 and -3 tables, 4 KiB pages.
            ulong* l1Win = NewTable();
            ulong* l2Win = NewTable();
            ulong* l3Win = NewTable();
            l0[(int)((WindowGva >> 39) & 511)] = (ulong)l1Win | Table;
            l1Win[0] = (ulong)l2Win | Table;
            l2Win[0] = (ulong)l3Win | Table;
            for (int i = 0; i < WindowPages; i++)
                l3Win[i] = (ramBase + WindowGpaOffset + (ulong)i * 4096) | Page | AttrNormal | AccessFlag | InnerShareable;
            WindowL3 = (ulong)l3Win;

            // MAIR: index 0 Device-nGnRE, index 1 Normal write-back.
            Cpu.WriteMair(0x04 | (0xffUL << 8));
            // TCR: T0SZ=16 (48-bit), IRGN0/ORGN0 WB, SH0 inner, TG0 4K, EPD1 (no
            // TTBR1 walks), IPS 40-bit.
            Cpu.WriteTcr(16 | (1 << 8) | (1 << 10) | (3 << 12) | (1UL << 23) | (2UL << 32));
            Cpu.WriteTtbr0((ulong)l0);
            Cpu.TlbFlushAll();
            // SCTLR: M, C, I on top of the RES1 bits.
            Cpu.WriteSctlr(0x30d00800 | 1 | (1 << 2) | (1 << 12));
        }

        public static ulong WindowGpa(int page) => RamBase + WindowGpaOffset + (ulong)page * 4096;
    }
}
