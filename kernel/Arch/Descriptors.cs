using System.Runtime.CompilerServices;
namespace Hypervisor.Arch
{
    // VMSAv8-64 translation table descriptors for the 4 KiB granule with 48-bit
    // output addresses (no FEAT_LPA/LPA2), as the Arm ARM describes them in
    // "Translation table descriptor formats" (chapter D8).
    //
    // Every table is one 4 KiB frame of 512 eight-byte entries. Each level
    // resolves 9 bits of the input address:
    //
    //   level 0: bits [47:39]  (512 GiB per entry)
    //   level 1: bits [38:30]  (1 GiB per entry)
    //   level 2: bits [29:21]  (2 MiB per entry)
    //   level 3: bits [20:12]  (4 KiB per entry)
    //
    // The low two bits of an entry say what it is:
    //
    //   x0  invalid: any access faults; hardware ignores the other 62 bits
    //   01  block (levels 1 and 2 only): maps a whole 1 GiB or 2 MiB region
    //   11  at levels 0-2: table, points to the next level's table
    //       at level 3:    page, maps one 4 KiB frame
    //   (01 at level 3 is reserved and faults like an invalid entry)
    //
    // Stage 1 (the guest's own VA -> IPA tables) and stage 2 (the hypervisor's
    // IPA -> PA tables) share this shape; they differ in the attribute bits.
    public static class Descriptor
    {
        public const int EntriesPerTable = 512;
        public const ulong TableBytes = 4096;
        public const int PageShift = 12;

        public const ulong Valid = 1UL << 0;
        public const ulong TypeTableOrPage = 1UL << 1;   // 0: block, 1: table (levels 0-2) or page (level 3)
        public const ulong TypeMask = 3;
        public const ulong BlockType = 1;                // 0b01
        public const ulong TableOrPageType = 3;          // 0b11

        // Output address bits [47:12] of a table or page descriptor.
        public const ulong AddressMask = 0x0000_FFFF_FFFF_F000UL;

        // Bits that are neither type nor address: lower attributes [11:2] and
        // upper attributes [63:50]. Bits [49:48] are RES0 with 48-bit addresses.
        public const ulong AttributeMask = 0xFFFC_0000_0000_0FFCUL;

        // Bit position of the lowest input-address bit a level resolves:
        // 39, 30, 21, 12 for levels 0..3.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static int LevelShift(int level) => PageShift + 9 * (3 - level);

        // Bytes one entry at `level` covers: 512 GiB, 1 GiB, 2 MiB, 4 KiB.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static ulong LevelSize(int level) => 1UL << LevelShift(level);

        // The entry index an address selects in a table at `level`.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static int Index(ulong address, int level) => (int)((address >> LevelShift(level)) & (EntriesPerTable - 1));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static bool IsValid(ulong descriptor) => (descriptor & Valid) != 0;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static bool IsTable(ulong descriptor, int level) => level < 3 && (descriptor & TypeMask) == TableOrPageType;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static bool IsPage(ulong descriptor, int level) => level == 3 && (descriptor & TypeMask) == TableOrPageType;

        // Blocks exist at levels 1 and 2 with the 4 KiB granule (a level-0 block
        // needs FEAT_LPA2).
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static bool IsBlock(ulong descriptor, int level) => (level == 1 || level == 2) && (descriptor & TypeMask) == BlockType;

        // A descriptor that ends the walk with a translation: a block or a page.
        public static bool IsLeaf(ulong descriptor, int level) => IsBlock(descriptor, level) || IsPage(descriptor, level);

        // What the walker does with the entry: follow it, use it, or fault.
        public static bool Faults(ulong descriptor, int level) => !IsTable(descriptor, level) && !IsLeaf(descriptor, level);

        // Next-level table address of a table descriptor.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static ulong TableAddress(ulong descriptor) => descriptor & AddressMask;

        // Output address of a leaf. A block's address is aligned to the block
        // size: the bits below are attribute-free RES0 and come from the input.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static ulong OutputAddress(ulong descriptor, int level) => descriptor & AddressMask & ~(LevelSize(level) - 1);

        public static ulong Attributes(ulong descriptor) => descriptor & AttributeMask;

        // Table descriptors have the same encoding at both stages (the stage-1
        // hierarchical attributes in bits [63:59] stay 0: no extra limits).
        public static ulong Table(ulong tablePhysicalAddress) => (tablePhysicalAddress & AddressMask) | TableOrPageType;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static bool IsAligned(ulong address, ulong size) => (address & (size - 1)) == 0;
    }

