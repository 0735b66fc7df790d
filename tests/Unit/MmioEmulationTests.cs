using System;
using Hypervisor.Arch;
using Xunit;

namespace Hypervisor.Tests.Unit
{
    // Encodings come from aarch64-linux-gnu-as, as in LoadStoreDecoderTests.
    public class MmioEmulationTests
    {
        private const ulong Pattern = 0x0123456789abcdefUL;

        // x0..x30 with a recognisable value in each: x<n> = 0x1000 * n.
        private static ulong[] Registers()
        {
            var x = new ulong[31];
            for (int i = 0; i < x.Length; i++) x[i] = 0x1000UL * (ulong)i;
            return x;
        }

        private static LoadStoreInstruction Decode(uint insn)
        {
            LoadStoreInstruction d = LoadStoreDecoder.Decode(insn);
            Assert.True(d.IsSupported);
            return d;
        }

        private static ulong Address(LoadStoreInstruction d, ulong[] x, ulong sp)
        {
            Assert.Equal(EmulationStatus.Done, MmioEmulation.ComputeAddress(d, x, sp, out ulong address));
            return address;
        }

        // -- stores ---------------------------------------------------------

        [Theory]
        [InlineData(0x390005cdu, "strb w13, [x14, #1]", 13, 0xefUL)]
        [InlineData(0x78001149u, "sturh w9, [x10, #1]", 9, 0xcdefUL)]
        [InlineData(0xb9000528u, "str w8, [x9, #4]", 8, 0x89abcdefUL)]
        [InlineData(0xf9000ce6u, "str x6, [x7, #24]", 6, Pattern)]
        [InlineData(0x889ffd6au, "stlr w10, [x11]", 10, 0x89abcdefUL)]
        public void StoreDataIsCutToTheAccessSize(uint insn, string asm, int rt, ulong expected)
        {
            ulong[] x = Registers();
            x[rt] = Pattern;
            Assert.Equal(EmulationStatus.Done,
                MmioEmulation.ReadStoreData(Decode(insn), x, out ulong first, out ulong second));
            Assert.True(expected == first, asm);
            Assert.Equal(0UL, second);
        }

        [Theory]
        [InlineData(0xf900055fu, "str xzr, [x10, #8]")]
        [InlineData(0xb900015fu, "str wzr, [x10]")]
        [InlineData(0xa9207dffu, "stp xzr, xzr, [x15, #-512]")]
        public void TheZeroRegisterStoresZero(uint insn, string asm)
        {
            ulong[] x = Registers();
            for (int i = 0; i < x.Length; i++) x[i] = ulong.MaxValue;
            Assert.Equal(EmulationStatus.Done,
                MmioEmulation.ReadStoreData(Decode(insn), x, out ulong first, out ulong second));
            Assert.True(first == 0 && second == 0, asm);
        }

        // -- loads ----------------------------------------------------------

        [Theory]
        // Zero extension; a W destination clears bits [63:32].
        [InlineData(0x397ffd8bu, "ldrb w11, [x12, #4095]", 11, 0xffffffffffffff80UL, 0x80UL)]
        [InlineData(0x7940060fu, "ldrh w15, [x16, #2]", 15, 0xffffffffffff8001UL, 0x8001UL)]
        [InlineData(0xb84ff083u, "ldur w3, [x4, #255]", 3, 0xffffffff87654321UL, 0x87654321UL)]
        [InlineData(0xf9400041u, "ldr x1, [x2]", 1, Pattern, Pattern)]
        // Sign extension to 64 bits.
        [InlineData(0x39800e93u, "ldrsb x19, [x20, #3]", 19, 0x80UL, 0xffffffffffffff80UL)]
        [InlineData(0x39800e93u, "ldrsb x19, [x20, #3]", 19, 0x7fUL, 0x7fUL)]
        [InlineData(0x79800f17u, "ldrsh x23, [x24, #6]", 23, 0x8001UL, 0xffffffffffff8001UL)]
        [InlineData(0xb9800f9bu, "ldrsw x27, [x28, #12]", 27, 0x80000000UL, 0xffffffff80000000UL)]
        [InlineData(0xb9800f9bu, "ldrsw x27, [x28, #12]", 27, 0x7fffffffUL, 0x7fffffffUL)]
        // Sign extension to 32 bits: the upper half of the X register is zero.
        [InlineData(0x39c002d5u, "ldrsb w21, [x22]", 21, 0x80UL, 0xffffff80UL)]
        [InlineData(0x79c00359u, "ldrsh w25, [x26]", 25, 0x8001UL, 0xffff8001UL)]
        [InlineData(0x79c00359u, "ldrsh w25, [x26]", 25, 0x7001UL, 0x7001UL)]
        // The device's extra high bits beyond the access size are dropped.
        [InlineData(0x38405293u, "ldurb w19, [x20, #5]", 19, 0xabcdUL, 0xcdUL)]
        [InlineData(0x389fd18bu, "ldursb x11, [x12, #-3]", 11, 0x1234ffUL, 0xffffffffffffffffUL)]
        public void LoadsExtendIntoTheDestination(uint insn, string asm, int rt, ulong deviceValue, ulong expected)
        {
            ulong[] x = Registers();
            x[rt] = 0xdeadbeefdeadbeefUL;
            ulong sp = 0x8000;
            Assert.Equal(EmulationStatus.Done, MmioEmulation.Finish(Decode(insn), x, ref sp, deviceValue, 0));
            Assert.True(expected == x[rt], asm);
            Assert.Equal(0x8000UL, sp);
            for (int i = 0; i < x.Length; i++)
                if (i != rt) Assert.Equal(0x1000UL * (ulong)i, x[i]);
        }

