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

    .text
    .global el1_save
el1_save:
    el1_registers save_pair
    ret

    .global el1_restore
el1_restore:
    el1_registers restore_pair
    isb
    ret

// FpState: q0-q31 (512 bytes), then FPSR, FPCR.
    .global fp_save
fp_save:
    stp     q0, q1, [x0, #0]
    stp     q2, q3, [x0, #32]
    stp     q4, q5, [x0, #64]
    stp     q6, q7, [x0, #96]
    stp     q8, q9, [x0, #128]
    stp     q10, q11, [x0, #160]
    stp     q12, q13, [x0, #192]
    stp     q14, q15, [x0, #224]
    stp     q16, q17, [x0, #256]
    stp     q18, q19, [x0, #288]
    stp     q20, q21, [x0, #320]
    stp     q22, q23, [x0, #352]
    stp     q24, q25, [x0, #384]
    stp     q26, q27, [x0, #416]
    stp     q28, q29, [x0, #448]
    stp     q30, q31, [x0, #480]
    mrs     x1, fpsr
    mrs     x2, fpcr
    add     x0, x0, #512
    stp     x1, x2, [x0]
    ret

    .global fp_restore
fp_restore:
    ldp     q0, q1, [x0, #0]
    ldp     q2, q3, [x0, #32]
    ldp     q4, q5, [x0, #64]
    ldp     q6, q7, [x0, #96]
    ldp     q8, q9, [x0, #128]
    ldp     q10, q11, [x0, #160]
    ldp     q12, q13, [x0, #192]
    ldp     q14, q15, [x0, #224]
    ldp     q16, q17, [x0, #256]
    ldp     q18, q19, [x0, #288]
    ldp     q20, q21, [x0, #320]
    ldp     q22, q23, [x0, #352]
    ldp     q24, q25, [x0, #384]
    ldp     q26, q27, [x0, #416]
    ldp     q28, q29, [x0, #448]
    ldp     q30, q31, [x0, #480]
    add     x0, x0, #512
    ldp     x1, x2, [x0]
    msr     fpsr, x1
    msr     fpcr, x2
    ret

// frame_copy(dst, src): one guest register frame (FRAME_SIZE bytes, 16-byte
// aligned): the live frame on the EL2 stack to or from a vCPU's saved context
// on every VM switch. 32 bytes a step through q16/q17, the hypervisor's own
// SIMD scratch registers (the guest's q16/q17 are in the frame by then);
// unrolled, no loop counter: a switch copies two frames.
.include "asm.inc"
.if FRAME_SIZE != 320
.error "frame_copy is unrolled for a 320-byte frame"
.endif
    .global frame_copy
frame_copy:
    .irp off, 0, 32, 64, 96, 128, 160, 192, 224, 256, 288
    ldp     q16, q17, [x1, #\off]
    stp     q16, q17, [x0, #\off]
    .endr
    ret
