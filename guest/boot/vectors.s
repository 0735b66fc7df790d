// The guest's own EL1 vectors. Exceptions the guest takes (for example an
// abort the hypervisor injects) land in C#: guest_trap(frame, kind), which
// records them for the self-tests and skips the faulting instruction.
.equ GFRAME_SIZE, 288

.macro gvector kind
    .balign 0x80
    sub     sp, sp, #GFRAME_SIZE
    stp     x0, x1, [sp, #0]
    mov     x1, #\kind
    b       guest_trap_common
.endm

    .text
    .balign 0x800
    .global guest_vectors
guest_vectors:
    gvector 0
    gvector 1
    gvector 2
    gvector 3
    gvector 4
    gvector 5
    gvector 6
    gvector 7
    gvector 8
    gvector 9
    gvector 10
    gvector 11
    gvector 12
    gvector 13
    gvector 14
    gvector 15

guest_trap_common:
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
    mrs     x2, elr_el1
    stp     x30, x2, [sp, #240]
    mrs     x2, spsr_el1
    mrs     x3, esr_el1
    stp     x2, x3, [sp, #256]
    mrs     x2, far_el1
    str     x2, [sp, #272]
    mov     x0, sp
    bl      guest_trap
    ldp     x30, x2, [sp, #240]
    msr     elr_el1, x2
    ldr     x2, [sp, #256]
    msr     spsr_el1, x2
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
    add     sp, sp, #GFRAME_SIZE
    eret
