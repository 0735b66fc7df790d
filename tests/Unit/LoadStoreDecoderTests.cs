using Hypervisor.Arch;
using Xunit;

namespace Hypervisor.Tests.Unit
{
    // Every encoding below was produced by aarch64-linux-gnu-as
    // (-march=armv8.5-a+lse+rcpc+memtag) from the assembly text next to it and
    // read back with aarch64-linux-gnu-objdump -d; the ones the assembler refuses
    // or warns about were written as .inst and disassembled to confirm them.
    public class LoadStoreDecoderTests
    {
        private const MemoryAccessKind Load = MemoryAccessKind.Load;
        private const MemoryAccessKind Store = MemoryAccessKind.Store;
        private const IndexMode Offset = IndexMode.Offset;
        private const IndexMode Pre = IndexMode.PreIndex;
        private const IndexMode Post = IndexMode.PostIndex;
        private const int Sp = 31, Zr = 31;

        [Theory]
        // Load/store register (unsigned immediate)
        [InlineData(0xf9400041u, "ldr x1, [x2]", Load, 8, 1, 2, false, 64, Offset, 0L, false)]
        [InlineData(0xf9400441u, "ldr x1, [x2, #8]", Load, 8, 1, 2, false, 64, Offset, 8L, false)]
        [InlineData(0xb97ffc83u, "ldr w3, [x4, #16380]", Load, 4, 3, 4, false, 32, Offset, 16380L, false)]
        [InlineData(0xf97fffe5u, "ldr x5, [sp, #32760]", Load, 8, 5, Sp, false, 64, Offset, 32760L, false)]
        [InlineData(0xf9000ce6u, "str x6, [x7, #24]", Store, 8, 6, 7, false, 64, Offset, 24L, false)]
        [InlineData(0xb9000528u, "str w8, [x9, #4]", Store, 4, 8, 9, false, 32, Offset, 4L, false)]
        [InlineData(0xf900055fu, "str xzr, [x10, #8]", Store, 8, Zr, 10, false, 64, Offset, 8L, false)]
        [InlineData(0xb900015fu, "str wzr, [x10]", Store, 4, Zr, 10, false, 32, Offset, 0L, false)]
        [InlineData(0x397ffd8bu, "ldrb w11, [x12, #4095]", Load, 1, 11, 12, false, 32, Offset, 4095L, false)]
        [InlineData(0x390005cdu, "strb w13, [x14, #1]", Store, 1, 13, 14, false, 32, Offset, 1L, false)]
        [InlineData(0x7940060fu, "ldrh w15, [x16, #2]", Load, 2, 15, 16, false, 32, Offset, 2L, false)]
        [InlineData(0x793ffe51u, "strh w17, [x18, #8190]", Store, 2, 17, 18, false, 32, Offset, 8190L, false)]
        [InlineData(0x39800e93u, "ldrsb x19, [x20, #3]", Load, 1, 19, 20, true, 64, Offset, 3L, false)]
        [InlineData(0x39c002d5u, "ldrsb w21, [x22]", Load, 1, 21, 22, true, 32, Offset, 0L, false)]
        [InlineData(0x79800f17u, "ldrsh x23, [x24, #6]", Load, 2, 23, 24, true, 64, Offset, 6L, false)]
        [InlineData(0x79c00359u, "ldrsh w25, [x26]", Load, 2, 25, 26, true, 32, Offset, 0L, false)]
        [InlineData(0xb9800f9bu, "ldrsw x27, [x28, #12]", Load, 4, 27, 28, true, 64, Offset, 12L, false)]
        [InlineData(0xf940003fu, "ldr xzr, [x1]", Load, 8, Zr, 1, false, 64, Offset, 0L, false)]
        // Load/store register (unscaled immediate)
        [InlineData(0xf85f8041u, "ldur x1, [x2, #-8]", Load, 8, 1, 2, false, 64, Offset, -8L, false)]
        [InlineData(0xb84ff083u, "ldur w3, [x4, #255]", Load, 4, 3, 4, false, 32, Offset, 255L, false)]
        [InlineData(0xf81000c5u, "stur x5, [x6, #-256]", Store, 8, 5, 6, false, 64, Offset, -256L, false)]
        [InlineData(0x381ff107u, "sturb w7, [x8, #-1]", Store, 1, 7, 8, false, 32, Offset, -1L, false)]
        [InlineData(0x78001149u, "sturh w9, [x10, #1]", Store, 2, 9, 10, false, 32, Offset, 1L, false)]
        [InlineData(0x389fd18bu, "ldursb x11, [x12, #-3]", Load, 1, 11, 12, true, 64, Offset, -3L, false)]
        [InlineData(0x78dfe1cdu, "ldursh w13, [x14, #-2]", Load, 2, 13, 14, true, 32, Offset, -2L, false)]
        [InlineData(0xb89fc20fu, "ldursw x15, [x16, #-4]", Load, 4, 15, 16, true, 64, Offset, -4L, false)]
        [InlineData(0x785fe251u, "ldurh w17, [x18, #-2]", Load, 2, 17, 18, false, 32, Offset, -2L, false)]
        [InlineData(0x38405293u, "ldurb w19, [x20, #5]", Load, 1, 19, 20, false, 32, Offset, 5L, false)]
        // Load/store register (immediate post-indexed)
        [InlineData(0xf8408441u, "ldr x1, [x2], #8", Load, 8, 1, 2, false, 64, Post, 8L, false)]
        [InlineData(0xb81fc483u, "str w3, [x4], #-4", Store, 4, 3, 4, false, 32, Post, -4L, false)]
        [InlineData(0x384014c5u, "ldrb w5, [x6], #1", Load, 1, 5, 6, false, 32, Post, 1L, false)]
        [InlineData(0x789fe507u, "ldrsh x7, [x8], #-2", Load, 2, 7, 8, true, 64, Post, -2L, false)]
        [InlineData(0x78c02420u, "ldrsh w0, [x1], #2", Load, 2, 0, 1, true, 32, Post, 2L, false)]
        [InlineData(0xf80107e9u, "str x9, [sp], #16", Store, 8, 9, Sp, false, 64, Post, 16L, false)]
        [InlineData(0xb88ff56au, "ldrsw x10, [x11], #255", Load, 4, 10, 11, true, 64, Post, 255L, false)]
        // Load/store register (immediate pre-indexed)
        [InlineData(0xf85f0c41u, "ldr x1, [x2, #-16]!", Load, 8, 1, 2, false, 64, Pre, -16L, false)]
        [InlineData(0xf81f0fe3u, "str x3, [sp, #-16]!", Store, 8, 3, Sp, false, 64, Pre, -16L, false)]
        [InlineData(0x78002ca4u, "strh w4, [x5, #2]!", Store, 2, 4, 5, false, 32, Pre, 2L, false)]
        [InlineData(0x38d00ce6u, "ldrsb w6, [x7, #-256]!", Load, 1, 6, 7, true, 32, Pre, -256L, false)]
        [InlineData(0x38dffc20u, "ldrsb w0, [x1, #-1]!", Load, 1, 0, 1, true, 32, Pre, -1L, false)]
        [InlineData(0xb8404d28u, "ldr w8, [x9, #4]!", Load, 4, 8, 9, false, 32, Pre, 4L, false)]
        // A store writing back its own base is accepted: the original value is stored.
        [InlineData(0xf81f8c21u, "str x1, [x1, #-8]!", Store, 8, 1, 1, false, 64, Pre, -8L, false)]
        // Load/store register (unprivileged): plain accesses to the hypervisor
        [InlineData(0xf8408841u, "ldtr x1, [x2, #8]", Load, 8, 1, 2, false, 64, Offset, 8L, false)]
        [InlineData(0x381ff883u, "sttrb w3, [x4, #-1]", Store, 1, 3, 4, false, 32, Offset, -1L, false)]
        [InlineData(0x78c008c5u, "ldtrsh w5, [x6]", Load, 2, 5, 6, true, 32, Offset, 0L, false)]
        // Load/store ordered
        [InlineData(0xc8dffc41u, "ldar x1, [x2]", Load, 8, 1, 2, false, 64, Offset, 0L, true)]
        [InlineData(0x88dfffe3u, "ldar w3, [sp]", Load, 4, 3, Sp, false, 32, Offset, 0L, true)]
        [InlineData(0x08dffca4u, "ldarb w4, [x5]", Load, 1, 4, 5, false, 32, Offset, 0L, true)]
        [InlineData(0x48dffce6u, "ldarh w6, [x7]", Load, 2, 6, 7, false, 32, Offset, 0L, true)]
        [InlineData(0xc89ffd28u, "stlr x8, [x9]", Store, 8, 8, 9, false, 64, Offset, 0L, true)]
        [InlineData(0x889ffd6au, "stlr w10, [x11]", Store, 4, 10, 11, false, 32, Offset, 0L, true)]
        [InlineData(0x089ffdacu, "stlrb w12, [x13]", Store, 1, 12, 13, false, 32, Offset, 0L, true)]
        [InlineData(0x489ffdeeu, "stlrh w14, [x15]", Store, 2, 14, 15, false, 32, Offset, 0L, true)]
        [InlineData(0xc8df7f38u, "ldlar x24, [x25]", Load, 8, 24, 25, false, 64, Offset, 0L, true)]
        [InlineData(0x889f7f7au, "stllr w26, [x27]", Store, 4, 26, 27, false, 32, Offset, 0L, true)]
        // LDAPR (among the atomic memory operations)
        [InlineData(0xf8bfc230u, "ldapr x16, [x17]", Load, 8, 16, 17, false, 64, Offset, 0L, true)]
        [InlineData(0xb8bfc272u, "ldapr w18, [x19]", Load, 4, 18, 19, false, 32, Offset, 0L, true)]
        [InlineData(0x38bfc2b4u, "ldaprb w20, [x21]", Load, 1, 20, 21, false, 32, Offset, 0L, true)]
        [InlineData(0x78bfc2f6u, "ldaprh w22, [x23]", Load, 2, 22, 23, false, 32, Offset, 0L, true)]
        // LDAPR/STLR (unscaled immediate)
        [InlineData(0xd95f8041u, "ldapur x1, [x2, #-8]", Load, 8, 1, 2, false, 64, Offset, -8L, true)]
        [InlineData(0x99804083u, "ldapursw x3, [x4, #4]", Load, 4, 3, 4, true, 64, Offset, 4L, true)]
        [InlineData(0x19c010c5u, "ldapursb w5, [x6, #1]", Load, 1, 5, 6, true, 32, Offset, 1L, true)]
        [InlineData(0x991fc107u, "stlur w7, [x8, #-4]", Store, 4, 7, 8, false, 32, Offset, -4L, true)]
        [InlineData(0x59000149u, "stlurh w9, [x10]", Store, 2, 9, 10, false, 32, Offset, 0L, true)]
        public void DecodesSingleRegisterForms(uint insn, string asm, MemoryAccessKind kind, int size, int rt, int rn,
                                               bool signExtend, int width, IndexMode mode, long offset, bool acquireRelease)
        {
            LoadStoreInstruction d = LoadStoreDecoder.Decode(insn);
            Assert.True(d.IsSupported, asm);
            Assert.Equal(kind, d.Kind);
            Assert.Equal(size, d.AccessSize);
            Assert.Equal(1, d.RegisterCount);
            Assert.Equal(rt, d.Rt);
            Assert.Equal(LoadStoreInstruction.NoRegister, d.Rt2);
            Assert.Equal(rn, d.Rn);
            Assert.Equal(signExtend, d.SignExtend);
            Assert.Equal(width, d.RegisterWidth);
            Assert.Equal(mode, d.Mode);
            Assert.Equal(offset, d.Offset);
            Assert.Equal(mode != Offset, d.Writeback);
            Assert.Equal(mode != Offset ? offset : 0, d.WritebackOffset);
            Assert.False(d.HasRegisterOffset);
            Assert.Equal(acquireRelease, d.AcquireRelease);
            Assert.Equal(kind == Load, d.IsLoad);
            Assert.Equal(kind == Store, d.IsStore);
        }

