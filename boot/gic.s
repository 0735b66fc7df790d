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

// hyp_timer_arm(ticks): the EL2 timer fires `ticks` from now (HypTimer.Arm).
    .global hyp_timer_arm
hyp_timer_arm:
    msr     cnthp_tval_el2, x0
    mov     x0, #1                        // CNTHP_CTL_EL2.ENABLE, IMASK clear
    msr     cnthp_ctl_el2, x0
    isb
    ret
    .global write_cnthp_ctl_el2
write_cnthp_ctl_el2:
    msr     cnthp_ctl_el2, x0
    isb
    ret
    .global read_cnthp_cval_el2
read_cnthp_cval_el2:
    mrs     x0, cnthp_cval_el2
    ret
    .global write_cnthp_cval_el2
write_cnthp_cval_el2:
    msr     cnthp_cval_el2, x0
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
    ich_accessors ich_lr0_el2
    ich_accessors ich_lr1_el2
    ich_accessors ich_lr2_el2
    ich_accessors ich_lr3_el2
    ich_accessors icc_sre_el1

// The active priorities, all of them: ICH_AP0R<n>_EL2 and ICH_AP1R<n>_EL2 for
// n < x1 (1, 2 or 4: 5, 6 or 7 priority bits, ICH_VTR_EL2.PRIbits). A bit set
// there is a priority the guest has an interrupt active at; it masks every
// interrupt of that priority or lower, so it must never be left for the next
// VM. x0 = 8 words: AP0R0..3, then AP1R0..3.
// ich_cpu_save first turns the virtual CPU interface off (ICH_HCR_EL2 = 0)
// and reads ICH_VMCR_EL2, which it returns; then it stores the active
// priorities and leaves the hardware's at zero. (One call for what a VM
// switch saves of the CPU interface besides the list registers.)
    .global ich_cpu_save
ich_cpu_save:
    msr     ich_hcr_el2, xzr
    mrs     x4, ich_vmcr_el2
    mrs     x2, ich_ap0r0_el2
    mrs     x3, ich_ap1r0_el2
    stp     xzr, xzr, [x0, #8]        // unused words stay zero
    stp     xzr, xzr, [x0, #40]
    str     x2, [x0]
    str     x3, [x0, #32]
    msr     ich_ap0r0_el2, xzr
    msr     ich_ap1r0_el2, xzr
    cmp     x1, #1
    b.eq    1f
    mrs     x2, ich_ap0r1_el2
    mrs     x3, ich_ap1r1_el2
    str     x2, [x0, #8]
    str     x3, [x0, #40]
    msr     ich_ap0r1_el2, xzr
    msr     ich_ap1r1_el2, xzr
    cmp     x1, #2
    b.eq    1f
    mrs     x2, ich_ap0r2_el2
    mrs     x3, ich_ap1r2_el2
    stp     x2, xzr, [x0, #16]
    stp     x3, xzr, [x0, #48]
    mrs     x2, ich_ap0r3_el2
    mrs     x3, ich_ap1r3_el2
    str     x2, [x0, #24]
    str     x3, [x0, #56]
    msr     ich_ap0r2_el2, xzr
    msr     ich_ap1r2_el2, xzr
    msr     ich_ap0r3_el2, xzr
    msr     ich_ap1r3_el2, xzr
1:  mov     x0, x4
    ret
// ich_cpu_restore(words, perGroup, vmcr) writes the active priorities back
// from the same layout, then ICH_VMCR_EL2 (ICH_HCR_EL2 comes after the list
// registers, from C#).
    .global ich_cpu_restore
ich_cpu_restore:
    msr     ich_vmcr_el2, x2
    ldr     x2, [x0]
    ldr     x3, [x0, #32]
    msr     ich_ap0r0_el2, x2
    msr     ich_ap1r0_el2, x3
    cmp     x1, #1
    b.eq    1f
    ldr     x2, [x0, #8]
    ldr     x3, [x0, #40]
    msr     ich_ap0r1_el2, x2
    msr     ich_ap1r1_el2, x3
    cmp     x1, #2
    b.eq    1f
    ldp     x2, x3, [x0, #16]
    msr     ich_ap0r2_el2, x2
    msr     ich_ap0r3_el2, x3
    ldp     x2, x3, [x0, #48]
    msr     ich_ap1r2_el2, x2
    msr     ich_ap1r3_el2, x3
1:  ret

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
