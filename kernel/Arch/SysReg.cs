using System.Runtime;
using System.Runtime.CompilerServices;

namespace Hypervisor.Arch
{
    // The hardware seam: every system register the kernel touches, each a call
    // into a two-instruction function in boot/sysreg.S.
    public static class SysReg
    {
        [RuntimeImport("*", "read_currentel")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadCurrentEl();
        [RuntimeImport("*", "read_mpidr_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadMpidrEl1();
        [RuntimeImport("*", "read_ctr_el0")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadCtrEl0();
        [RuntimeImport("*", "read_midr_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadMidrEl1();
        [RuntimeImport("*", "read_id_aa64mmfr0_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadIdAa64Mmfr0El1();
        [RuntimeImport("*", "read_id_aa64mmfr1_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadIdAa64Mmfr1El1();
        [RuntimeImport("*", "write_hstr_el2")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteHstrEl2(ulong value);
        [RuntimeImport("*", "write_hacr_el2")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteHacrEl2(ulong value);
        [RuntimeImport("*", "write_feature_register")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteFeatureRegister(ulong index, ulong value);
        [RuntimeImport("*", "read_mpamidr_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadMpamidrEl1();
        [RuntimeImport("*", "read_id_register")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadIdRegister(ulong index);
        [RuntimeImport("*", "read_id_aa64dfr0_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadIdAa64Dfr0El1();
        [RuntimeImport("*", "read_id_aa64pfr0_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadIdAa64Pfr0El1();
        [RuntimeImport("*", "read_id_aa64isar0_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadIdAa64Isar0El1();
        [RuntimeImport("*", "read_rndr")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadRndr();
        [RuntimeImport("*", "read_cntfrq_el0")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadCntfrqEl0();
        [RuntimeImport("*", "read_cntpct_el0")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadCntpctEl0();
        [RuntimeImport("*", "read_sctlr_el2")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadSctlrEl2();
        [RuntimeImport("*", "read_tcr_el2")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadTcrEl2();
        [RuntimeImport("*", "read_hcr_el2")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadHcrEl2();
        [RuntimeImport("*", "write_hcr_el2")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteHcrEl2(ulong value);
        [RuntimeImport("*", "read_vtcr_el2")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadVtcrEl2();
        [RuntimeImport("*", "write_vtcr_el2")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteVtcrEl2(ulong value);
        [RuntimeImport("*", "read_vttbr_el2")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadVttbrEl2();
        [RuntimeImport("*", "write_vttbr_el2")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteVttbrEl2(ulong value);

        // The guest's EL1 registers and the EL2 controls of its world.
        [RuntimeImport("*", "read_esr_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadEsrEl1();
        [RuntimeImport("*", "write_esr_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteEsrEl1(ulong value);
        [RuntimeImport("*", "read_far_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadFarEl1();
        [RuntimeImport("*", "write_far_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteFarEl1(ulong value);
        [RuntimeImport("*", "read_elr_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadElrEl1();
        [RuntimeImport("*", "write_elr_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteElrEl1(ulong value);
        [RuntimeImport("*", "read_spsr_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadSpsrEl1();
        [RuntimeImport("*", "write_spsr_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteSpsrEl1(ulong value);
        [RuntimeImport("*", "read_vbar_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadVbarEl1();
        [RuntimeImport("*", "write_vbar_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteVbarEl1(ulong value);
        [RuntimeImport("*", "read_sctlr_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadSctlrEl1();
        [RuntimeImport("*", "write_sctlr_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteSctlrEl1(ulong value);
        [RuntimeImport("*", "read_tcr_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadTcrEl1();
        [RuntimeImport("*", "write_tcr_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteTcrEl1(ulong value);
        [RuntimeImport("*", "read_ttbr0_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadTtbr0El1();
        [RuntimeImport("*", "write_ttbr0_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteTtbr0El1(ulong value);
        [RuntimeImport("*", "read_ttbr1_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadTtbr1El1();
        [RuntimeImport("*", "write_ttbr1_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteTtbr1El1(ulong value);
        [RuntimeImport("*", "read_mair_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadMairEl1();
        [RuntimeImport("*", "write_mair_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteMairEl1(ulong value);
        [RuntimeImport("*", "read_sp_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadSpEl1();
        [RuntimeImport("*", "write_sp_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteSpEl1(ulong value);
        [RuntimeImport("*", "read_sp_el0")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadSpEl0();
        [RuntimeImport("*", "write_sp_el0")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteSpEl0(ulong value);
        [RuntimeImport("*", "read_cpacr_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadCpacrEl1();
        [RuntimeImport("*", "write_cpacr_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteCpacrEl1(ulong value);
        [RuntimeImport("*", "read_contextidr_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadContextidrEl1();
        [RuntimeImport("*", "write_contextidr_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteContextidrEl1(ulong value);
        [RuntimeImport("*", "read_tpidr_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadTpidrEl1();
        [RuntimeImport("*", "write_tpidr_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteTpidrEl1(ulong value);
        [RuntimeImport("*", "read_tpidr_el0")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadTpidrEl0();
        [RuntimeImport("*", "write_tpidr_el0")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteTpidrEl0(ulong value);
        [RuntimeImport("*", "read_tpidrro_el0")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadTpidrroEl0();
        [RuntimeImport("*", "write_tpidrro_el0")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteTpidrroEl0(ulong value);
        [RuntimeImport("*", "read_amair_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadAmairEl1();
        [RuntimeImport("*", "write_amair_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteAmairEl1(ulong value);
        [RuntimeImport("*", "read_afsr0_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadAfsr0El1();
        [RuntimeImport("*", "write_afsr0_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteAfsr0El1(ulong value);
        [RuntimeImport("*", "read_afsr1_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadAfsr1El1();
        [RuntimeImport("*", "write_afsr1_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteAfsr1El1(ulong value);
        [RuntimeImport("*", "read_par_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadParEl1();
        [RuntimeImport("*", "write_par_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteParEl1(ulong value);
        [RuntimeImport("*", "read_cntkctl_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadCntkctlEl1();
        [RuntimeImport("*", "write_cntkctl_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteCntkctlEl1(ulong value);
        [RuntimeImport("*", "read_cntv_ctl_el0")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadCntvCtlEl0();
        [RuntimeImport("*", "write_cntv_ctl_el0")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteCntvCtlEl0(ulong value);
        [RuntimeImport("*", "read_cntv_cval_el0")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadCntvCvalEl0();
        [RuntimeImport("*", "write_cntv_cval_el0")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteCntvCvalEl0(ulong value);
        [RuntimeImport("*", "read_cntvoff_el2")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadCntvoffEl2();
        [RuntimeImport("*", "write_cntvoff_el2")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteCntvoffEl2(ulong value);
        [RuntimeImport("*", "read_mdcr_el2")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadMdcrEl2();
        [RuntimeImport("*", "write_mdcr_el2")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteMdcrEl2(ulong value);
        [RuntimeImport("*", "read_cptr_el2")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadCptrEl2();
        [RuntimeImport("*", "write_cptr_el2")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteCptrEl2(ulong value);
        [RuntimeImport("*", "read_cnthctl_el2")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadCnthctlEl2();
        [RuntimeImport("*", "write_cnthctl_el2")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteCnthctlEl2(ulong value);
        [RuntimeImport("*", "read_vmpidr_el2")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadVmpidrEl2();
        // VTCR_EL2, VTTBR_EL2, HCR_EL2, CNTVOFF_EL2, VMPIDR_EL2 for the VM
        // whose vCPU comes in, in one call (boot/context.s vm_el2_load).
        [RuntimeImport("*", "vm_el2_load")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteVmControls(ulong vtcr, ulong vttbr, ulong hcr, ulong cntvoff, ulong vmpidr);
        [RuntimeImport("*", "read_vpidr_el2")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadVpidrEl2();
        [RuntimeImport("*", "write_vpidr_el2")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteVpidrEl2(ulong value);
        [RuntimeImport("*", "read_elr_el2")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadElrEl2();
        [RuntimeImport("*", "write_elr_el2")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteElrEl2(ulong value);
        [RuntimeImport("*", "read_spsr_el2")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadSpsrEl2();
        [RuntimeImport("*", "write_spsr_el2")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteSpsrEl2(ulong value);
        // ISR_EL1 read at EL2: the physical interrupts pending (I = bit 7).
        [RuntimeImport("*", "read_isr_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadIsrEl1();
        [RuntimeImport("*", "read_pmcr_el0")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadPmcrEl0();
        [RuntimeImport("*", "read_pmccntr_el0")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadPmccntrEl0();
        [RuntimeImport("*", "read_pmevcntr0_el0")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadPmevcntr0El0();
        [RuntimeImport("*", "read_pmceid0_el0")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadPmceid0El0();
        [RuntimeImport("*", "pmu_start_cycle_counter")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void StartCycleCounter();
    }

    public static class Cpu
    {
        [RuntimeImport("*", "smc_call")][MethodImpl(MethodImplOptions.InternalCall)]
        public static extern ulong SmcCall(ulong function, ulong arg1, ulong arg2, ulong arg3);

        [RuntimeImport("*", "cpu_wait_for_interrupt")][MethodImpl(MethodImplOptions.InternalCall)]
        public static extern void WaitForInterrupt();
        [RuntimeImport("*", "cpu_wait_for_event")][MethodImpl(MethodImplOptions.InternalCall)]
        public static extern void WaitForEvent();

        // Executes UDF #0 (boot/fault.S): an instruction that is undefined everywhere.
        [RuntimeImport("*", "cpu_undefined_instruction")][MethodImpl(MethodImplOptions.InternalCall)]
        public static extern void UndefinedInstruction();

        // Exception level the kernel runs at, from CurrentEL[3:2].
        public static uint CurrentEl => (uint)(SysReg.ReadCurrentEl() >> 2) & 3;
    }
}