        [Theory]
        // Load/store register (register offset)
        [InlineData(0xf8636841u, "ldr x1, [x2, x3]", Load, 8, 1, 2, 3, IndexExtend.Lsl, 0, false, 64)]
        [InlineData(0xf8637841u, "ldr x1, [x2, x3, lsl #3]", Load, 8, 1, 2, 3, IndexExtend.Lsl, 3, false, 64)]
        [InlineData(0xb86648a4u, "ldr w4, [x5, w6, uxtw]", Load, 4, 4, 5, 6, IndexExtend.Uxtw, 0, false, 32)]
        [InlineData(0xb86658a4u, "ldr w4, [x5, w6, uxtw #2]", Load, 4, 4, 5, 6, IndexExtend.Uxtw, 2, false, 32)]
        [InlineData(0xf829d907u, "str x7, [x8, w9, sxtw #3]", Store, 8, 7, 8, 9, IndexExtend.Sxtw, 3, false, 64)]
        [InlineData(0x382c696au, "strb w10, [x11, x12]", Store, 1, 10, 11, 12, IndexExtend.Lsl, 0, false, 32)]
        [InlineData(0x382c796au, "strb w10, [x11, x12, lsl #0]", Store, 1, 10, 11, 12, IndexExtend.Lsl, 0, false, 32)]
        [InlineData(0x38627820u, "ldrb w0, [x1, x2, lsl #0]", Load, 1, 0, 1, 2, IndexExtend.Lsl, 0, false, 32)]
        [InlineData(0x786ff9cdu, "ldrh w13, [x14, x15, sxtx #1]", Load, 2, 13, 14, 15, IndexExtend.Sxtx, 1, false, 32)]
        [InlineData(0xb8b2ca30u, "ldrsw x16, [x17, w18, sxtw]", Load, 4, 16, 17, 18, IndexExtend.Sxtw, 0, true, 64)]
        [InlineData(0xb8a27820u, "ldrsw x0, [x1, x2, lsl #2]", Load, 4, 0, 1, 2, IndexExtend.Lsl, 2, true, 64)]
        [InlineData(0x38b54a93u, "ldrsb x19, [x20, w21, uxtw]", Load, 1, 19, 20, 21, IndexExtend.Uxtw, 0, true, 64)]
        [InlineData(0x78e2d820u, "ldrsh w0, [x1, w2, sxtw #1]", Load, 2, 0, 1, 2, IndexExtend.Sxtw, 1, true, 32)]
        [InlineData(0xf87f6bf6u, "ldr x22, [sp, xzr]", Load, 8, 22, Sp, Zr, IndexExtend.Lsl, 0, false, 64)]
        public void DecodesRegisterOffsetForms(uint insn, string asm, MemoryAccessKind kind, int size, int rt, int rn,
                                               int rm, IndexExtend extend, int shift, bool signExtend, int width)
        {
            LoadStoreInstruction d = LoadStoreDecoder.Decode(insn);
            Assert.True(d.IsSupported, asm);
            Assert.Equal(kind, d.Kind);
            Assert.Equal(size, d.AccessSize);
            Assert.Equal(1, d.RegisterCount);
            Assert.Equal(rt, d.Rt);
            Assert.Equal(rn, d.Rn);
            Assert.True(d.HasRegisterOffset);
            Assert.Equal(rm, d.Rm);
            Assert.Equal(extend, d.Extend);
            Assert.Equal(shift, d.Shift);
            Assert.Equal(signExtend, d.SignExtend);
            Assert.Equal(width, d.RegisterWidth);
            Assert.Equal(IndexMode.Offset, d.Mode);
            Assert.False(d.Writeback);
            Assert.Equal(0L, d.Offset);
        }