    // Stage-2 access permissions, S2AP[7:6] (Arm ARM: "Stage 2 data access
    // permissions"). Unlike stage 1 there is no EL0/EL1 split: stage 2 limits
    // whatever the guest does, at any of its exception levels.
    public enum Stage2Access : ulong
    {
        None = 0,       // any data access faults (instruction fetches too)
        ReadOnly = 1,
        WriteOnly = 2,
        ReadWrite = 3,
    }

    // The memory types this hypervisor gives guests at stage 2.
    public enum Stage2MemoryType
    {
        NormalWriteBack,   // guest RAM
        DeviceNGnRE,       // emulated or passed-through device registers
    }

    // Stage-2 block and page descriptors (Arm ARM: "Stage 2 translation table
    // descriptor" attribute fields). Without FEAT_S2FWB the stage-2 MemAttr does
    // not replace the guest's own stage-1 memory type; the two are combined and
    // the more restrictive wins, so Normal-WB at stage 2 lets the guest choose,
    // and Device at stage 2 forces Device whatever the guest says.
    public static class Stage2
    {
        // MemAttr[5:2]. For Normal memory [5:4] is the outer and [3:2] the inner
        // cacheability: 0b11 = write-back for both. 0b0001 = Device-nGnRE.
        public const int MemAttrShift = 2;
        public const ulong MemAttrMask = 0xFUL << MemAttrShift;
        public const ulong MemAttrNormalWriteBack = 0b1111;
        public const ulong MemAttrDeviceNGnRE = 0b0001;

        // S2AP[7:6], see Stage2Access.
        public const int AccessShift = 6;
        public const ulong AccessMask = 3UL << AccessShift;

        // SH[9:8]: 0b00 non-shareable, 0b10 outer, 0b11 inner shareable.
        // Device memory is always treated as outer shareable, whatever SH says.
        public const int ShareabilityShift = 8;
        public const ulong ShareabilityMask = 3UL << ShareabilityShift;
        public const ulong InnerShareable = 3UL << ShareabilityShift;

        // AF, bit 10. An entry with AF=0 makes the first access fault (Access
        // flag fault) unless hardware AF management is on; we set it when
        // mapping so stage 2 never takes that fault.
        public const ulong AccessFlag = 1UL << 10;

        // XN, bit 54 (XN[1:0] at [54:53] with FEAT_XNX; bit 53 stays 0 here):
        // instruction fetches from the region fault at stage 2.
        public const ulong ExecuteNever = 1UL << 54;

        // The attribute bits for a leaf: memory type, permissions, shareability
        // and AF. Device memory is never executable.
        public static ulong Attributes(Stage2MemoryType type, Stage2Access access, bool executable)
        {
            ulong memAttr = type == Stage2MemoryType.DeviceNGnRE ? MemAttrDeviceNGnRE : MemAttrNormalWriteBack;
            ulong bits = (memAttr << MemAttrShift) | ((ulong)access << AccessShift) | InnerShareable | AccessFlag;
            if (!executable || type == Stage2MemoryType.DeviceNGnRE) bits |= ExecuteNever;
            return bits;
        }

        // The usual cases, precomputed.
        public const ulong NormalReadWriteExecute =
            (MemAttrNormalWriteBack << MemAttrShift) | (3UL << AccessShift) | InnerShareable | AccessFlag;
        public const ulong NormalReadWrite = NormalReadWriteExecute | ExecuteNever;
        public const ulong NormalReadOnly =
            (MemAttrNormalWriteBack << MemAttrShift) | (1UL << AccessShift) | InnerShareable | AccessFlag | ExecuteNever;
        public const ulong DeviceReadWrite =
            (MemAttrDeviceNGnRE << MemAttrShift) | (3UL << AccessShift) | InnerShareable | AccessFlag | ExecuteNever;

        // A level-3 page descriptor for the 4 KiB frame at `pa`.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static ulong Page(ulong pa, ulong attributes) =>
            (pa & Descriptor.AddressMask) | (attributes & Descriptor.AttributeMask) | Descriptor.TableOrPageType;

        // A block descriptor at level 1 (1 GiB) or 2 (2 MiB).
        public static ulong Block(ulong pa, int level, ulong attributes) =>
            (pa & Descriptor.AddressMask & ~(Descriptor.LevelSize(level) - 1))
            | (attributes & Descriptor.AttributeMask) | Descriptor.BlockType;