        [Fact]
        public void LoadIntoTheZeroRegisterIsDiscarded()
        {
            ulong[] x = Registers();
            ulong sp = 0x8000;
            // ldr xzr, [x1]
            Assert.Equal(EmulationStatus.Done, MmioEmulation.Finish(Decode(0xf940003f), x, ref sp, Pattern, 0));
            Assert.Equal(Registers(), x);
            Assert.Equal(0x8000UL, sp);
        }

        [Theory]
        [InlineData(0UL, 1, false, 64, 0UL)]
        [InlineData(0xffUL, 1, true, 64, ulong.MaxValue)]
        [InlineData(0xffUL, 1, true, 32, 0xffffffffUL)]
        [InlineData(0xffffUL, 2, false, 64, 0xffffUL)]
        [InlineData(0x8000UL, 2, true, 32, 0xffff8000UL)]
        [InlineData(0xffffffff00000001UL, 4, true, 64, 1UL)]
        [InlineData(0x8000000000000000UL, 8, true, 64, 0x8000000000000000UL)]
        [InlineData(0x123456789UL, 8, false, 32, 0x23456789UL)]
        public void ExtendsLoadedValues(ulong raw, int size, bool signExtend, int width, ulong expected)
        {
            Assert.Equal(expected, MmioEmulation.ExtendLoadedValue(raw, size, signExtend, width));
        }

        // -- addresses and writeback ----------------------------------------

        [Theory]
        [InlineData(0xf9400441u, "ldr x1, [x2, #8]", 2, 0x2008UL, 0x2000UL)]
        [InlineData(0xf85f8041u, "ldur x1, [x2, #-8]", 2, 0x1ff8UL, 0x2000UL)]
        [InlineData(0xf8408441u, "ldr x1, [x2], #8", 2, 0x2000UL, 0x2008UL)]
        [InlineData(0xf85f0c41u, "ldr x1, [x2, #-16]!", 2, 0x1ff0UL, 0x1ff0UL)]
        [InlineData(0xb81fc483u, "str w3, [x4], #-4", 4, 0x4000UL, 0x3ffcUL)]
        [InlineData(0x38d00ce6u, "ldrsb w6, [x7, #-256]!", 7, 0x6f00UL, 0x6f00UL)]
        [InlineData(0xa9fc4650u, "ldp x16, x17, [x18, #-64]!", 18, 0x11fc0UL, 0x11fc0UL)]
        [InlineData(0x28bfd2b3u, "stp w19, w20, [x21], #-4", 21, 0x15000UL, 0x14ffcUL)]
        [InlineData(0x69ff35ccu, "ldpsw x12, x13, [x14, #-8]!", 14, 0xdff8UL, 0xdff8UL)]
        [InlineData(0x293f1d06u, "stp w6, w7, [x8, #-8]", 8, 0x7ff8UL, 0x8000UL)]
        public void AddressAndWritebackOfTheBaseRegister(uint insn, string asm, int rn, ulong address, ulong baseAfter)
        {
            LoadStoreInstruction d = Decode(insn);
            ulong[] x = Registers();
            ulong sp = 0x8000;
            Assert.True(address == Address(d, x, sp), asm);
            Assert.Equal(EmulationStatus.Done, MmioEmulation.ApplyWriteback(d, x, ref sp));
            Assert.True(baseAfter == x[rn], asm);
            Assert.Equal(0x8000UL, sp);
        }