        [Theory]
        // Load/store pair (signed offset, pre-indexed, post-indexed, no-allocate)
        [InlineData(0xa9400861u, "ldp x1, x2, [x3]", Load, 8, 1, 2, 3, false, 64, Offset, 0L)]
        [InlineData(0xa9410861u, "ldp x1, x2, [x3, #16]", Load, 8, 1, 2, 3, false, 64, Offset, 16L)]
        [InlineData(0xa9bf17e4u, "stp x4, x5, [sp, #-16]!", Store, 8, 4, 5, Sp, false, 64, Pre, -16L)]
        [InlineData(0xa8c17bfdu, "ldp x29, x30, [sp], #16", Load, 8, 29, 30, Sp, false, 64, Post, 16L)]
        [InlineData(0x293f1d06u, "stp w6, w7, [x8, #-8]", Store, 4, 6, 7, 8, false, 32, Offset, -8L)]
        [InlineData(0x295fa969u, "ldp w9, w10, [x11, #252]", Load, 4, 9, 10, 11, false, 32, Offset, 252L)]
        [InlineData(0x69ff35ccu, "ldpsw x12, x13, [x14, #-8]!", Load, 4, 12, 13, 14, true, 64, Pre, -8L)]
        [InlineData(0x68c0b5ccu, "ldpsw x12, x13, [x14], #4", Load, 4, 12, 13, 14, true, 64, Post, 4L)]
        [InlineData(0xa9207dffu, "stp xzr, xzr, [x15, #-512]", Store, 8, Zr, Zr, 15, false, 64, Offset, -512L)]
        [InlineData(0xa9fc4650u, "ldp x16, x17, [x18, #-64]!", Load, 8, 16, 17, 18, false, 64, Pre, -64L)]
        [InlineData(0x28bfd2b3u, "stp w19, w20, [x21], #-4", Store, 4, 19, 20, 21, false, 32, Post, -4L)]
        [InlineData(0xa8410861u, "ldnp x1, x2, [x3, #16]", Load, 8, 1, 2, 3, false, 64, Offset, 16L)]
        [InlineData(0x283f14c4u, "stnp w4, w5, [x6, #-8]", Store, 4, 4, 5, 6, false, 32, Offset, -8L)]
        public void DecodesPairs(uint insn, string asm, MemoryAccessKind kind, int size, int rt, int rt2, int rn,
                                 bool signExtend, int width, IndexMode mode, long offset)
        {
            LoadStoreInstruction d = LoadStoreDecoder.Decode(insn);
            Assert.True(d.IsSupported, asm);
            Assert.Equal(kind, d.Kind);
            Assert.Equal(size, d.AccessSize);
            Assert.Equal(2, d.RegisterCount);
            Assert.Equal(2 * size, d.TotalSize);
            Assert.Equal(rt, d.Rt);
            Assert.Equal(rt2, d.Rt2);
            Assert.Equal(rn, d.Rn);
            Assert.Equal(signExtend, d.SignExtend);
            Assert.Equal(width, d.RegisterWidth);
            Assert.Equal(mode, d.Mode);
            Assert.Equal(offset, d.Offset);
            Assert.Equal(mode != Offset, d.Writeback);
            Assert.False(d.HasRegisterOffset);
            Assert.False(d.AcquireRelease);
        }

