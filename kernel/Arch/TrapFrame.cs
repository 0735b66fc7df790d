namespace Hypervisor.Arch
{
    // The registers boot/vectors.S saves on every exception, in that order
    // (offsets are mirrored in boot/asm.inc). The handler may change them; the
    // vector code restores them and returns with ERET. A guest's frame is
    // part of its vCPU's context (kernel/Vm/VcpuContext.cs): its exits save
    // straight into it.
    public unsafe struct TrapFrame
    {
        public fixed ulong X[31];
        public ulong Elr;       // where ERET returns: the guest's PC
        public ulong Spsr;      // the guest's PSTATE (mode, DAIF, flags)
        public ulong Esr;       // syndrome: why we are here
        public ulong Far;       // faulting virtual address (aborts)
        public ulong Hpfar;     // faulting IPA >> 12, in bits [43:4] (stage-2 aborts)
        // (SP_EL0 is not here: like the EL1 registers it stays in the CPU
        // while the hypervisor runs, kernel/Vm/VcpuState.cs.)
        public fixed ulong Q16[2];  // the guest's q16 and q17 (VM exits only): the
        public fixed ulong Q17[2];  // only SIMD registers compiled C# code uses
        // Where the hypervisor's stack starts on the CPU this vCPU is loaded
        // in: the exit path moves there from the frame (Scheduler.Load sets it).
        public ulong HvStack;
        private ulong _unused;      // (the frame stays a multiple of 16 bytes)

        public const int Size = 336;
    }

    // Which of the 16 vector entries was taken (boot/vectors.S).
    public static class VectorKind
    {
        public static bool IsFromCurrentEl(ulong kind) => kind < 8;
        public static bool IsFromLowerEl(ulong kind) => kind >= 8;
        public static bool IsSynchronous(ulong kind) => (kind & 3) == 0;

        public static string Name(ulong kind)
        {
            switch (kind & 3)
            {
                case 0: return "synchronous";
                case 1: return "IRQ";
                case 2: return "FIQ";
                default: return "SError";
            }
        }
    }
}