        [Fact]
        public void PushWithPreIndexOnTheStackPointer()
        {
            // stp x4, x5, [sp, #-16]!
            LoadStoreInstruction d = Decode(0xa9bf17e4);
            ulong[] x = Registers();
            ulong sp = 0x8000;
            Assert.Equal(0x7ff0UL, Address(d, x, sp));
            Assert.Equal(EmulationStatus.Done, MmioEmulation.ReadStoreData(d, x, out ulong first, out ulong second));
            Assert.Equal(0x4000UL, first);
            Assert.Equal(0x5000UL, second);
            Assert.Equal(EmulationStatus.Done, MmioEmulation.Finish(d, x, ref sp, 0, 0));
            Assert.Equal(0x7ff0UL, sp);
            Assert.Equal(Registers(), x);
        }

        [Fact]
        public void PopWithPostIndexOnTheStackPointer()
        {
            // ldp x29, x30, [sp], #16
            LoadStoreInstruction d = Decode(0xa8c17bfd);
            ulong[] x = Registers();
            ulong sp = 0x7ff0;
            Assert.Equal(0x7ff0UL, Address(d, x, sp));
            Assert.Equal(EmulationStatus.Done, MmioEmulation.Finish(d, x, ref sp, 0x1111, 0x2222));
            Assert.Equal(0x1111UL, x[29]);
            Assert.Equal(0x2222UL, x[30]);
            Assert.Equal(0x8000UL, sp);
        }

        [Fact]
        public void StoreWithPostIndexOnTheStackPointerMovesOnlySp()
        {
            // str x9, [sp], #16
            LoadStoreInstruction d = Decode(0xf80107e9);
            ulong[] x = Registers();
            ulong sp = 0x8000;
            Assert.Equal(EmulationStatus.Done, MmioEmulation.ReadStoreData(d, x, out ulong value, out _));
            Assert.Equal(0x9000UL, value);
            Assert.Equal(EmulationStatus.Done, MmioEmulation.Finish(d, x, ref sp, 0, 0));
            Assert.Equal(0x8010UL, sp);
            Assert.Equal(Registers(), x);
        }

        [Fact]
        public void SignExtendingPairWithNegativePreIndex()
        {
            // ldpsw x12, x13, [x14, #-8]!
            LoadStoreInstruction d = Decode(0x69ff35cc);
            ulong[] x = Registers();
            ulong sp = 0x8000;
            Assert.Equal(EmulationStatus.Done, MmioEmulation.Finish(d, x, ref sp, 0xfffffffe, 0x7fffffff));
            Assert.Equal(0xfffffffffffffffeUL, x[12]);
            Assert.Equal(0x7fffffffUL, x[13]);
            Assert.Equal(0xdff8UL, x[14]);
        }

        [Fact]
        public void WordPairZeroExtendsBothRegisters()
        {
            // ldp w9, w10, [x11, #252]
            LoadStoreInstruction d = Decode(0x295fa969);
            ulong[] x = Registers();
            x[9] = x[10] = ulong.MaxValue;
            ulong sp = 0;
            Assert.Equal(EmulationStatus.Done, MmioEmulation.Finish(d, x, ref sp, 0xffffffff80000000UL, 0x12345678));
            Assert.Equal(0x80000000UL, x[9]);
            Assert.Equal(0x12345678UL, x[10]);
            Assert.Equal(0xb000UL, x[11]);
        }

        [Fact]
        public void StoreWritingBackItsOwnBaseStoresTheOriginalValue()
        {
            // str x1, [x1, #-8]!
            LoadStoreInstruction d = Decode(0xf81f8c21);
            ulong[] x = Registers();
            ulong sp = 0;
            Assert.Equal(EmulationStatus.Done, MmioEmulation.ReadStoreData(d, x, out ulong value, out _));
            Assert.Equal(0x1000UL, value);
            Assert.Equal(EmulationStatus.Done, MmioEmulation.Finish(d, x, ref sp, 0, 0));
            Assert.Equal(0xff8UL, x[1]);
        }

