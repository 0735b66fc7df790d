// Moving a vCPU's state in and out of the CPU when another VM gets it. Only
// here, not on every exit: the hypervisor itself never uses EL1 or the SIMD
// registers other than q16/q17, so they stay in the CPU while it handles exits.

// El1State (kernel/Vm/VcpuState.cs), one 8-byte slot each, in this order,
// two registers to a line so each pair moves with one STP or LDP.
.macro el1_registers op
    \op sctlr_el1, tcr_el1, 0
    \op ttbr0_el1, ttbr1_el1, 16
    \op mair_el1, amair_el1, 32
    \op vbar_el1, contextidr_el1, 48
    \op tpidr_el1, tpidr_el0, 64
    \op tpidrro_el0, sp_el1, 80
    \op elr_el1, spsr_el1, 96
    \op esr_el1, far_el1, 112
    \op afsr0_el1, afsr1_el1, 128
    \op par_el1, cpacr_el1, 144
    \op cntkctl_el1, cntv_ctl_el0, 160
    \op cntv_cval_el0, csselr_el1, 176
    \op mdscr_el1, sp_el0, 192
.endm

.macro save_pair a, b, off
    mrs     x1, \a
    mrs     x2, \b
    stp     x1, x2, [x0, #\off]
.endm

.macro restore_pair a, b, off
    ldp     x1, x2, [x0, #\off]
    msr     \a, x1
    msr     \b, x2
.endm

.include "asm.inc"

// FpState (kernel/Vm/VcpuState.cs): q0-q31 (512 bytes), then FPSR, FPCR.
// q16/q17 are skipped: every exit has saved the guest's pair in its frame
// already (boot/vectors.s), and the CPU's pair holds the hypervisor's values
// by now. \base is left pointing 512 bytes further on.
.macro fp_registers op, base
    \op    q0, q1, [\base, #0]
    \op    q2, q3, [\base, #32]
    \op    q4, q5, [\base, #64]
    \op    q6, q7, [\base, #96]
    \op    q8, q9, [\base, #128]
    \op    q10, q11, [\base, #160]
    \op    q12, q13, [\base, #192]
    \op    q14, q15, [\base, #224]
    \op    q18, q19, [\base, #288]
    \op    q20, q21, [\base, #320]
    \op    q22, q23, [\base, #352]
    \op    q24, q25, [\base, #384]
    \op    q26, q27, [\base, #416]
    \op    q28, q29, [\base, #448]
    \op    q30, q31, [\base, #480]
    add     \base, \base, #512
.endm

    .text
// vcpu_save(el1, fp): the guest state still in the CPU into a vCPU's
// context (VcpuContext.Save). Its general registers are there already: the
// exit saved them into the context's frame.
    .global vcpu_save
vcpu_save:
    mov     x3, x1                         // FP state
    el1_registers save_pair
    fp_registers stp, x3
    mrs     x1, fpsr
    mrs     x2, fpcr
    stp     x1, x2, [x3]
    ret

// vcpu_restore(el1, fp): a vCPU's context into the CPU (VcpuContext.Restore);
// the exit path's return then loads its frame, q16/q17 included.
    .global vcpu_restore
vcpu_restore:
    mov     x3, x1                         // FP state
    el1_registers restore_pair
    isb
    fp_registers ldp, x3
    ldp     x1, x2, [x3]
    msr     fpsr, x1
    msr     fpcr, x2
    ret

// vm_el2_load(vtcr, vttbr, hcr, cntvoff, vmpidr): the EL2 controls of the VM
// whose vCPU comes in (Scheduler.Load), in one call rather than five. The
// ERET into the guest is what synchronizes them.
    .global vm_el2_load
vm_el2_load:
    msr     vtcr_el2, x0
    msr     vttbr_el2, x1
    msr     hcr_el2, x2
    msr     cntvoff_el2, x3
    msr     vmpidr_el2, x4
    ret
