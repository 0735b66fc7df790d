namespace Hypervisor.Arch
{
    // ESR_ELx.EC: bits [31:26] of the syndrome say what kind of exception this is.
    // Names follow the Arm ARM (D17.2.37, "ESR_EL2").
    public static class ExceptionClass
    {
        public const uint Unknown = 0x00;
        public const uint WfiWfe = 0x01;
        public const uint FpAccess = 0x07;
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

        public static string Name(uint ec)
        {
            switch (ec)
            {
                case Unknown: return "unknown reason (undefined instruction)";
                case WfiWfe: return "WFI/WFE";
                case FpAccess: return "FP/SIMD access";
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
