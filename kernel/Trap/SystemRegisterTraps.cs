using Hypervisor.Arch;
using Hypervisor.Console;
using Hypervisor.Devices;
using Hypervisor.Paging;
using Hypervisor.Vm;

namespace Hypervisor.Trap
{
    // The EL1 registers that describe a guest's stage-1 translation: what
    // HCR_EL2.TVM traps on write and HCR_EL2.TRVM on read (Arm ARM D19.2.48).
    public enum TranslationRegister
    {
        None, Sctlr, Ttbr0, Ttbr1, Tcr, Esr, Far, Afsr0, Afsr1, Mair, Amair, ContextIdr,
    }

    public static class TranslationRegisters
    {
        // By the MSR/MRS encoding (op0 is always 3 for these, op1 0).
        public static TranslationRegister Identify(in SysRegAccess a)
        {
            if (a.Op0 != 3 || a.Op1 != 0) return TranslationRegister.None;
            switch ((a.CRn << 8) | (a.CRm << 4) | a.Op2)
            {
                case 0x100: return TranslationRegister.Sctlr;
                case 0x200: return TranslationRegister.Ttbr0;
                case 0x201: return TranslationRegister.Ttbr1;
                case 0x202: return TranslationRegister.Tcr;
                case 0x510: return TranslationRegister.Afsr0;
                case 0x511: return TranslationRegister.Afsr1;
                case 0x520: return TranslationRegister.Esr;
                case 0x600: return TranslationRegister.Far;
                case 0xA20: return TranslationRegister.Mair;
                case 0xA30: return TranslationRegister.Amair;
                case 0xD01: return TranslationRegister.ContextIdr;
                default: return TranslationRegister.None;
            }
        }

        public static ulong ReadReal(TranslationRegister reg)
        {
            switch (reg)
            {
                case TranslationRegister.Sctlr: return SysReg.ReadSctlrEl1();
                case TranslationRegister.Ttbr0: return SysReg.ReadTtbr0El1();
                case TranslationRegister.Ttbr1: return SysReg.ReadTtbr1El1();
                case TranslationRegister.Tcr: return SysReg.ReadTcrEl1();
                case TranslationRegister.Esr: return SysReg.ReadEsrEl1();
                case TranslationRegister.Far: return SysReg.ReadFarEl1();
                case TranslationRegister.Afsr0: return SysReg.ReadAfsr0El1();
                case TranslationRegister.Afsr1: return SysReg.ReadAfsr1El1();
                case TranslationRegister.Mair: return SysReg.ReadMairEl1();
                case TranslationRegister.Amair: return SysReg.ReadAmairEl1();
                case TranslationRegister.ContextIdr: return SysReg.ReadContextidrEl1();
                default: return 0;
            }
        }

        public static void WriteReal(TranslationRegister reg, ulong value)
        {
            switch (reg)
            {
                case TranslationRegister.Sctlr: SysReg.WriteSctlrEl1(value); break;
                case TranslationRegister.Ttbr0: SysReg.WriteTtbr0El1(value); break;
                case TranslationRegister.Ttbr1: SysReg.WriteTtbr1El1(value); break;
                case TranslationRegister.Tcr: SysReg.WriteTcrEl1(value); break;
                case TranslationRegister.Esr: SysReg.WriteEsrEl1(value); break;
                case TranslationRegister.Far: SysReg.WriteFarEl1(value); break;
                case TranslationRegister.Afsr0: SysReg.WriteAfsr0El1(value); break;
                case TranslationRegister.Afsr1: SysReg.WriteAfsr1El1(value); break;
                case TranslationRegister.Mair: SysReg.WriteMairEl1(value); break;
                case TranslationRegister.Amair: SysReg.WriteAmairEl1(value); break;
                case TranslationRegister.ContextIdr: SysReg.WriteContextidrEl1(value); break;
            }
        }
    }

