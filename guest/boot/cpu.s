// What the C# guest cannot say in C#: system registers, barriers, HVC, and the
// few special instruction sequences its self-tests need.

.macro accessors reg
    .global read_\reg
read_\reg:
    mrs     x0, \reg
    ret
    .global write_\reg
write_\reg:
    msr     \reg, x0
    isb
    ret
.endm

    .text
    accessors sctlr_el1
    accessors tcr_el1
    accessors ttbr0_el1
    accessors ttbr1_el1
    accessors mair_el1
    accessors pmcr_el0
    accessors pmcntenset_el0
    accessors pmccntr_el0
    accessors cntvct_el0
    accessors currentel

// hvc_call(args*): x0-x3 from args[0..3], HVC #0, results back into args[0..3].
    .global hvc_call
hvc_call:
    mov     x9, x0
    ldp     x0, x1, [x9, #0]
    ldp     x2, x3, [x9, #16]
    hvc     #0
    stp     x0, x1, [x9, #0]
    stp     x2, x3, [x9, #16]
    ret

// smc_call(args*): the same through SMC, which the hypervisor traps (HCR_EL2.TSC).
    .global smc_call
smc_call:
    mov     x9, x0
    ldp     x0, x1, [x9, #0]
    ldp     x2, x3, [x9, #16]
    smc     #0
    stp     x0, x1, [x9, #0]
    stp     x2, x3, [x9, #16]
    ret

    .global tlb_flush_all
tlb_flush_all:
    dsb     ishst
    tlbi    vmalle1
    dsb     ish
    isb
    ret

    .global barrier_full
barrier_full:
    dsb     sy
    isb
    ret

// An access the hypervisor can only emulate by decoding the instruction
// (ISV=0): a store pair to x0 (two registers, x1 and x2).
    .global mmio_store_pair
mmio_store_pair:
    stp     w1, w2, [x0]
    ret

// A post-indexed store: str w1, [x0], #4; returns the updated x0.
    .global mmio_store_post_index
mmio_store_post_index:
    str     w1, [x0], #4
    ret

// A pre-indexed load pair: ldp w0, w1, [x0, #-8]! ; returns w0 + w1 << 32.
    .global mmio_load_pair_pre_index
mmio_load_pair_pre_index:
    ldp     w2, w3, [x0, #-8]!
    orr     x0, x2, x3, lsl #32
    ret

// A 64-bit load through x0 with a plain LDR (ISV=1 on most cores).
    .global load64
load64:
    ldr     x0, [x0]
    ret

    .global store64
store64:
    str     x1, [x0]
    ret