        public static ulong Table(ulong tablePhysicalAddress) => Descriptor.Table(tablePhysicalAddress);

        public static ulong MemAttr(ulong descriptor) => (descriptor & MemAttrMask) >> MemAttrShift;
        public static Stage2Access Access(ulong descriptor) => (Stage2Access)((descriptor & AccessMask) >> AccessShift);
        public static bool IsReadable(ulong descriptor) => ((descriptor >> AccessShift) & 1) != 0;
        public static bool IsWritable(ulong descriptor) => ((descriptor >> AccessShift) & 2) != 0;
        public static bool IsExecutable(ulong descriptor) => (descriptor & ExecuteNever) == 0;
        public static bool IsDevice(ulong descriptor) => (MemAttr(descriptor) & 0b1100) == 0;
        public static bool HasAccessFlag(ulong descriptor) => (descriptor & AccessFlag) != 0;
    }

    // Stage-1 access permissions, AP[2:1] in descriptor bits [7:6]
    // (Arm ARM: "Data access permissions for stage 1").
    public enum Stage1Access : ulong
    {
        KernelReadWrite = 0,   // EL1 read/write, EL0 none
        AllReadWrite = 1,      // EL1 and EL0 read/write
        KernelReadOnly = 2,    // EL1 read-only, EL0 none
        AllReadOnly = 3,       // EL1 and EL0 read-only
    }

    // Stage-1 descriptors, the format a guest OS (or our own EL2 map) writes.
    // Memory type is indirect: AttrIndx picks one of eight MAIR_ELx bytes.
    public static class Stage1
    {
        public const int AttrIndexShift = 2;                 // AttrIndx[4:2]
        public const ulong AttrIndexMask = 7UL << AttrIndexShift;
        public const ulong NonSecure = 1UL << 5;              // NS, Secure state only
        public const int AccessShift = 6;                     // AP[2:1] at [7:6]
        public const ulong AccessMask = 3UL << AccessShift;
        public const int ShareabilityShift = 8;               // SH[9:8]
        public const ulong InnerShareable = 3UL << ShareabilityShift;
        public const ulong AccessFlag = 1UL << 10;            // AF
        public const ulong NotGlobal = 1UL << 11;             // nG: TLB entry tagged with the ASID
        public const ulong PrivilegedExecuteNever = 1UL << 53; // PXN
        public const ulong UnprivilegedExecuteNever = 1UL << 54; // UXN (XN at EL2/EL3)

        // Hierarchical controls in table descriptors, bits [63:59]: they further
        // limit everything below the table. We leave them 0 (no extra limit).
        public const ulong PxnTable = 1UL << 59;
        public const ulong UxnTable = 1UL << 60;
        public const int ApTableShift = 61;                   // APTable[62:61]
        public const ulong NsTable = 1UL << 63;

        public static ulong Attributes(int attrIndex, Stage1Access access, bool global, bool privilegedExecute, bool unprivilegedExecute)
        {
            ulong bits = ((ulong)(attrIndex & 7) << AttrIndexShift) | ((ulong)access << AccessShift) | InnerShareable | AccessFlag;
            if (!global) bits |= NotGlobal;
            if (!privilegedExecute) bits |= PrivilegedExecuteNever;
            if (!unprivilegedExecute) bits |= UnprivilegedExecuteNever;
            return bits;
        }

        public static ulong Page(ulong pa, ulong attributes) =>
            (pa & Descriptor.AddressMask) | (attributes & Descriptor.AttributeMask) | Descriptor.TableOrPageType;

        public static ulong Block(ulong pa, int level, ulong attributes) =>
            (pa & Descriptor.AddressMask & ~(Descriptor.LevelSize(level) - 1))
            | (attributes & Descriptor.AttributeMask) | Descriptor.BlockType;

        public static ulong Table(ulong tablePhysicalAddress) => Descriptor.Table(tablePhysicalAddress);

        public static int AttrIndex(ulong descriptor) => (int)((descriptor & AttrIndexMask) >> AttrIndexShift);
        public static Stage1Access Access(ulong descriptor) => (Stage1Access)((descriptor & AccessMask) >> AccessShift);
        public static bool HasAccessFlag(ulong descriptor) => (descriptor & AccessFlag) != 0;
        public static bool IsGlobal(ulong descriptor) => (descriptor & NotGlobal) == 0;
    }
}
