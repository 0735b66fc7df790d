// The few runtime helpers ILCompiler-generated code calls that must be
// assembly because they have a register convention of their own.
//
// Write barriers: a generational GC would record the store here. There is no
// GC, so a barrier is just the store.
//   RhpAssignRefArm64 / RhpCheckedAssignRefArm64: *x14 = x15, x14 += 8
//   RhpByRefAssignRefArm64: *x14 = *x13, x13 += 8, x14 += 8

    .text
    .global RhpAssignRefArm64
    .global RhpCheckedAssignRefArm64
RhpAssignRefArm64:
RhpCheckedAssignRefArm64:
    str     x15, [x14], #8
    ret

    .global RhpByRefAssignRefArm64
RhpByRefAssignRefArm64:
    ldr     x15, [x13], #8
    str     x15, [x14], #8
    ret

    // Stack-protector cookie that ILC-generated code may compare against.
    .data
    .balign 8
    .global __security_cookie
__security_cookie:
    .quad   0x2d6b6f6f63766871

// Interface calls that ILCompiler cannot devirtualise go through a dispatch
// cell whose first word points here (x11 = the cell). Resolving them needs the
// type's dispatch map; the kernel does not use interface dispatch (abstract
// base classes give the same shape with plain vtable calls), so reaching this
// is a bug and says so.
    .text
    .global RhpInitialDynamicInterfaceDispatch
RhpInitialDynamicInterfaceDispatch:
    b       rt_interface_dispatch
