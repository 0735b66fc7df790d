namespace Hypervisor.Arch
{
    // ESR_ELx.EC: bits [31:26] of the syndrome say what kind of exception this is.
    // Names follow the Arm ARM (D17.2.37, "ESR_EL2").
    public static class ExceptionClass
    {
        public const uint Unknown = 0x00;
        public const uint WfiWfe = 0x01;
        public const uint Cp15Aarch32 = 0x03;      // MCR/MRC to CP15 (AArch32 EL0)
        public const uint Cp15PairAarch32 = 0x04;  // MCRR/MRRC to CP15
        public const uint Cp14Aarch32 = 0x05;      // MCR/MRC to CP14
        public const uint Cp14LdcStc = 0x06;       // LDC/STC to CP14
        public const uint FpAccess = 0x07;
        public const uint Cp10Id = 0x08;           // VMRS of the AArch32 FP ID registers
        public const uint PointerAuth = 0x09;      // PAC instructions and keys (HCR_EL2.API/APK = 0)
        public const uint Ls64 = 0x0a;             // LD64B/ST64B
        public const uint Cp14PairAarch32 = 0x0c;  // MRRC to CP14
        public const uint SysReg128 = 0x14;        // MRRS/MSRR
        public const uint Sve = 0x19;              // SVE (CPTR_EL2.TZ)
        public const uint Sme = 0x1d;              // SME (CPTR_EL2.TSM)
        public const uint IllegalState = 0x0e;
        public const uint Svc64 = 0x15;
        public const uint Hvc64 = 0x16;
        public const uint Smc64 = 0x17;
        public const uint SysReg64 = 0x18;
        public const uint InstructionAbortLowerEl = 0x20;
        public const uint InstructionAbortSameEl = 0x21;
        public const uint PcAlignment = 0x22;
        public const uint DataAbortLowerEl = 0x24;
        public const uint DataAbortSameEl = 0x25;
        public const uint SpAlignment = 0x26;
        public const uint SError = 0x2f;
        public const uint BreakpointLowerEl = 0x30;
        public const uint BreakpointSameEl = 0x31;
        public const uint SoftwareStepLowerEl = 0x32;
        public const uint SoftwareStepSameEl = 0x33;
        public const uint WatchpointLowerEl = 0x34;
        public const uint WatchpointSameEl = 0x35;
        public const uint Brk64 = 0x3c;

        public static uint Of(ulong esr) => (uint)(esr >> 26) & 0x3f;

        // EC 0x01's ISS.TI: 0 WFI, 1 WFE, 2 WFIT, 3 WFET. The last two carry
        // a timeout (FEAT_WFxT); the guest is told it has no WFxT
        // (IdRegisters), since the exit does not keep a timeout, so they are
        // undefined instructions for it, as on a CPU without them.
        public static bool IsWfe(ulong esr) => (esr & 1) != 0;
        public static bool IsWfxWithTimeout(ulong esr) => (esr & 2) != 0;

        // Traps of instructions a guest of this hypervisor does not have: the
        // features are hidden from its ID registers (kernel/Arch/IdRegisters.cs),
        // or belong to AArch32 coprocessors it is not given. On a CPU without
        // them they would be undefined instructions, and that is what the
        // guest gets: a guest that tries one is not stopped for it.
        public static bool IsAbsentFeature(uint ec) =>
            ec == Cp15Aarch32 || ec == Cp15PairAarch32 || ec == Cp14Aarch32 || ec == Cp14LdcStc ||
            ec == FpAccess || ec == Cp10Id || ec == PointerAuth || ec == Ls64 || ec == Cp14PairAarch32 ||
            ec == SysReg128 || ec == Sve || ec == Sme;

        public static string Name(uint ec)
        {
            switch (ec)
            {
                case Unknown: return "unknown reason (undefined instruction)";
                case WfiWfe: return "WFI/WFE";
                case Cp15Aarch32: return "AArch32 CP15 access";
                case Cp15PairAarch32: return "AArch32 CP15 64-bit access";
                case Cp14Aarch32: return "AArch32 CP14 access";
                case Cp14LdcStc: return "AArch32 CP14 LDC/STC";
                case FpAccess: return "FP/SIMD access";
                case Cp10Id: return "AArch32 FP ID register access";
                case PointerAuth: return "pointer authentication";
                case Ls64: return "LD64B/ST64B";
                case Cp14PairAarch32: return "AArch32 CP14 64-bit access";
                case SysReg128: return "128-bit system register access";
                case Sve: return "SVE access";
                case Sme: return "SME access";
                case IllegalState: return "illegal execution state";
                case Svc64: return "SVC";
                case Hvc64: return "HVC";
                case Smc64: return "SMC";
                case SysReg64: return "system register access";
                case InstructionAbortLowerEl: return "instruction abort from a lower EL";
                case InstructionAbortSameEl: return "instruction abort at EL2";
                case PcAlignment: return "PC alignment fault";
                case DataAbortLowerEl: return "data abort from a lower EL";
                case DataAbortSameEl: return "data abort at EL2";
                case SpAlignment: return "SP alignment fault";
                case SError: return "SError";
                case BreakpointLowerEl: return "breakpoint from a lower EL";
                case BreakpointSameEl: return "breakpoint at EL2";
                case SoftwareStepLowerEl: return "software step from a lower EL";
                case SoftwareStepSameEl: return "software step at EL2";
                case WatchpointLowerEl: return "watchpoint from a lower EL";
                case WatchpointSameEl: return "watchpoint at EL2";
                case Brk64: return "BRK instruction";
                default: return "reserved exception class";
            }
        }
    }
}
