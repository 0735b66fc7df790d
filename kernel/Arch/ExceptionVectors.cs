namespace Hypervisor.Arch
{
    // Where in the guest's vector table (VBAR_EL1) an injected synchronous
    // exception goes, and how long the instruction was that trapped.
    public static class ExceptionVectors
    {
        private const ulong Aarch32 = 1UL << 4;          // SPSR.M[4]: the interrupted state was AArch32
        private const ulong ModeMask = 0xf;
        private const ulong Il = 1UL << 25;              // ESR_ELx.IL

        // By the state the exception is taken from (SPSR_EL2 at the exit):
        //   EL1 on SP_EL0 -> 0x000, EL1 on SP_EL1 -> 0x200,
        //   EL0 in AArch64 -> 0x400, EL0 in AArch32 -> 0x600.
        // With HCR_EL2.RW set EL1 is AArch64, so an AArch32 state is EL0.
        public static ulong SyncOffset(ulong spsr)
        {
            if ((spsr & Aarch32) != 0) return 0x600;
            ulong mode = spsr & ModeMask;
            if (mode == Pstate.ModeEl1t) return 0x000;
            if (mode == Pstate.ModeEl1h) return 0x200;
            return 0x400;
        }

        // Taken from EL0, in either execution state.
        public static bool FromEl0(ulong spsr) => (spsr & Aarch32) != 0 || (spsr & ModeMask) == Pstate.ModeEl0t;

        public static bool FromAarch32(ulong spsr) => (spsr & Aarch32) != 0;

        // The trapped instruction's size in bytes, from ESR_ELx.IL: 2 for a
        // 16-bit Thumb instruction, else 4. Stepping over a Thumb WFI by 4
        // would skip the instruction after it.
        public static ulong InstructionLength(ulong esr) => (esr & Il) != 0 ? 4UL : 2UL;
    }
}