    // ESR_EL2.ISS for EC 0x18 (a trapped MSR, MRS or SYS instruction).
    public readonly struct SysRegAccess
    {
        public readonly int Op0, Op1, CRn, CRm, Op2, Rt;
        public readonly bool IsRead;

        public SysRegAccess(ulong esr)
        {
            Op0 = (int)(esr >> 20) & 3;
            Op2 = (int)(esr >> 17) & 7;
            Op1 = (int)(esr >> 14) & 7;
            CRn = (int)(esr >> 10) & 0xf;
            Rt = (int)(esr >> 5) & 0x1f;
            CRm = (int)(esr >> 1) & 0xf;
            IsRead = (esr & 1) != 0;
        }

        // TLBI <op>{, Xt}: SYS with op0 = 1, CRn = 8.
        public bool IsTlbi => Op0 == 1 && CRn == 8 && !IsRead;

        // CNTP_TVAL_EL0 (3,3,14,2,0), CNTP_CTL_EL0 (op2 1), CNTP_CVAL_EL0 (op2 2).
        public bool IsPhysicalTimer => Op0 == 3 && Op1 == 3 && CRn == 14 && CRm == 2 && Op2 <= 2;

        // ACTLR_EL1 (3,0,1,0,1), trapped by HCR_EL2.TACR.
        public bool IsAuxiliaryControl => Op0 == 3 && Op1 == 0 && CRn == 1 && CRm == 0 && Op2 == 1;

        // MDRAR_EL1 (2,0,1,0,0): where the memory-mapped debug ROM is.
        public bool IsDebugRomAddress => Op0 == 2 && Op1 == 0 && CRn == 1 && CRm == 0 && Op2 == 0;

        // The PMU's registers: PMCR_EL0 and the rest of (3,3,9,12..14,*),
        // PMINTENSET/CLR_EL1 and PMMIR_EL1 (3,0,9,14,1/2/6), PMEVCNTR<n>_EL0,
        // PMEVTYPER<n>_EL0 and PMCCFILTR_EL0 (3,3,14,8..15,*).
        public bool IsPmu => Op0 == 3 && (
            (Op1 == 3 && CRn == 9 && CRm >= 12 && CRm <= 14) ||
            (Op1 == 0 && CRn == 9 && CRm == 14 && (Op2 == 1 || Op2 == 2 || Op2 == 6)) ||
            (Op1 == 3 && CRn == 14 && CRm >= 8));

        // ICC_SGI1R_EL1 (3,0,12,11,5), ICC_ASGI1R_EL1 (op2 6), ICC_SGI0R_EL1 (op2 7).
        public bool IsSgiGeneration => Op0 == 3 && Op1 == 0 && CRn == 12 && CRm == 11 && Op2 >= 5 && !IsRead;
    }

    // EC 0x18 exits. Only shadow and direct paging VMs trap anything here
    // (HCR_EL2.TVM, TRVM, TTLB); everything else is an instruction this VM
    // does not have, and the guest gets an undefined-instruction exception.
    public static unsafe class SystemRegisterTraps
    {

        // SCTLR_EL1 and TCR_EL1 writes are checked against the state they
        // would make, in both modes whose tables the hypervisor vouches for
        // (kernel/Paging/WalkRules.cs says which fields and why).
        private static bool RefusedByWalkRules(VirtualMachine vm, TranslationRegister reg, ulong value)
        {
            if (reg != TranslationRegister.Sctlr && reg != TranslationRegister.Tcr) return false;
            ulong sctlr = reg == TranslationRegister.Sctlr ? value : SysReg.ReadSctlrEl1();
            ulong tcr = reg == TranslationRegister.Tcr ? value : vm.Shadow != null ? vm.Shadow.GuestTcr : SysReg.ReadTcrEl1();
            string refusal = WalkRules.Refusal(sctlr, tcr);
            if (refusal == null) return false;
            vm.Counters.WalkRulesRefused++;
            if (vm.Direct != null) vm.Counters.DirectRefused++;
            Log.Write("[hv] vm ");
            Log.Write(vm.Name);
            Log.Write(reg == TranslationRegister.Sctlr ? ": SCTLR_EL1 write refused: " : ": TCR_EL1 write refused: ");
            Log.Line(refusal);
            return true;
        }

