// The hypervisor's own address space (EL2 stage 1): an identity map, VA == PA.
//
// Why have one at all? With the MMU off every access is Device memory: no
// caches, and unaligned accesses or DC ZVA fault on real hardware. So the MMU
// goes on before any C# runs.
//
// Layout (TCR_EL2.T0SZ = 32: a 4 GiB space, 4 KiB granule, walk starts at level 1):
//   0x0000_0000 - 0x001F_FFFF  unmapped, so a null dereference faults
//   0x0020_0000 - 0x3FFF_FFFF  Device-nGnRE, never executable (GIC, UART, virtio)
//   0x4000_0000 - 0xFFFF_FFFF  Normal write-back cacheable (RAM of QEMU virt)
// The first GiB is a level-2 table of 2 MiB blocks; the other three are 1 GiB
// blocks straight from level 1.

.include "asm.inc"

// MAIR_EL2 attribute indices used in descriptors.
.equ ATTR_DEVICE_nGnRE,  1
.equ ATTR_NORMAL_WB,     2
.equ MAIR_VALUE,         0xff0400      // idx0 Device-nGnRnE, idx1 Device-nGnRE, idx2 Normal WB RA/WA

.equ DESC_TABLE,         0x3
.equ DESC_BLOCK,         0x1
.equ DESC_AF,            (1 << 10)
.equ DESC_SH_INNER,      (3 << 8)
.equ DESC_XN,            (1 << 54)

    .text
    .global mmu_enable_el2
mmu_enable_el2:
    adrp    x0, el2_l1_table
    add     x0, x0, :lo12:el2_l1_table
    adrp    x1, el2_l2_table_low
    add     x1, x1, :lo12:el2_l2_table_low

    // L1[0] -> level-2 table for the first GiB.
    orr     x2, x1, #DESC_TABLE
    str     x2, [x0]

    // L2 entries 1..511: device blocks (entry 0 stays invalid: the null guard).
    ldr     x3, =(DESC_BLOCK | DESC_AF | (ATTR_DEVICE_nGnRE << 2) | DESC_XN)
    mov     x4, #1
1:  lsl     x5, x4, #21
    orr     x5, x5, x3
    str     x5, [x1, x4, lsl #3]
    add     x4, x4, #1
    cmp     x4, #512
    b.lo    1b

    // L1[1..3]: 1 GiB normal memory blocks.
    ldr     x3, =(DESC_BLOCK | DESC_AF | DESC_SH_INNER | (ATTR_NORMAL_WB << 2))
    mov     x4, #1
2:  lsl     x5, x4, #30
    orr     x5, x5, x3
    str     x5, [x0, x4, lsl #3]
    add     x4, x4, #1
    cmp     x4, #4
    b.lo    2b

    dsb     ishst
    // fall through: the boot CPU turns its MMU on like every other CPU

// Every CPU, once the tables above exist: attributes, translation control,
// the table base, then SCTLR_EL2. The boot CPU builds the tables first (and
// they never change); a secondary comes here straight from secondary_entry.
    .global mmu_turn_on_el2
mmu_turn_on_el2:
    adrp    x0, el2_l1_table
    add     x0, x0, :lo12:el2_l1_table
    ldr     x1, =MAIR_VALUE
    msr     mair_el2, x1

    // TCR_EL2: T0SZ=32, IRGN0/ORGN0 = write-back, SH0 = inner shareable,
    // TG0 = 4 KiB, PS = the CPU's physical address size, RES1 bits 31 and 23.
    mrs     x2, id_aa64mmfr0_el1
    and     x2, x2, #0x7
    ldr     x1, =((1 << 31) | (1 << 23) | (3 << 12) | (1 << 10) | (1 << 8) | 32)
    orr     x1, x1, x2, lsl #16
    msr     tcr_el2, x1

    msr     ttbr0_el2, x0
    isb
    tlbi    alle2
    dsb     ish
    isb

    // SCTLR_EL2: RES1 bits, plus M (MMU), C (data cache), I (instruction cache),
    // SA (stack alignment check).
    ldr     x1, =(0x30c50830 | (1 << 0) | (1 << 2) | (1 << 3) | (1 << 12))
    msr     sctlr_el2, x1
    isb
    ret

    .bss
    .balign 4096
el2_l1_table:
    .space  4096
el2_l2_table_low:
    .space  4096
