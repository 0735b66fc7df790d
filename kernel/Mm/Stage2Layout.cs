using Hypervisor.Arch;

namespace Hypervisor.Mm
{
    public enum Stage2LayoutStatus
    {
        Ok,
        UnsupportedIpaSize,         // outside 32..48 bits (4 KiB granule, no FEAT_LPA2)
        IpaLargerThanPhysical,      // the CPU's PARange is smaller than the IPA wanted
        UnknownPARange,             // ID_AA64MMFR0_EL1.PARange holds a reserved value
    }

    // The shape of a VM's stage-2 translation and the VTCR_EL2 value that tells
    // the hardware about it.
    //
    // VTCR_EL2 fields (Arm ARM, register VTCR_EL2), 4 KiB granule:
    //   T0SZ  [5:0]    IPA size is 2^(64-T0SZ) bytes
    //   SL0   [7:6]    start level of the walk: 0 -> level 2, 1 -> level 1, 2 -> level 0
    //   IRGN0 [9:8]    cacheability of the walker's own table reads, inner...
    //   ORGN0 [11:10]  ...and outer: 0b01 = write-back, read- and write-allocate
    //   SH0   [13:12]  shareability of table reads: 0b11 = inner shareable
    //   TG0   [15:14]  granule: 0b00 = 4 KiB
    //   PS    [18:16]  output (physical) address size, encoded like PARange
    //   VS    [19]     1 = 16-bit VMIDs (needs ID_AA64MMFR1_EL1.VMIDBits = 0b0010)
    //   bit 31         RES1
    //
    // Why a 40-bit IPA starts at level 1 with two concatenated tables:
    //
    // With 4 KiB pages each level resolves 9 bits, so a single level-1 table
    // covers 12 + 9 + 9 + 9 = 39 bits (512 GiB). A 40-bit IPA has one bit more.
    // Two ways to cover it:
    //   - start at level 0: a whole 4 KiB level-0 table of which only entries 0
    //     and 1 are ever used, and a fourth memory read on every stage-2 walk;
    //   - start at level 1 with two *concatenated* tables. Only at stage 2, and
    //     only at the first level, the architecture lets up to 16 tables sit
    //     back to back, aligned to their combined size, and index them as one
    //     big table using the extra top bits: IPA bits [39:30] (10 bits) select
    //     one of 1024 entries in an 8 KiB root, 8 KiB aligned.
    // The second costs 4 KiB more of root but one read less per walk, and that
    // read is multiplied in the two-dimensional walk (see TwoStageWalker): each
    // of a guest's 4 stage-1 levels needs a full stage-2 walk, so a 4-level
    // guest costs 19 reads per TLB miss over a 3-level stage 2 instead of 24.
    // Rule used below: start as low (as deep) as possible while needing at
    // most 16 concatenated tables. Linux KVM chooses the same way.
    public struct Stage2Layout
    {
        public const int MinIpaBits = 32;
        public const int MaxIpaBits = 48;

        // The IPA space every VM gets: its "physical" address space, which its
        // ID_AA64MMFR0_EL1.PARange also reports (IdRegisters), so a guest never
        // sets up tables for addresses stage 2 cannot translate.
        public const int GuestIpaBits = 40;

        // Cap on VTCR_EL2.PS. The machines this project runs on (QEMU virt)
        // keep all RAM below 1 TiB, so output addresses need 40 bits. A tight PS
        // turns a corrupted stage-2 descriptor pointing above that into an
        // Address size fault instead of an access to some far physical address.
        public const int MaxOutputBits = 40;

        public const int T0szShift = 0;
        public const int Sl0Shift = 6;
        public const int Irgn0Shift = 8;
        public const int Orgn0Shift = 10;
        public const int Sh0Shift = 12;
        public const int Tg0Shift = 14;
        public const int PsShift = 16;
        public const ulong Vmid16Bit = 1UL << 19;     // VS
        public const ulong Res1 = 1UL << 31;

        public const ulong WriteBackReadWriteAllocate = 0b01;
        public const ulong InnerShareable = 0b11;
        public const ulong Granule4K = 0b00;

        public ulong Vtcr;
        public int IpaBits;
        public int StartLevel;
        public int ConcatenatedTables;   // root tables back to back (1..16)
        public int RootEntries;          // entries the start level indexes
        public ulong RootTableBytes;     // bytes to allocate for the root; also its alignment
        public int OutputBits;           // the PS actually programmed, in bits
        public bool Vmid16;