        [Theory]
        [InlineData(0xf8637841u, "ldr x1, [x2, x3, lsl #3]", 3, 0x10UL, 0x2080UL)]
        [InlineData(0xb86648a4u, "ldr w4, [x5, w6, uxtw]", 6, 0xffffffff00000010UL, 0x5010UL)]
        [InlineData(0xb86658a4u, "ldr w4, [x5, w6, uxtw #2]", 6, 0x10UL, 0x5040UL)]
        [InlineData(0xf829d907u, "str x7, [x8, w9, sxtw #3]", 9, 0x00000000fffffffeUL, 0x7ff0UL)]
        [InlineData(0xb8b2ca30u, "ldrsw x16, [x17, w18, sxtw]", 18, 0xfffffff0UL, 0x10ff0UL)]
        [InlineData(0x786ff9cdu, "ldrh w13, [x14, x15, sxtx #1]", 15, 0xfffffffffffffffeUL, 0xdffcUL)]
        public void RegisterOffsetAddresses(uint insn, string asm, int rm, ulong rmValue, ulong address)
        {
            LoadStoreInstruction d = Decode(insn);
            ulong[] x = Registers();
            x[rm] = rmValue;
            ulong[] before = (ulong[])x.Clone();
            ulong sp = 0x8000;
            Assert.True(address == Address(d, x, sp), asm);
            Assert.Equal(EmulationStatus.Done, MmioEmulation.ApplyWriteback(d, x, ref sp));
            Assert.Equal(before, x);
        }

        [Fact]
        public void ZeroRegisterAsIndexAndSpAsBase()
        {
            // ldr x22, [sp, xzr]
            Assert.Equal(0x8000UL, Address(Decode(0xf87f6bf6), Registers(), 0x8000));
        }

        // -- ISV=1: the syndrome describes the access -------------------------

        [Fact]
        public void ValidSyndromeLoadOfADoubleword()
        {
            // ESR 0x93c08004: ISV, SAS=3, SRT=0, SF=1, read.
            LoadStoreInstruction d = MmioEmulation.FromSyndrome(new DataAbortSyndrome(0x93c08004));
            Assert.True(d.IsLoad);
            Assert.Equal(8, d.AccessSize);
            Assert.Equal(0, d.Rt);
            Assert.Equal(64, d.RegisterWidth);
            Assert.False(d.Writeback);
            ulong[] x = Registers();
            ulong sp = 0x8000;
            Assert.Equal(EmulationStatus.Done, MmioEmulation.Finish(d, x, ref sp, Pattern, 0));
            Assert.Equal(Pattern, x[0]);
            Assert.Equal(0x8000UL, sp);
            Assert.Equal(EmulationStatus.NoBaseRegister, MmioEmulation.ComputeAddress(d, x, sp, out _));
        }

        [Fact]
        public void ValidSyndromeSignExtendingHalfwordToW()
        {
            // ESR 0x9362000f: ISV, SAS=1, SSE, SRT=2, SF=0 (ldrsh w2).
            LoadStoreInstruction d = MmioEmulation.FromSyndrome(new DataAbortSyndrome(0x9362000f));
            ulong[] x = Registers();
            x[2] = ulong.MaxValue;
            ulong sp = 0;
            Assert.Equal(EmulationStatus.Done, MmioEmulation.Finish(d, x, ref sp, 0x8001, 0));
            Assert.Equal(0xffff8001UL, x[2]);
        }

        [Fact]
        public void ValidSyndromeSignExtendingByteToX()
        {
            // ISV, SAS=0, SSE, SRT=5, SF=1: ldrsb x5.
            ulong esr = 0x92000000UL | 1UL << 24 | 1UL << 21 | 5UL << 16 | 1UL << 15 | 0x06;
            LoadStoreInstruction d = MmioEmulation.FromSyndrome(new DataAbortSyndrome(esr));
            ulong[] x = Registers();
            ulong sp = 0;
            Assert.Equal(EmulationStatus.Done, MmioEmulation.Finish(d, x, ref sp, 0xfe, 0));
            Assert.Equal(0xfffffffffffffffeUL, x[5]);
        }

        [Fact]
        public void ValidSyndromeStoreOfAWord()
        {
            // ESR 0x93810047: ISV, SAS=2, SRT=1, write.
            var syndrome = new DataAbortSyndrome(0x93810047);
            LoadStoreInstruction d = MmioEmulation.FromSyndrome(syndrome);
            Assert.True(d.IsStore);
            ulong[] x = Registers();
            x[1] = Pattern;
            Assert.Equal(EmulationStatus.Done, MmioEmulation.ReadStoreData(d, x, out ulong value, out _));
            Assert.Equal(0x89abcdefUL, value);
            Assert.True(MmioEmulation.AgreesWithSyndrome(d, syndrome));
        }

