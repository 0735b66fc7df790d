// Entry of the C# test guest, at EL1 with the MMU off, x0 = its device tree.
// Same shape as the hypervisor's own entry, one level down: stack, .bss,
// FP/SIMD on (CPACR_EL1.FPEN), vectors, then C#.
    .section .text.entry, "ax"
    .global _start
_start:
    mov     x19, x0
    ldr     x1, =__stack_top
    mov     sp, x1
    ldr     x1, =__bss_start
    ldr     x2, =__bss_end
1:  cmp     x1, x2
    b.hs    2f
    stp     xzr, xzr, [x1], #16
    b       1b
2:  mov     x1, #(3 << 20)
    msr     cpacr_el1, x1
    isb
    ldr     x1, =guest_vectors
    msr     vbar_el1, x1
    isb
    ldr     x0, =guest_boot_info
    str     x19, [x0, #0]
    ldr     x1, =__heap_start
    str     x1, [x0, #8]
    ldr     x1, =__heap_end
    str     x1, [x0, #16]
    ldr     x1, =__modules_start
    str     x1, [x0, #24]
    ldr     x1, =__modules_end
    str     x1, [x0, #32]
    ldr     x1, =__page_tables
    str     x1, [x0, #40]
    ldr     x1, =__page_tables_end
    str     x1, [x0, #48]
    ldr     x1, =__image_start
    str     x1, [x0, #56]
    ldr     x1, =__image_end
    str     x1, [x0, #64]
    bl      guest_main
3:  wfi
    b       3b

    .bss
    .balign 8
    .global guest_boot_info
guest_boot_info:
    .space  80