        // Computes VTCR_EL2 for an IPA of `ipaBits` bits on a CPU whose
        // ID_AA64MMFR0_EL1.PARange field (bits [3:0]) is `paRange`.
        public static Stage2LayoutStatus Compute(int ipaBits, uint paRange, bool vmid16, out Stage2Layout layout)
        {
            layout = default;
            int physicalBits = PARangeBits(paRange);
            if (physicalBits == 0) return Stage2LayoutStatus.UnknownPARange;
            if (!Geometry(ipaBits, out int startLevel, out int rootEntries)) return Stage2LayoutStatus.UnsupportedIpaSize;
            // The Arm ARM makes an IPA wider than the implemented PA size an
            // inconsistent VTCR_EL2 (the walk faults); refuse it up front.
            if (ipaBits > physicalBits) return Stage2LayoutStatus.IpaLargerThanPhysical;

            uint ps = paRange;
            uint cap = PARangeForBits(MaxOutputBits);
            if (ps > cap) ps = cap;

            ulong vtcr = ((ulong)(64 - ipaBits) << T0szShift)
                | ((ulong)(2 - startLevel) << Sl0Shift)
                | (WriteBackReadWriteAllocate << Irgn0Shift)
                | (WriteBackReadWriteAllocate << Orgn0Shift)
                | (InnerShareable << Sh0Shift)
                | (Granule4K << Tg0Shift)
                | ((ulong)ps << PsShift)
                | Res1;
            if (vmid16) vtcr |= Vmid16Bit;

            int tables = rootEntries > Descriptor.EntriesPerTable ? rootEntries / Descriptor.EntriesPerTable : 1;
            layout.Vtcr = vtcr;
            layout.IpaBits = ipaBits;
            layout.StartLevel = startLevel;
            layout.ConcatenatedTables = tables;
            layout.RootEntries = rootEntries;
            layout.RootTableBytes = (ulong)tables * Descriptor.TableBytes;
            layout.OutputBits = PARangeBits(ps);
            layout.Vmid16 = vmid16;
            return Stage2LayoutStatus.Ok;
        }

        // Start level and number of root entries for an IPA size, by the rule
        // in the comment above. False when the size is unsupported.
        public static bool Geometry(int ipaBits, out int startLevel, out int rootEntries)
        {
            startLevel = 0;
            rootEntries = 0;
            if (ipaBits < MinIpaBits || ipaBits > MaxIpaBits) return false;
            for (int level = 2; level >= 0; level--)
            {
                int bitsAtStart = ipaBits - Descriptor.LevelShift(level);
                if (bitsAtStart <= 9 + 4)   // one table (9 bits) times at most 16 (4 bits)
                {
                    startLevel = level;
                    rootEntries = 1 << bitsAtStart;
                    return true;
                }
            }
            return false;
        }

        // VTTBR_EL2: BADDR in [47:1] (the root's PA; bit 0 is CnP, left 0) and
        // the VMID in [55:48], or [63:48] with 16-bit VMIDs. The root must be
        // aligned to its size (8 KiB for two concatenated tables). The VMID tags
        // the TLB entries of this VM so switching VMs needs no TLB flush; with
        // 8-bit VMIDs the caller keeps vmid below 256.
        public static ulong Vttbr(ulong rootPhysicalAddress, ushort vmid) =>
            (rootPhysicalAddress & 0x0000_FFFF_FFFF_FFFEUL) | ((ulong)vmid << 48);

        // ID_AA64MMFR0_EL1.PARange (also the encoding of VTCR_EL2.PS and
        // TCR_ELx.IPS) to a number of address bits; 0 for reserved values.
        public static int PARangeBits(uint paRange)
        {
            switch (paRange)
            {
                case 0: return 32;
                case 1: return 36;
                case 2: return 40;
                case 3: return 42;
                case 4: return 44;
                case 5: return 48;
                case 6: return 52;
                default: return 0;
            }
        }

        // The smallest PARange encoding covering `bits` address bits.
        public static uint PARangeForBits(int bits)
        {
            for (uint e = 0; e <= 6; e++)
                if (PARangeBits(e) >= bits) return e;
            return 6;
        }
    }
}
