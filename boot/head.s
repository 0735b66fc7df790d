// Entry of the hypervisor image.
//
// The image is an arm64 Linux-format Image, so QEMU (or U-Boot `booti`, or any
// firmware that boots Linux) loads it at RAM base + text_offset and jumps to its
// first byte at EL2 with x0 = physical address of the device tree. From here we:
//   1. park every CPU but the boot CPU (secondaries are started later by PSCI
//      CPU_ON at secondary_entry, boot/smp.s),
//   2. refuse to go on unless we really are at EL2,
//   3. give the CPU its stack, clear .bss, enable FP/SIMD (ILC code uses q regs),
//   4. install the EL2 exception vectors,
//   5. turn on the EL2 stage-1 MMU with an identity map (see mmu.S),
//   6. call the C# kernel: kmain(&boot_info).

.include "asm.inc"

    .section .text.head, "ax"
    .global _start
_start:
    // Image header (Documentation/arch/arm64/booting.rst in Linux).
    b       primary_entry            // code0: branch past the header
    .long   0                        // code1
    .quad   0x200000                 // text_offset: loaded at RAM base + 2 MiB
    .quad   __image_size             // image_size, including .bss
    .quad   0x2                      // flags: little-endian, 4 KiB pages, 2 MiB-aligned base
    .quad   0, 0, 0                  // res2-res4
    .ascii  "ARM\x64"                // magic
    .long   0                        // res5: no PE header

primary_entry:
    mov     x19, x0                  // keep the DTB pointer

    // Only CPU with MPIDR affinity 0 boots; any other CPU that arrives here waits.
    mrs     x1, mpidr_el1
    and     x1, x1, #0xffffff
    cbnz    x1, park

    // CurrentEL[3:2] must be 2.
    mrs     x1, CurrentEL
    lsr     x1, x1, #2
    cmp     x1, #2
    b.ne    not_el2

    // This is CPU 0 (kernel/Smp/Cpus.cs finds per-CPU data by TPIDR_EL2,
    // which resets to an UNKNOWN value).
    msr     tpidr_el2, xzr

    // Stack for CPU 0: its slot in __stacks (boot/vectors.s, a leaf: it
    // needs no stack yet).
    mov     x0, #0
    bl      cpu_stack_top
    mov     sp, x0

    // Clear .bss (page aligned at both ends by linker.ld).
    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
1:  cmp     x1, x2
    b.hs    2f
    stp     xzr, xzr, [x1], #16
    b       1b
2:
    cpu_fp_and_vectors

    bl      mmu_enable_el2

    // boot_info for C#: DTB, image bounds, heap and __modules ranges.
    adrp    x0, boot_info
    add     x0, x0, :lo12:boot_info
    str     x19, [x0, #0]
    ldr     x1, =__image_start
    str     x1, [x0, #8]
    ldr     x1, =__image_end
    str     x1, [x0, #16]
    ldr     x1, =__heap_start
    str     x1, [x0, #24]
    ldr     x1, =__heap_end
    str     x1, [x0, #32]
    ldr     x1, =__modules_start
    str     x1, [x0, #40]
    ldr     x1, =__modules_end
    str     x1, [x0, #48]
    mrs     x1, CurrentEL
    lsr     x1, x1, #2
    str     x1, [x0, #56]
    bl      kmain
    // kmain powers the machine off; if it ever returns, stop here.
    b       park

// Not at EL2: say so on the PL011 QEMU virt has at 0x09000000 (the device tree
// is not read yet, so the address is the platform default) and stop. At EL1
// (QEMU without virtualization=on) PSCI is reached with HVC: power off so the
// run ends instead of hanging.
not_el2:
    adr     x1, not_el2_msg
    mov     x2, #0x09000000
3:  ldrb    w3, [x1], #1
    cbz     w3, 4f
    str     w3, [x2]
    b       3b
4:  mrs     x1, CurrentEL
    cmp     x1, #(1 << 2)
    b.ne    park
    ldr     x0, =0x84000008          // PSCI SYSTEM_OFF
    hvc     #0
    b       park

park:
    wfe
    b       park

not_el2_msg:
    .asciz  "[hv] FATAL: not entered at EL2 (need -M virt,virtualization=on); stopping\n"
    .balign 4

    .bss
    .balign 8
    .global boot_info
boot_info:
    .space  64
