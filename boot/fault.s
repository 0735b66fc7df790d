// Deliberate faults, used by the `fault=` boot argument to show the panic path.
    .text
    .global cpu_undefined_instruction
cpu_undefined_instruction:
    udf     #0
    ret
