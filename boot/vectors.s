// EL2 exception vectors: 16 entries of 128 bytes, 2 KiB aligned.
//
// Every entry saves the register frame and calls the one C# entry point,
// hv_trap(frame, kind), which returns the frame to go back to. kind is the
// entry number:
//   0-3   current EL with SP_EL0     (sync, irq, fiq, serror)
//   4-7   current EL with SP_EL2     (a fault in the hypervisor itself)
//   8-11  lower EL, AArch64          (a guest: this is where VM exits arrive)
//   12-15 lower EL, AArch32          (never expected: guests are AArch64 only)
// When C# returns, that frame (possibly changed by the handler) is restored
// and ERET goes back to wherever its ELR_EL2/SPSR_EL2 now point.
//
// The world switch is this path. While a guest runs, SP_EL2 points at its
// vCPU's register frame, which is part of the vCPU's context (kernel/Vm/
// VcpuContext.cs): an exit saves the guest's general registers, PC
// (ELR_EL2), PSTATE (SPSR_EL2) and syndrome straight into that context, then
// moves to the CPU's own stack (the frame says where it starts) for C#. A
// switch to another vCPU therefore copies no frame: C# returns the next
// vCPU's frame and the restore reads from there.
//
// Of the guest's FP/SIMD registers only q16/q17 need saving here: they are
// all the compiled C# code uses (checked at build time); the rest, like its
// EL1 system registers and SP_EL0 (the hypervisor runs on SP_EL2), stay in
// the CPU because the hypervisor never touches them. They only move when
// another VM gets the CPU (boot/context.s).

.include "asm.inc"

// From a guest, sp is its frame already; from EL2 itself, the frame is
// pushed on the stack in use.
.macro vector kind
    .balign 0x80
    .if \kind < 8
    sub     sp, sp, #FRAME_SIZE
    .endif
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

.macro restore_gprs
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
.endm

// An exception in the hypervisor itself: save, report (panic never
// returns), and should a handler ever return, pop the frame and go back.
hyp_trap:
    save_gprs_and_syndrome
    mov     x0, sp
    bl      hv_trap
    restore_gprs
    add     sp, sp, #FRAME_SIZE
    eret

// A VM exit: sp is the vCPU's frame. Also save the two SIMD registers C#
// code may use, then run C# on this CPU's stack.
guest_exit:
    save_gprs_and_syndrome
    stp     q16, q17, [sp, #FRAME_Q16]
    mov     x0, sp
    ldr     x2, [sp, #FRAME_HV_STACK]
    mov     sp, x2
    bl      hv_trap
    mov     sp, x0                         // the frame of the vCPU to enter
    // fall through

// Enter (or re-enter) the guest whose frame is at sp; SP_EL2 stays there,
// so the guest's next exit saves into the same frame. hv_enter_guest jumps
// here for a CPU's first entry.
guest_resume:
    ldp     q16, q17, [sp, #FRAME_Q16]
    restore_gprs
    eret

// hv_enter_guest(frame): the loaded vCPU's frame, filled in by C#. The
// stack below is dropped (C# starts afresh from its top at the next exit).
// Never returns.
    .global hv_enter_guest
hv_enter_guest:
    mov     sp, x0
    b       guest_resume

// cpu_stack_top(index): where CPU `index`'s EL2 stack starts (it grows
// down): the end of its slot in __stacks.
    .global cpu_stack_top
cpu_stack_top:
    add     x1, x0, #1
    mov     x2, #CPU_STACK_SIZE
    mul     x1, x1, x2
    adrp    x0, __stacks
    add     x0, x0, :lo12:__stacks
    add     x0, x0, x1
    ret
