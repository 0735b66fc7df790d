namespace Hypervisor.Arch
{
    // What a data abort or an instruction abort tells the hypervisor about itself.
    //
    // On an abort the CPU writes ESR_EL2: EC in bits [31:26] (ExceptionClass),
    // IL in bit [25], and the Instruction Specific Syndrome (ISS) in bits [24:0].
    // For data aborts (EC 0x24 from a lower EL, 0x25 at EL2) the ISS layout is
    // (Arm ARM D17.2.37 "ESR_EL2", "ISS encoding for an exception from a Data Abort"):
    //
    //   24     ISV    the instruction syndrome below (SAS..AR) is valid
    //   23:22  SAS    access size: 0 byte, 1 halfword, 2 word, 3 doubleword
    //   21     SSE    the load sign-extends
    //   20:16  SRT    the register transferred (Rt; 31 means XZR/WZR)
    //   15     SF     that register is 64-bit (X) rather than 32-bit (W)
    //   14     AR     acquire/release semantics (LDAR/STLR)
    //   13     VNCR   the fault came from a VNCR_EL2-relative access (nested virt)
    //   10     FnV    FAR is not valid
    //   9      EA     external abort type (implementation defined)
    //   8      CM     a cache maintenance or address translation instruction faulted
    //   7      S1PTW  stage-2 fault while walking the guest's stage-1 tables
    //   6      WnR    the access was a write (1) or a read (0)
    //   5:0    DFSC   data fault status code (FaultStatusCode below)
    //
    // Instruction aborts (EC 0x20 / 0x21) share FnV, EA, S1PTW and the status
    // code (IFSC) at the same positions; the other bits are RES0 for them.
    //
    // The hardware fills ISV=1 only for simple single-register loads and stores
    // without writeback; for everything else (pairs, writeback, ...) ISV=0 and
    // the hypervisor must decode the instruction itself (LoadStoreDecoder).
    public readonly struct DataAbortSyndrome
    {
        public readonly ulong Esr;

        public DataAbortSyndrome(ulong esr) { Esr = esr; }

        public uint Class => ExceptionClass.Of(Esr);

        public bool IsDataAbort =>
            Class == ExceptionClass.DataAbortLowerEl || Class == ExceptionClass.DataAbortSameEl;

        public bool IsInstructionAbort =>
            Class == ExceptionClass.InstructionAbortLowerEl || Class == ExceptionClass.InstructionAbortSameEl;

        // IL: 1 for a 32-bit instruction. Always 1 for aborts from AArch64 code,
        // so the hypervisor skips the emulated instruction with ELR += 4.
        public bool Is32BitInstruction => Bit(25);
        public int InstructionLength => Bit(25) ? 4 : 2;

        public bool IsInstructionSyndromeValid => Bit(24);

        // SAS is log2 of the access size, so the size in bytes is 1 << SAS.
        public int AccessSizeLog2 => (int)(Esr >> 22) & 3;
        public int AccessSize => 1 << AccessSizeLog2;
        public bool SignExtend => Bit(21);
        public int RegisterNumber => (int)(Esr >> 16) & 0x1f;
        public bool Register64Bit => Bit(15);
        public bool AcquireRelease => Bit(14);
        public bool Vncr => Bit(13);
        public bool FarNotValid => Bit(10);
        public bool ExternalAbort => Bit(9);
        public bool CacheMaintenance => Bit(8);
        public bool OnStage1TableWalk => Bit(7);
        public bool IsWrite => Bit(6);

        // DFSC for data aborts, IFSC for instruction aborts: same bits.
        public uint StatusCode => (uint)Esr & 0x3f;
        public FaultStatus Status => FaultStatusCode.Classify(StatusCode);

        // Status.IsTranslation without the table: DFSC 0b0001LL (levels 0-3),
        // or 0b101011 / 0b101010 (levels -1 and -2, FEAT_LPA2). On every
        // demand fault, so a mask and two compares.
        public bool IsTranslationFault
        {
            [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
            get
            {
                uint code = StatusCode;
                return (code & 0x3c) == 0x04 || code == FaultStatusCode.TranslationLevelMinus1 || code == FaultStatusCode.TranslationLevelMinus2;
            }
        }

        private bool Bit(int n) => ((Esr >> n) & 1) != 0;

        // The intermediate physical address (guest-physical) of a stage-2 fault.
        //
        // FAR_EL2 holds the guest's *virtual* address, which means nothing to the
        // hypervisor. For stage-2 faults the CPU also writes HPFAR_EL2, whose FIPA
        // field (bits [43:4]) holds IPA[51:12]: the faulting page number. The byte
        // offset inside the page is not translated by either stage, so it is the
        // same in the VA and the IPA and is taken from FAR_EL2[11:0].
        //
        //   IPA = (HPFAR_EL2.FIPA << 8) | (FAR_EL2 & 0xfff)
        //
        // where "HPFAR_EL2.FIPA" is the field left in place (bits [43:4]), so a
        // shift by 8 moves bit 4 to bit 12. Bit 63 (NS) and other fields are
        // masked off. HPFAR_EL2 is only valid for stage-2 translation, access flag
        // and permission faults, and for faults on a stage-1 table walk (S1PTW).
        public static ulong IntermediatePhysicalAddress(ulong hpfar, ulong far)
        {
            const ulong FipaMask = 0x00000ffffffffff0UL; // bits [43:4]
            return ((hpfar & FipaMask) << 8) | (far & 0xfff);
        }
    }

    // What kind of fault a DFSC/IFSC value describes.
    public enum FaultKind
    {
        Reserved,
        AddressSize,              // output address wider than the configured size
        Translation,              // no valid descriptor: the classic "not mapped"
        AccessFlag,               // descriptor valid but AF = 0
        Permission,               // descriptor forbids this access
        SynchronousExternal,      // the memory system reported an error
        SynchronousExternalOnWalk,
        TagCheck,                 // MTE tag mismatch
        ParityOrEcc,
        ParityOrEccOnWalk,
        Alignment,
        GranuleProtection,        // RME granule protection check
        GranuleProtectionOnWalk,
        TlbConflict,
        UnsupportedAtomicUpdate,  // hardware AF/dirty update not possible
        ImplementationDefined,
    }

    // A classified fault status: kind plus translation level where one applies.
    // Levels run from -2 (FEAT_D128) and -1 (FEAT_LPA2) to 3.
    public readonly struct FaultStatus
    {
        public readonly FaultKind Kind;
        public readonly bool HasLevel;
        public readonly int Level;

        public FaultStatus(FaultKind kind, bool hasLevel, int level)
        {
            Kind = kind;
            HasLevel = hasLevel;
            Level = level;
        }

        public bool IsTranslation => Kind == FaultKind.Translation;
        public bool IsPermission => Kind == FaultKind.Permission;
        public bool IsAccessFlag => Kind == FaultKind.AccessFlag;
    }

    // DFSC / IFSC values: ESR_EL2 bits [5:0] for data and instruction aborts.
    // Table from Arm ARM D17.2.37 "ESR_EL2", field DFSC. The low two bits of the
    // walk-related codes give the level (0..3); the negative levels of larger
    // address spaces were squeezed into spare codes later.
    public static class FaultStatusCode
    {
        public const uint AddressSizeLevel0 = 0x00;      // ..0x03 for levels 0..3
        public const uint TranslationLevel0 = 0x04;      // ..0x07
        public const uint AccessFlagLevel0 = 0x08;       // ..0x0b (level 0 needs FEAT_LPA2)
        public const uint PermissionLevel0 = 0x0c;       // ..0x0f (level 0 needs FEAT_LPA2)
        public const uint SynchronousExternal = 0x10;
        public const uint TagCheck = 0x11;
        public const uint SynchronousExternalOnWalkLevelMinus2 = 0x12;
        public const uint SynchronousExternalOnWalkLevelMinus1 = 0x13;
        public const uint SynchronousExternalOnWalkLevel0 = 0x14; // ..0x17
        public const uint ParityOrEcc = 0x18;
        public const uint ParityOrEccOnWalkLevelMinus1 = 0x1b;
        public const uint ParityOrEccOnWalkLevel0 = 0x1c;  // ..0x1f
        public const uint Alignment = 0x21;
        public const uint GranuleProtectionOnWalkLevelMinus2 = 0x22;
        public const uint GranuleProtectionOnWalkLevelMinus1 = 0x23;
        public const uint GranuleProtectionOnWalkLevel0 = 0x24; // ..0x27
        public const uint GranuleProtection = 0x28;
        public const uint AddressSizeLevelMinus1 = 0x29;
        public const uint TranslationLevelMinus2 = 0x2a;
        public const uint TranslationLevelMinus1 = 0x2b;
        public const uint AddressSizeLevelMinus2 = 0x2c;
        public const uint TlbConflict = 0x30;
        public const uint UnsupportedAtomicUpdate = 0x31;
        public const uint ImplementationDefinedLockdown = 0x34;
        public const uint ImplementationDefinedAtomic = 0x35;

        public static FaultStatus Classify(uint code)
        {
            code &= 0x3f;
            int low = (int)(code & 3);
            // The four-per-level groups: code = group base + level.
            switch (code >> 2)
            {
                case 0x0: return Leveled(FaultKind.AddressSize, low);
                case 0x1: return Leveled(FaultKind.Translation, low);
                case 0x2: return Leveled(FaultKind.AccessFlag, low);
                case 0x3: return Leveled(FaultKind.Permission, low);
                case 0x5: return Leveled(FaultKind.SynchronousExternalOnWalk, low);
                case 0x7: return Leveled(FaultKind.ParityOrEccOnWalk, low);
                case 0x9: return Leveled(FaultKind.GranuleProtectionOnWalk, low);
            }
            switch (code)
            {
                case SynchronousExternal: return Unleveled(FaultKind.SynchronousExternal);
                case TagCheck: return Unleveled(FaultKind.TagCheck);
                case SynchronousExternalOnWalkLevelMinus2: return Leveled(FaultKind.SynchronousExternalOnWalk, -2);
                case SynchronousExternalOnWalkLevelMinus1: return Leveled(FaultKind.SynchronousExternalOnWalk, -1);
                case ParityOrEcc: return Unleveled(FaultKind.ParityOrEcc);
                case ParityOrEccOnWalkLevelMinus1: return Leveled(FaultKind.ParityOrEccOnWalk, -1);
                case Alignment: return Unleveled(FaultKind.Alignment);
                case GranuleProtectionOnWalkLevelMinus2: return Leveled(FaultKind.GranuleProtectionOnWalk, -2);
                case GranuleProtectionOnWalkLevelMinus1: return Leveled(FaultKind.GranuleProtectionOnWalk, -1);
                case GranuleProtection: return Unleveled(FaultKind.GranuleProtection);
                case AddressSizeLevelMinus1: return Leveled(FaultKind.AddressSize, -1);
                case TranslationLevelMinus2: return Leveled(FaultKind.Translation, -2);
                case TranslationLevelMinus1: return Leveled(FaultKind.Translation, -1);
                case AddressSizeLevelMinus2: return Leveled(FaultKind.AddressSize, -2);
                case TlbConflict: return Unleveled(FaultKind.TlbConflict);
                case UnsupportedAtomicUpdate: return Unleveled(FaultKind.UnsupportedAtomicUpdate);
                case ImplementationDefinedLockdown: return Unleveled(FaultKind.ImplementationDefined);
                case ImplementationDefinedAtomic: return Unleveled(FaultKind.ImplementationDefined);
                default: return Unleveled(FaultKind.Reserved);
            }
        }

        private static FaultStatus Leveled(FaultKind kind, int level) => new FaultStatus(kind, true, level);
        private static FaultStatus Unleveled(FaultKind kind) => new FaultStatus(kind, false, 0);

        // A fixed phrase per kind; log lines print the level next to it as a number.
        public static string KindName(FaultKind kind)
        {
            switch (kind)
            {
                case FaultKind.AddressSize: return "address size fault";
                case FaultKind.Translation: return "translation fault";
                case FaultKind.AccessFlag: return "access flag fault";
                case FaultKind.Permission: return "permission fault";
                case FaultKind.SynchronousExternal: return "synchronous external abort";
                case FaultKind.SynchronousExternalOnWalk: return "synchronous external abort on table walk";
                case FaultKind.TagCheck: return "tag check fault";
                case FaultKind.ParityOrEcc: return "parity/ECC error";
                case FaultKind.ParityOrEccOnWalk: return "parity/ECC error on table walk";
                case FaultKind.Alignment: return "alignment fault";
                case FaultKind.GranuleProtection: return "granule protection fault";
                case FaultKind.GranuleProtectionOnWalk: return "granule protection fault on table walk";
                case FaultKind.TlbConflict: return "TLB conflict abort";
                case FaultKind.UnsupportedAtomicUpdate: return "unsupported atomic hardware update fault";
                case FaultKind.ImplementationDefined: return "implementation defined fault";
                default: return "reserved fault status";
            }
        }

        // The whole phrase, level included, for the faults a stage-2 handler sees
        // every day (address size, translation, access flag, permission at levels
        // 0..3). Strings cannot be built at run time in the kernel, so each is a
        // literal; the other kinds and the rare negative levels give the kind's
        // name only (print Status.Level beside it when HasLevel).
        public static string Name(uint code)
        {
            FaultStatus status = Classify(code);
            if (status.HasLevel && status.Level >= 0)
            {
                switch (status.Kind)
                {
                    case FaultKind.Translation: return Pick(status.Level,
                        "translation fault, level 0", "translation fault, level 1",
                        "translation fault, level 2", "translation fault, level 3");
                    case FaultKind.AccessFlag: return Pick(status.Level,
                        "access flag fault, level 0", "access flag fault, level 1",
                        "access flag fault, level 2", "access flag fault, level 3");
                    case FaultKind.Permission: return Pick(status.Level,
                        "permission fault, level 0", "permission fault, level 1",
                        "permission fault, level 2", "permission fault, level 3");
                    case FaultKind.AddressSize: return Pick(status.Level,
                        "address size fault, level 0", "address size fault, level 1",
                        "address size fault, level 2", "address size fault, level 3");
                }
            }
            return KindName(status.Kind);
        }

        private static string Pick(int level, string l0, string l1, string l2, string l3)
        {
            switch (level)
            {
                case 0: return l0;
                case 1: return l1;
                case 2: return l2;
                default: return l3;
            }
        }
    }
}
