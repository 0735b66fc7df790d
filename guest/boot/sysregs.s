// Every system register encoding with op0 = 3: op1 0-7, CRn 0-15, CRm 0-15,
// op2 0-7, by index = op1 << 11 | CRn << 7 | CRm << 3 | op2 (16384 of them).
// For the system-register fuzzer (guest/SysRegFuzz.cs): each table is 16384
// two-instruction entries, entered at 8 * index. The index sits in the
// instruction exactly where op1:CRn:CRm:op2 go (bits 18:5), so each entry is
// written as its instruction word: MRS x0 is 0xd5380000, MSR x1 0xd5180001.

// sysreg_read(index) -> MRS x0, S3_<op1>_C<CRn>_C<CRm>_<op2>
    .text
    .global sysreg_read
sysreg_read:
    adr     x1, 1f
    add     x1, x1, x0, lsl #3
    br      x1
1:
    .set    index, 0
    .rept   16384
    .inst   0xd5380000 | (index << 5)
    ret
    .set    index, index + 1
    .endr

// sysreg_write(index, value) -> MSR S3_<op1>_C<CRn>_C<CRm>_<op2>, x1
    .global sysreg_write
sysreg_write:
    adr     x2, 1f
    add     x2, x2, x0, lsl #3
    br      x2
1:
    .set    index, 0
    .rept   16384
    .inst   0xd5180001 | (index << 5)
    ret
    .set    index, index + 1
    .endr