        [Fact]
        public void ValidSyndromeWithTheZeroRegister()
        {
            // ISV, SAS=3, SRT=31, SF=1, write: str xzr.
            ulong esr = 0x92000000UL | 1UL << 24 | 3UL << 22 | 31UL << 16 | 1UL << 15 | 1UL << 6 | 0x06;
            LoadStoreInstruction d = MmioEmulation.FromSyndrome(new DataAbortSyndrome(esr));
            ulong[] x = Registers();
            Assert.Equal(EmulationStatus.Done, MmioEmulation.ReadStoreData(d, x, out ulong value, out _));
            Assert.Equal(0UL, value);
        }

        [Theory]
        [InlineData(0x92000046UL, "ISV=0")]
        [InlineData(0x93c08104UL, "cache maintenance")]
        [InlineData(0x93c08084UL, "stage-1 table walk")]
        [InlineData(0x82000007UL, "instruction abort")]
        [InlineData(0x5a000000UL, "HVC")]
        public void SyndromesThatDescribeNoAccess(ulong esr, string why)
        {
            Assert.False(MmioEmulation.FromSyndrome(new DataAbortSyndrome(esr)).IsSupported, why);
        }

        [Fact]
        public void DecodedDirectionMustMatchWnR()
        {
            var write = new DataAbortSyndrome(0x92000046);
            var read = new DataAbortSyndrome(0x92000006);
            LoadStoreInstruction stp = Decode(0xa9bf17e4); // stp x4, x5, [sp, #-16]!
            LoadStoreInstruction ldp = Decode(0xa8c17bfd); // ldp x29, x30, [sp], #16
            Assert.True(MmioEmulation.AgreesWithSyndrome(stp, write));
            Assert.False(MmioEmulation.AgreesWithSyndrome(stp, read));
            Assert.True(MmioEmulation.AgreesWithSyndrome(ldp, read));
            Assert.False(MmioEmulation.AgreesWithSyndrome(ldp, write));
            Assert.False(MmioEmulation.AgreesWithSyndrome(LoadStoreDecoder.Decode(0x14000000), read));
        }

        // -- errors are statuses, never exceptions -----------------------------

        [Fact]
        public void ReportsMisuseAsStatus()
        {
            ulong[] x = Registers();
            ulong sp = 0x8000;
            LoadStoreInstruction load = Decode(0xf9400041);  // ldr x1, [x2]
            LoadStoreInstruction store = Decode(0xf9000ce6); // str x6, [x7, #24]
            LoadStoreInstruction branch = LoadStoreDecoder.Decode(0x14000000);

            Assert.Equal(EmulationStatus.WrongDirection, MmioEmulation.ReadStoreData(load, x, out _, out _));
            Assert.Equal(EmulationStatus.WrongDirection, MmioEmulation.WriteLoadData(store, x, 1, 2));
            Assert.Equal(EmulationStatus.Unsupported, MmioEmulation.Finish(branch, x, ref sp, 1, 2));
            Assert.Equal(EmulationStatus.Unsupported, MmioEmulation.ReadStoreData(branch, x, out _, out _));
            Assert.Equal(EmulationStatus.Unsupported, MmioEmulation.ApplyWriteback(branch, x, ref sp));
            Assert.Equal(EmulationStatus.Unsupported, MmioEmulation.ComputeAddress(branch, x, sp, out _));
            Assert.Equal(EmulationStatus.RegisterFileTooSmall, MmioEmulation.Finish(load, new ulong[30], ref sp, 1, 0));
            Assert.Equal(Registers(), x);
            Assert.Equal(0x8000UL, sp);

            // A hand-made access naming a register that does not exist.
            LoadStoreInstruction bogus = load;
            bogus.Rt = 40;
            Assert.Equal(EmulationStatus.Unsupported, MmioEmulation.Finish(bogus, x, ref sp, 1, 0));
            bogus = load;
            bogus.AccessSize = 3;
            Assert.Equal(EmulationStatus.Unsupported, MmioEmulation.Finish(bogus, x, ref sp, 1, 0));
        }

        [Fact]
        public void WorksOnASliceOfATrapFrameLikeBuffer()
        {
            // The kernel passes new Span<ulong>(frame->X, 31); a longer span is fine too.
            Span<ulong> frame = stackalloc ulong[36];
            frame[2] = 0x2000;
            ulong sp = 0;
            // ldr x1, [x2], #8
            Assert.Equal(EmulationStatus.Done, MmioEmulation.Finish(Decode(0xf8408441), frame.Slice(0, 31), ref sp, 7, 0));
            Assert.Equal(7UL, frame[1]);
            Assert.Equal(0x2008UL, frame[2]);
        }
    }
}