        // One dispatch on what was accessed; the predicates are disjoint, and
        // the translation registers of shadow and direct VMs (a TTBR write per
        // address-space switch) come first.
        public static void Handle(Vcpu vcpu, TrapFrame* frame)
        {
            VirtualMachine vm = vcpu.Vm;
            var access = new SysRegAccess(frame->Esr);
            // ID registers first: the most frequent by far (a booting Linux).
            if (access.IsRead && IdRegisters.IsIdRegister(access.Op0, access.Op1, access.CRn, access.CRm))
            {
                Result(frame, access, IdRegisters.Decided[IdRegisters.Index(access.CRm, access.Op2)]);
                return;
            }
            if (vm.Shadow != null || vm.Direct != null)
            {
                TranslationRegister reg = TranslationRegisters.Identify(access);
                if (reg != TranslationRegister.None) { Translation(vm, frame, access, reg); return; }
                if (access.IsTlbi && vm.Shadow != null)
                {
                    vm.Shadow.OnGuestTlbi();
                    frame->Elr += 4;
                    return;
                }
            }
            if (access.Op0 == 2) Debug(vcpu, frame, access);
            else if (access.IsSgiGeneration && vm.Vgic != null) Sgi(vcpu, frame, access);
            else if (access.IsPhysicalTimer) PhysicalTimer(vcpu, frame, access);
            else if (access.IsAuxiliaryControl)
            {
                // ACTLR_EL1: its contents are implementation defined, so zero
                // is an answer a CPU may give; what a guest writes reaches
                // nothing (the CPU's real controls are not the guest's).
                if (access.IsRead) Result(frame, access, 0);
                else frame->Elr += 4;
            }
            else
            {
                // The PMU (MDCR_EL2.TPM/TPMCR: the ID registers say there is none,
                // and an absent PMU's registers are undefined instructions), the
                // hidden features' registers, and anything this VM does not have.
                if (access.IsPmu) vm.Counters.PmuTraps++;
                Injection.UndefinedInstruction(vm, frame);
            }
        }

        private static ulong Written(TrapFrame* frame, in SysRegAccess access) => access.Rt == 31 ? 0 : frame->X[access.Rt];

        private static void Result(TrapFrame* frame, in SysRegAccess access, ulong value)
        {
            if (access.Rt != 31) frame->X[access.Rt] = value;
            frame->Elr += 4;
        }

        // HCR_EL2.TVM/TRVM: shadow paging keeps the guest's own values, direct
        // paging checks what the MMU would walk (both after the walk rules).
        private static void Translation(VirtualMachine vm, TrapFrame* frame, in SysRegAccess access, TranslationRegister reg)
        {
            if (access.IsRead)
            {
                Result(frame, access, vm.Shadow != null ? vm.Shadow.Read(reg) : TranslationRegisters.ReadReal(reg));
                return;
            }
            ulong written = Written(frame, access);
            if (RefusedByWalkRules(vm, reg, written))
            {
                Injection.UndefinedInstruction(vm, frame);
                return;
            }
            bool done = vm.Shadow != null ? vm.Shadow.Write(reg, written) : vm.Direct.Write(vm, frame, reg, written);
            if (done) frame->Elr += 4;
        }

        // The debug registers (MDCR_EL2.TDA/TDOSA/TDRA): kernel/Vm/DebugState.cs.
        private static void Debug(Vcpu vcpu, TrapFrame* frame, in SysRegAccess access)
        {
            if (access.IsDebugRomAddress) Result(frame, access, 0);
            else if (!vcpu.Debug.InUse) vcpu.Debug.TakeOwnership();   // the access runs again, untrapped
            else Injection.UndefinedInstruction(vcpu.Vm, frame);
        }

        // ICC_SGI1R/ASGI1R/SGI0R_EL1 always trap with HCR_EL2.IMO set: a
        // software-generated interrupt for the PEs the value names, each of
        // the VM's vCPUs checked against the target list, affinity and IRM
        // (VgicState.SgiReaches). A target on another physical CPU is told
        // through its VgicCpu (Scheduler.Notice).
        private static void Sgi(Vcpu vcpu, TrapFrame* frame, in SysRegAccess access)
        {
            ulong value = Written(frame, access);
            int intid = VgicState.SgiIntid(value);
            Vcpu[] vcpus = vcpu.Vm.Vcpus;
            for (int i = 0; i < vcpus.Length; i++)
                if (VgicState.SgiReaches(value, vcpus[i].Mpidr, vcpu.Mpidr)) vcpus[i].Gic.Raise(intid);
            vcpu.Vm.Counters.SgisSent++;
            frame->Elr += 4;
        }

        // HCR_EL2.TID3: the feature ID registers, as decided in IdRegisters.cs.
        // CNTP_TVAL/CTL/CVAL_EL0 (CNTHCTL_EL2.EL1PCEN = 0): the emulated
        // physical timer (kernel/Vm/GuestTimers.cs).
        private static void PhysicalTimer(Vcpu vcpu, TrapFrame* frame, in SysRegAccess access)
        {
            ulong now = SysReg.ReadCntpctEl0();
            vcpu.Vm.Counters.PhysicalTimerTraps++;
            if (access.IsRead)
            {
                Result(frame, access, vcpu.Timers.ReadPhysical(access.Op2, now));
                return;
            }
            vcpu.Timers.WritePhysical(access.Op2, Written(frame, access), now);
            frame->Elr += 4;
        }
    }
}
