// What several physical CPUs need from assembly: the entry point a secondary
// CPU starts at (PSCI CPU_ON), the ticket spinlock, the per-CPU index in
// TPIDR_EL2, and the SGI that wakes another CPU.

.include "asm.inc"
.arch_extension lse

    .text

// PSCI CPU_ON(target, entry = secondary_entry, context = x0 here: the CPU's
// index, 1..MAX_CPUS-1). The firmware starts the CPU here at EL2 with its MMU
// and caches off, as at reset. It gets the same set-up the boot CPU got in
// head.s (its own stack slot, FP/SIMD untrapped, the vectors, the
// hypervisor's page tables, which the boot CPU built), then C#.
    .global secondary_entry
secondary_entry:
    mov     x19, x0
    cmp     x19, #MAX_CPUS
    b.hs    secondary_park                // a context the boot CPU never gives
    msr     tpidr_el2, x19                // per-CPU data: kernel/Smp/Cpus.cs
    mov     x0, x19
    bl      cpu_stack_top                 // (a leaf: needs no stack yet)
    mov     sp, x0
    cpu_fp_and_vectors
    bl      mmu_turn_on_el2
    mov     x0, x19
    bl      ksecondary                    // never returns
secondary_park:
    wfe
    b       secondary_park

// This CPU's index (0 = the boot CPU), set at entry.
    .global read_tpidr_el2
read_tpidr_el2:
    mrs     x0, tpidr_el2
    ret

// Ticket spinlock on one 32-bit word: bits 15:0 the ticket being served,
// bits 31:16 the next ticket to hand out (kernel/Smp/SpinLock.cs drives it).
// A CPU takes a ticket (adding 0x10000 with acquire semantics: LDADDA with
// LSE atomics, else an LDAXR/STXR loop), then waits until the served ticket
// is its own. First come, first served, so no CPU starves.
//
// ticket_take(x0 = &word, w1 = 1 when the CPU has LSE atomics) -> w0 = the
// word before: the caller's ticket in 31:16, the one being served in 15:0.
    .global ticket_take
ticket_take:
    mov     w2, #0x10000
    cbz     w1, 2f
    ldadda  w2, w0, [x0]
    ret
2:  ldaxr   w3, [x0]
    add     w4, w3, w2
    stxr    w5, w4, [x0]
    cbnz    w5, 2b
    mov     w0, w3
    ret

// ticket_wait(x0 = &word, w1 = my ticket, x2 = how many waits) -> x0 = 1 once
// the ticket is served, 0 if it was not within x2 waits. Waiting is WFE:
// LDAXRH arms the exclusive monitor on the word, and the owner's release (a
// store to it) clears the monitor, which wakes the waiter. The load-acquire
// orders everything the new owner does after the previous owner's release.
    .global ticket_wait
ticket_wait:
    sevl
1:  wfe
    ldaxrh  w3, [x0]
    cmp     w3, w1
    b.eq    2f
    subs    x2, x2, #1
    b.ne    1b
    mov     x0, #0
    ret
2:  mov     x0, #1
    ret

// spin_unlock(x0 = &word): the next ticket is served. Only the owner writes
// the low half, so a plain load and a store-release of it suffice; the
// release orders every access made under the lock before it. The DMB after
// it orders the release before the caller's read of the sleepers (a waiter
// publishes itself, then re-reads the word: one of the two sees the other).
    .global spin_unlock
spin_unlock:
    ldrh    w1, [x0]
    add     w1, w1, #1
    stlrh   w1, [x0]
    dmb     ish
    ret

// A full barrier between a waiter's "I sleep" store and its re-read of the word.
    .global barrier_dmb_ish
barrier_dmb_ish:
    dmb     ish
    ret

// ICC_SGI1R_EL1 <- x0: a software-generated interrupt to the CPUs it names
// (kernel/Arch/Gic.cs builds the value). The ISB makes it go now.
    .global write_icc_sgi1r_el1
write_icc_sgi1r_el1:
    msr     icc_sgi1r_el1, x0
    isb
    ret

// The physical address of secondary_entry, for PSCI CPU_ON (VA == PA here).
    .global read_secondary_entry
read_secondary_entry:
    adrp    x0, secondary_entry
    add     x0, x0, :lo12:secondary_entry
    ret

// ICC_HPPIR1_EL1: the highest-priority pending group-1 interrupt, without
// acknowledging it (1023: none).
    .global read_icc_hppir1_el1
read_icc_hppir1_el1:
    mrs     x0, icc_hppir1_el1
    ret
