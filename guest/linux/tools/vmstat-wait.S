// vmstat-wait KEY N: how long a /proc/vmstat counter takes to go from 0 to N.
//
// Reads /proc/vmstat once a millisecond (nanosleep, so the CPU stays with
// whoever does the work being timed). t0 is the first read that shows KEY
// above 0, t1 the first that shows it at N or more; prints t1 - t0 in ticks
// of the virtual counter (CNTVCT_EL0, 62.5 MHz on QEMU virt; under
// -icount shift=0 a tick is 16 guest instructions). Both ends are seen at most
// one period late, so the figure is good to about a millisecond either way.
//
// A shell loop around awk costs a fork, an exec and a parse per read; that
// competes for the CPU with what is being measured and, at a 10 ms period,
// blurs both ends by far more than a 1 ms period does. This costs one
// open/read/close per read. Assembled by scripts/linux-kit (no C compiler
// needed), statically linked, Linux syscalls only.
        .set    SYS_openat, 56
        .set    SYS_close, 57
        .set    SYS_read, 63
        .set    SYS_write, 64
        .set    SYS_exit, 93
        .set    SYS_nanosleep, 101
        .set    AT_FDCWD, -100
        .set    BUFSIZE, 32768

        .text
        .global _start
_start:
        ldr     x0, [sp]                // argc
        cmp     x0, #3
        b.ne    usage
        ldr     x19, [sp, #16]          // x19 = KEY
        ldr     x0, [sp, #24]
        bl      decimal
        mov     x20, x0                 // x20 = N
        mov     x21, #0                 // x21 = length of KEY
1:      ldrb    w1, [x19, x21]
        cbz     w1, 2f
        add     x21, x21, #1
        b       1b
2:      mov     x22, #0                 // x22 = t0, 0 until KEY moves

poll:   bl      read_key                // x0 = KEY's value now
        cbnz    x22, 3f
        cbz     x0, pause
        isb
        mrs     x22, cntvct_el0         // t0: the first read that saw it move
3:      cmp     x0, x20
        b.hs    done
pause:  adr     x0, period              // nanosleep(&period, NULL)
        mov     x1, #0
        mov     x8, #SYS_nanosleep
        svc     #0
        b       poll

done:   isb
        mrs     x0, cntvct_el0
        sub     x0, x0, x22             // t1 - t0
        sub     sp, sp, #32             // digits written downwards from sp + 32
        add     x1, sp, #32
        mov     x2, #10
        mov     w3, #'\n'
        strb    w3, [x1, #-1]!
4:      udiv    x4, x0, x2
        msub    x5, x4, x2, x0
        add     w5, w5, #'0'
        strb    w5, [x1, #-1]!
        mov     x0, x4
        cbnz    x0, 4b
        add     x2, sp, #32             // write(1, x1, end - x1)
        sub     x2, x2, x1
        mov     x0, #1
        mov     x8, #SYS_write
        svc     #0
        mov     x0, #0
        b       exit

usage:  mov     x0, #2                  // write(2, usage text)
        adr     x1, usage_text
        mov     x2, #(usage_end - usage_text)
        mov     x8, #SYS_write
        svc     #0
        mov     x0, #2
exit:   mov     x8, #SYS_exit
        svc     #0

// read_key: the value after "KEY " on a line of /proc/vmstat, 0 if no line
// has it (or the file cannot be read).
read_key:
        stp     x29, x30, [sp, #-16]!
        mov     x0, #AT_FDCWD           // openat(AT_FDCWD, "/proc/vmstat", O_RDONLY)
        adr     x1, path
        mov     x2, #0
        mov     x3, #0
        mov     x8, #SYS_openat
        svc     #0
        cmp     x0, #0
        b.lt    missing
        mov     x23, x0                 // x23 = fd
        ldr     x24, =buffer            // x24 = buffer, x25 = bytes in it
        mov     x25, #0
5:      mov     x0, x23                 // read until end of file or a full buffer
        add     x1, x24, x25
        mov     x2, #(BUFSIZE - 1)
        sub     x2, x2, x25
        cbz     x2, 6f
        mov     x8, #SYS_read
        svc     #0
        cmp     x0, #0
        b.le    6f
        add     x25, x25, x0
        b       5b
6:      mov     x0, x23
        mov     x8, #SYS_close
        svc     #0
        strb    wzr, [x24, x25]         // NUL after the text
        mov     x9, x24                 // x9 = start of the current line
line:   ldrb    w10, [x9]
        cbz     w10, missing
        mov     x11, #0                 // does the line start with KEY and a space?
7:      cmp     x11, x21
        b.eq    8f
        ldrb    w12, [x9, x11]
        ldrb    w13, [x19, x11]
        cmp     w12, w13
        b.ne    next
        add     x11, x11, #1
        b       7b
8:      ldrb    w12, [x9, x11]
        cmp     w12, #' '
        b.ne    next
        add     x0, x9, x11
        add     x0, x0, #1
        bl      decimal
        ldp     x29, x30, [sp], #16
        ret
next:   ldrb    w10, [x9], #1           // skip to the start of the next line
        cbz     w10, missing
        cmp     w10, #'\n'
        b.ne    next
        b       line
missing:
        mov     x0, #0
        ldp     x29, x30, [sp], #16
        ret

// decimal: the number the digits at x0 spell (up to the first non-digit).
decimal:
        mov     x1, x0
        mov     x0, #0
        mov     x3, #10
9:      ldrb    w2, [x1], #1
        sub     w2, w2, #'0'
        cmp     w2, #9
        b.hi    10f
        madd    x0, x0, x3, x2
        b       9b
10:     ret

        .align  3
period: .quad   0, 1000000              // struct timespec: 0 s, 1 ms
path:   .asciz  "/proc/vmstat"
usage_text:
        .ascii  "usage: vmstat-wait KEY N\n"
usage_end:
        .ltorg

        .bss
        .align  4
buffer: .space  BUFSIZE
