// EL2 exception vectors: 16 entries of 128 bytes, 2 KiB aligned.
//
// Every entry saves the register frame on the EL2 stack and calls the one C#
// entry point, hv_trap(frame, kind). kind is the entry number:
//   0-3   current EL with SP_EL0     (sync, irq, fiq, serror)
//   4-7   current EL with SP_EL2     (a fault in the hypervisor itself)
//   8-11  lower EL, AArch64          (a guest: this is where VM exits arrive)
//   12-15 lower EL, AArch32          (never expected: guests are AArch64 only)
// When C# returns, the frame (possibly changed by the handler) is restored and
// ERET goes back to wherever ELR_EL2/SPSR_EL2 now point.
//
// The world switch is this path. A guest's general registers, PC (ELR_EL2) and
// PSTATE (SPSR_EL2) live in the frame while the hypervisor runs. Of its FP/SIMD
// registers only q16/q17 need saving here: they are all the compiled C# code
// uses (checked at build time); the rest, like its EL1 system registers and
// SP_EL0 (the hypervisor runs on SP_EL2), stay in the CPU because the
// hypervisor never touches them. They only move when another VM gets the CPU.

.include "asm.inc"

.macro vector kind
    .balign 0x80
    sub     sp, sp, #FRAME_SIZE
    stp     x0, x1, [sp, #0]
    mov     x1, #\kind
    .if \kind >= 8
    b       guest_exit
    .else
    b       hyp_trap
    .endif
.endm

    .text
    .balign 0x800
    .global hv_vectors
hv_vectors:
    vector 0
    vector 1
    vector 2
    vector 3
    vector 4
    vector 5
    vector 6
    vector 7
    vector 8
    vector 9
    vector 10
    vector 11
    vector 12
    vector 13
    vector 14
    vector 15

.macro save_gprs_and_syndrome
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    mrs     x2, elr_el2
    stp     x30, x2, [sp, #240]
    mrs     x2, spsr_el2
    mrs     x3, esr_el2
    stp     x2, x3, [sp, #FRAME_SPSR]
    mrs     x2, far_el2
    mrs     x3, hpfar_el2
    stp     x2, x3, [sp, #FRAME_FAR]
.endm

// An exception in the hypervisor itself: save, report, (panic never returns).
hyp_trap:
    save_gprs_and_syndrome
    mov     x0, sp
    bl      hv_trap
    b       restore_gprs_and_eret

// A VM exit: also save the two SIMD registers C# code may use.
guest_exit:
    save_gprs_and_syndrome
    stp     q16, q17, [sp, #FRAME_Q16]
    mov     x0, sp
    bl      hv_trap
    // fall through

// Enter (or re-enter) the guest whose frame is at sp. hv_enter_guest jumps
// here with sp set to a frame C# filled in, for a vCPU's first entry.
guest_resume:
    ldp     q16, q17, [sp, #FRAME_Q16]

restore_gprs_and_eret:
    ldp     x30, x2, [sp, #240]
    msr     elr_el2, x2
    ldr     x2, [sp, #FRAME_SPSR]
    msr     spsr_el2, x2
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    ldp     x0, x1, [sp, #0]
    add     sp, sp, #FRAME_SIZE
    eret

// hv_enter_guest(frame): the frame sits at the top of this CPU's EL2 stack
// (stack top - FRAME_SIZE), filled in by C#. Drop everything below it and
// leave through the same restore path a VM exit returns through. Never returns.
    .global hv_enter_guest
hv_enter_guest:
    mov     sp, x0
    b       guest_resume

// Where this CPU's guest frame lives: the top of its EL2 stack, slot
// TPIDR_EL2 (its index) of __stacks.
    .global hv_guest_frame
hv_guest_frame:
    mrs     x1, tpidr_el2
    add     x1, x1, #1
    mov     x2, #CPU_STACK_SIZE
    mul     x1, x1, x2
    adrp    x0, __stacks
    add     x0, x0, :lo12:__stacks
    add     x0, x0, x1
    sub     x0, x0, #FRAME_SIZE
    ret