        [Theory]
        // Exclusives, compare-and-swap, atomics: not plain loads or stores.
        [InlineData(0xc85f7c41u, "ldxr x1, [x2]")]
        [InlineData(0xc8037ca4u, "stxr w3, x4, [x5]")]
        [InlineData(0x885ffce6u, "ldaxr w6, [x7]")]
        [InlineData(0xc87f0861u, "ldxp x1, x2, [x3]")]
        [InlineData(0xc8a17c62u, "cas x1, x2, [x3]")]
        [InlineData(0xf8210062u, "ldadd x1, x2, [x3]")]
        [InlineData(0xb8218062u, "swp w1, w2, [x3]")]
        // SIMD&FP registers.
        [InlineData(0x3dc00020u, "ldr q0, [x1]")]
        [InlineData(0xfd400441u, "ldr d1, [x2, #8]")]
        [InlineData(0xbc004462u, "str s2, [x3], #4")]
        [InlineData(0xad400440u, "ldp q0, q1, [x2]")]
        [InlineData(0x4c407020u, "ld1 {v0.16b}, [x1]")]
        // Prefetches, literal loads, pointer-authenticated loads, tags.
        [InlineData(0xf9800020u, "prfm pldl1keep, [x1]")]
        [InlineData(0xf8800020u, "prfum pldl1keep, [x1]")]
        [InlineData(0x58000001u, "ldr x1, <literal>")]
        [InlineData(0xf8200441u, "ldraa x1, [x2]")]
        [InlineData(0xf8a00441u, "ldrab x1, [x2]")]
        [InlineData(0x69000861u, "stgp x1, x2, [x3]")]
        // Not loads or stores at all.
        [InlineData(0x14000000u, "b .")]
        [InlineData(0x94000002u, "bl .+8")]
        [InlineData(0x8b030041u, "add x1, x2, x3")]
        [InlineData(0xd503201fu, "nop")]
        [InlineData(0x00000000u, "udf #0")]
        [InlineData(0xffffffffu, "(undefined)")]
        // Unallocated encodings inside the load/store classes.
        [InlineData(0x38a02841u, "(register offset, option 001)")]
        [InlineData(0xb9c00020u, "(unsigned immediate, size 10 opc 11)")]
        [InlineData(0xf9c00020u, "(unsigned immediate, size 11 opc 11)")]
        [InlineData(0xe8400861u, "(pair, opc 11)")]
        [InlineData(0x68400861u, "(no-allocate pair, opc 01)")]
        // LDARB with its should-be-ones Rs and Rt2 fields not all ones.
        [InlineData(0x08d4bedcu, "(ldarb w28, [x22] with Rs=10100, Rt2=01111)")]
        // CONSTRAINED UNPREDICTABLE loads, treated as UNDEFINED.
        [InlineData(0xf8408421u, "ldr x1, [x1], #8")]
        [InlineData(0xa9400461u, "ldp x1, x1, [x3]")]
        [InlineData(0xa8c10c61u, "ldp x1, x3, [x3], #16")]
        public void RejectsEverythingElse(uint insn, string asm)
        {
            LoadStoreInstruction d = LoadStoreDecoder.Decode(insn);
            Assert.False(d.IsSupported, asm);
            Assert.Equal(MemoryAccessKind.Unsupported, d.Kind);
        }
    }
}
