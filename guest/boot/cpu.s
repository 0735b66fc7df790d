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
    accessors pmccfiltr_el0
    accessors cntvct_el0
    accessors pmevcntr0_el0
    accessors id_aa64dfr0_el1
    accessors id_aa64pfr0_el1
    accessors id_aa64pfr1_el1
    accessors cpacr_el1
    accessors id_aa64isar1_el1
    accessors currentel
    accessors cntp_ctl_el0
    accessors cntv_ctl_el0
    accessors cntp_cval_el0
    accessors cntp_tval_el0
    .global read_cntpct_el0
read_cntpct_el0:
    isb
    mrs     x0, cntpct_el0
    ret
    accessors cntfrq_el0
    accessors cntv_cval_el0

// GICv3 CPU-interface registers by encoding (the guest's ICC_* reach the
// virtual interface, ICV_*, with HCR_EL2.IMO set).
.macro encoded_accessors name, encoding
    .global read_\name
read_\name:
    mrs     x0, \encoding
    ret
    .global write_\name
write_\name:
    msr     \encoding, x0
    isb
    ret
.endm
    encoded_accessors icc_iar1_el1, S3_0_C12_C12_0
    encoded_accessors icc_eoir1_el1, S3_0_C12_C12_1
    encoded_accessors icc_pmr_el1, S3_0_C4_C6_0
    encoded_accessors icc_igrpen1_el1, S3_0_C12_C12_7
    encoded_accessors icc_ap1r0_el1, S3_0_C12_C9_0

// Debug registers: breakpoint/watchpoint 0, MDSCR_EL1, the OS lock.
    accessors dbgbvr0_el1
    accessors dbgbcr0_el1
    accessors dbgwvr0_el1
    accessors dbgwcr0_el1
    accessors mdscr_el1
    .global write_oslar_el1
write_oslar_el1:
    msr     oslar_el1, x0
    isb
    ret
    .global read_oslsr_el1
read_oslsr_el1:
    mrs     x0, oslsr_el1
    ret

// Instructions of features the hypervisor hides (kernel/Arch/IdRegisters.cs),
// by encoding so any assembler takes them: each must be an undefined
// instruction for the guest, whether the CPU lacks the feature or has it
// and the hypervisor traps it.
    .global try_sve_rdvl
try_sve_rdvl:
    .inst   0x04bf5020                     // RDVL x0, #1
    ret
    .global try_sme_rdsvl
try_sme_rdsvl:
    .inst   0x04bf5820                     // RDSVL x0, #1
    ret
    .global try_pauth_key
try_pauth_key:
    mrs     x0, S3_0_C2_C1_0               // APIAKeyLo_EL1
    ret
    .global try_mte_gcr
try_mte_gcr:
    mrs     x0, S3_0_C1_C0_6               // GCR_EL1
    ret
    .global try_ras_record
try_ras_record:
    mrs     x0, S3_0_C5_C3_0               // ERRIDR_EL1
    ret
    .global try_lor_control
try_lor_control:
    mrs     x0, S3_0_C10_C4_3              // LORC_EL1
    ret
    .global try_amu_counter
try_amu_counter:
    mrs     x0, S3_3_C13_C2_0              // AMEVCNTR00_EL0
    ret

// IRQs masked at PSTATE (a pending interrupt still ends a WFI); one WFI.
    .global irq_mask
irq_mask:
    msr     daifset, #2
    ret
    .global wait_for_interrupt
    .global cpu_wfi
wait_for_interrupt:
cpu_wfi:
    dsb     sy
    wfi
    ret

// The SGI generation registers, write-only: ICC_SGI1R_EL1, ICC_ASGI1R_EL1,
// ICC_SGI0R_EL1 (by encoding; they trap to the hypervisor, HCR_EL2.IMO).
    .global write_icc_sgi1r_el1
write_icc_sgi1r_el1:
    msr     S3_0_C12_C11_5, x0
    isb
    ret
    .global write_icc_asgi1r_el1
write_icc_asgi1r_el1:
    msr     S3_0_C12_C11_6, x0
    isb
    ret
    .global write_icc_sgi0r_el1
write_icc_sgi0r_el1:
    msr     S3_0_C12_C11_7, x0
    isb
    ret

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

// One page, every ASID: after this guest changed one of its own entries.
    .global tlb_flush_va
tlb_flush_va:
    ubfx    x0, x0, #12, #44
    dsb     ishst
    tlbi    vaae1is, x0
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

// load32(address): a plain LDR (Mmio.Read32 is a load-acquire, which the CPU
// itself faults when unaligned; the MMIO fuzzer wants unaligned loads to
// reach the hypervisor).
    .global load32
load32:
    ldr     w0, [x0]
    ret

    .global store64
store64:
    str     x1, [x0]
    ret

// A SIMD store: no general-purpose register to decode, so the hypervisor
// cannot emulate it against a device and must inject an abort.
    .global mmio_store_simd
mmio_store_simd:
    fmov    d0, x1
    str     q0, [x0]
    ret


    .global cpu_undefined
cpu_undefined:
    udf     #0
    ret

    .global write_vbar_el1
write_vbar_el1:
    msr     vbar_el1, x0
    isb
    ret

// The SIMD-register tests. Each register vN gets (0x101 * (N + 1) + seed) in
// both halves; after the VM exits under test, every register that no longer
// holds its value sets bit N of the result (0: the world switch kept them all).
// d8-d15 are callee-saved under AAPCS64: saved around the test.
.macro simd_fill_one n, seed
    mov     x2, #(0x101 * (\n + 1))
    add     x2, x2, \seed
    dup     v\n\().2d, x2
.endm

.macro simd_check_one n, seed
    mov     x2, #(0x101 * (\n + 1))
    add     x2, x2, \seed
    mov     x3, v\n\().d[1]
    cmp     x2, x3
    mov     x3, v\n\().d[0]
    ccmp    x2, x3, #0, eq
    cset    x3, ne
    lsl     x3, x3, #\n
    orr     x0, x0, x3
.endm

.macro simd_fill seed
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    simd_fill_one \n, \seed
    .endr
.endm

.macro simd_check seed
    mov     x0, #0
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    simd_check_one \n, \seed
    .endr
.endm

.macro save_callee_simd
    stp     d8, d9, [sp, #-64]!
    stp     d10, d11, [sp, #16]
    stp     d12, d13, [sp, #32]
    stp     d14, d15, [sp, #48]
.endm

.macro restore_callee_simd
    ldp     d10, d11, [sp, #16]
    ldp     d12, d13, [sp, #32]
    ldp     d14, d15, [sp, #48]
    ldp     d8, d9, [sp], #64
.endm

// fp_survives_exits(uart): a hypercall and an MMIO write (two VM exits).
    .global fp_survives_exits
fp_survives_exits:
    save_callee_simd
    mov     x9, x0
    simd_fill xzr
    ldr     x0, =0xC6000000          // the null hypercall
    hvc     #0
    mov     w1, #'.'
    str     w1, [x9]                 // an MMIO exit
    simd_check xzr
    restore_callee_simd
    ret

// fp_survives_switches(seed, rounds): yields the CPU `rounds` times (the Yield
// hypercall, 0xC600000C); another VM, with other values in its SIMD
// registers, runs in between.
    .global fp_survives_switches
fp_survives_switches:
    save_callee_simd
    mov     x9, x0
    simd_fill x9
    mov     x10, x1
1:  ldr     x0, =0xC600000C
    hvc     #0
    subs    x10, x10, #1
    b.ne    1b
    simd_check x9
    restore_callee_simd
    ret
