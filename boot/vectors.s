// EL2 exception vectors: 16 entries of 128 bytes, 2 KiB aligned.
//
// Every entry saves the whole register frame on the EL2 stack and calls the one
// C# entry point, hv_trap(frame, kind). kind is the entry number:
//   0-3   current EL with SP_EL0     (sync, irq, fiq, serror)
//   4-7   current EL with SP_EL2     (a fault in the hypervisor itself)
//   8-11  lower EL, AArch64          (a guest: this is where VM exits arrive)
//   12-15 lower EL, AArch32          (never expected: guests are AArch64 only)
// When C# returns, the frame (possibly changed by the handler) is restored and
// ERET goes back to wherever ELR_EL2/SPSR_EL2 now point.

.include "asm.inc"

.macro vector kind
    .balign 0x80
    sub     sp, sp, #FRAME_SIZE
    stp     x0, x1, [sp, #0]
    mov     x1, #\kind
    b       trap_common
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

trap_common:
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
    str     x30, [sp, #240]
    mrs     x2, elr_el2
    mrs     x3, spsr_el2
    stp     x2, x3, [sp, #FRAME_ELR]
    mrs     x2, esr_el2
    mrs     x3, far_el2
    stp     x2, x3, [sp, #FRAME_ESR]
    mrs     x2, hpfar_el2
    str     x2, [sp, #FRAME_HPFAR]

    mov     x0, sp
    bl      hv_trap

    ldp     x2, x3, [sp, #FRAME_ELR]
    msr     elr_el2, x2
    msr     spsr_el2, x3
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
    ldr     x30, [sp, #240]
    ldp     x0, x1, [sp, #0]
    add     sp, sp, #FRAME_SIZE
    eret
