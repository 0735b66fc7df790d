// GICv3 CPU interface and EL2 timer registers, for kernel/Arch/Gic.cs and
// kernel/Arch/HypTimer.cs (system registers; the distributor and
// redistributor are memory-mapped and programmed from C#).

    .text
    .global read_icc_sre_el2
read_icc_sre_el2:
    mrs     x0, icc_sre_el2
    ret
    .global write_icc_sre_el2
write_icc_sre_el2:
    msr     icc_sre_el2, x0
    isb
    ret
    .global write_icc_pmr_el1
write_icc_pmr_el1:
    msr     icc_pmr_el1, x0
    isb
    ret
    .global write_icc_bpr1_el1
write_icc_bpr1_el1:
    msr     icc_bpr1_el1, x0
    isb
    ret
    .global write_icc_ctlr_el1
write_icc_ctlr_el1:
    msr     icc_ctlr_el1, x0
    isb
    ret
    .global write_icc_igrpen1_el1
write_icc_igrpen1_el1:
    msr     icc_igrpen1_el1, x0
    isb
    ret
    // Acknowledge: the INTID of the highest-priority pending interrupt.
    .global read_icc_iar1_el1
read_icc_iar1_el1:
    mrs     x0, icc_iar1_el1
    dsb     sy
    ret
    .global write_icc_eoir1_el1
write_icc_eoir1_el1:
    msr     icc_eoir1_el1, x0
    isb
    ret

    .global write_cnthp_tval_el2
write_cnthp_tval_el2:
    msr     cnthp_tval_el2, x0
    isb
    ret
    .global write_cnthp_ctl_el2
write_cnthp_ctl_el2:
    msr     cnthp_ctl_el2, x0
    isb
    ret
    .global read_cnthp_ctl_el2
read_cnthp_ctl_el2:
    mrs     x0, cnthp_ctl_el2
    ret

// The virtual CPU interface (GICv3 ICH_* registers), for kernel/Vm/VgicCpu.cs.
// A guest's ICC_* accesses go to the virtual interface these describe; the
// list registers hold the interrupts the hypervisor presents to it.
.macro ich_accessors reg
    .global read_\reg
read_\reg:
    mrs     x0, \reg
    ret
    .global write_\reg
write_\reg:
    msr     \reg, x0
    ret
.endm
    ich_accessors ich_hcr_el2
    ich_accessors ich_vmcr_el2
    ich_accessors ich_ap0r0_el2
    ich_accessors ich_ap1r0_el2
    ich_accessors ich_lr0_el2
    ich_accessors ich_lr1_el2
    ich_accessors ich_lr2_el2
    ich_accessors ich_lr3_el2
    ich_accessors icc_sre_el1
    .global read_ich_vtr_el2
read_ich_vtr_el2:
    mrs     x0, ich_vtr_el2
    ret
    .global read_ich_misr_el2
read_ich_misr_el2:
    mrs     x0, ich_misr_el2
    ret
    .global read_ich_elrsr_el2
read_ich_elrsr_el2:
    mrs     x0, ich_elrsr_el2
    ret
