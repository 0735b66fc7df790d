namespace Hypervisor.Vm
{
    // A vCPU's EL1 system registers (order fixed by boot/context.s).
    public struct El1State
    {
        public ulong Sctlr, Tcr, Ttbr0, Ttbr1, Mair, Amair, Vbar, Contextidr;
        public ulong TpidrEl1, TpidrEl0, TpidrroEl0, SpEl1, ElrEl1, SpsrEl1, EsrEl1, FarEl1;
        public ulong Afsr0, Afsr1, Par, Cpacr, Cntkctl, CntvCtl, CntvCval, Csselr, Mdscr, SpEl0;
    }

    // q0-q31, FPSR, FPCR (order fixed by boot/context.s).
    public unsafe struct FpState
    {
        public fixed ulong Q[64];
        public ulong Fpsr, Fpcr;
    }
}
