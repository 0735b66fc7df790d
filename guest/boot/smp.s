// A secondary vCPU of the C# test guest, started by PSCI CPU_ON at
// guest_secondary_start with x0 = its block (guest/SmpTests.cs, Block):
//   [0] stack top  [8] MAIR  [16] TCR  [24] TTBR0  [32] SCTLR  (from vCPU 0)
// It comes up as a CPU out of reset: MMU off, so it loads vCPU 0's
// translation registers (the same tables) before any C# runs.
    .text
    .global guest_secondary_start
guest_secondary_start:
    mov     x19, x0
    ldr     x1, [x19, #0]
    mov     sp, x1
    mov     x1, #(3 << 20)
    msr     cpacr_el1, x1
    isb
    ldr     x1, =guest_vectors
    msr     vbar_el1, x1
    ldr     x1, [x19, #8]
    msr     mair_el1, x1
    ldr     x1, [x19, #16]
    msr     tcr_el1, x1
    ldr     x1, [x19, #24]
    msr     ttbr0_el1, x1
    isb
    tlbi    vmalle1
    dsb     nsh
    isb
    ldr     x1, [x19, #32]
    msr     sctlr_el1, x1
    isb
    mov     x0, x19
    bl      guest_secondary
1:  wfi
    b       1b

// The address PSCI CPU_ON is given.
    .global read_secondary_start
read_secondary_start:
    ldr     x0, =guest_secondary_start
    ret

    .global read_mpidr_el1
read_mpidr_el1:
    mrs     x0, mpidr_el1
    ret

// A load and a store other vCPUs' writes and reads are ordered with.
    .global load_acquire64
load_acquire64:
    ldar    x0, [x0]
    ret

    .global store_release64
store_release64:
    stlr    x1, [x0]
    ret
