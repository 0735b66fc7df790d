using System;

namespace Hypervisor.Arch
{
    public enum EmulationStatus
    {
        Done,
        Unsupported,          // the access cannot be emulated (see LoadStoreDecoder)
        WrongDirection,       // store data asked of a load, or load data given to a store
        RegisterFileTooSmall, // fewer than 31 general registers passed in
        NoBaseRegister,       // an ISV=1 syndrome names no base register
    }

    // Finishing a trapped load or store on the guest's behalf, in three steps
    // around the device access that the caller performs:
    //
    //   access = syndrome.IsInstructionSyndromeValid
    //          ? MmioEmulation.FromSyndrome(syndrome)      // ISV=1: the CPU decoded it
    //          : LoadStoreDecoder.Decode(instruction);     // ISV=0: fetch and decode
    //   store: ReadStoreData -> device write(s)            (a)
    //   load:  device read(s) -> WriteLoadData             (b)
    //   both:  ApplyWriteback, then ELR_EL2 += 4           (c)
    //   (Finish does (b) and (c) in one call.)
    //
    // This file knows nothing of devices or addresses in the guest-physical map;
    // it moves values between the guest's registers and the caller. Values are
    // register values: byte order towards the device is the caller's business.
    //
    // Registers: x holds x0..x30 (index 0..30, e.g. a TrapFrame's X array). As a
    // data register (Rt, Rt2) number 31 is XZR: it reads as zero and writes to
    // it vanish. As a base register (Rn) 31 is the stack pointer, which does not
    // live in the trap frame, so the caller passes the guest's SP separately.
    public static class MmioEmulation
    {
        public const int GeneralRegisterCount = 31;
        public const int ZeroRegisterOrSp = 31;

        // The access described by a valid instruction syndrome (ISV=1): size from
        // SAS, sign extension from SSE, the register from SRT, its width from SF.
        // ISV=1 is only ever reported for single-register accesses without
        // writeback, so there is no base register to update. Cache maintenance
        // (CM) and stage-1 table walk (S1PTW) faults are not the guest's loads
        // or stores and come back Unsupported.
        public static LoadStoreInstruction FromSyndrome(in DataAbortSyndrome syndrome)
        {
            if (!syndrome.IsDataAbort || !syndrome.IsInstructionSyndromeValid) return default;
            if (syndrome.CacheMaintenance || syndrome.OnStage1TableWalk) return default;

            LoadStoreInstruction r = default;
            r.Kind = syndrome.IsWrite ? MemoryAccessKind.Store : MemoryAccessKind.Load;
            r.AccessSize = syndrome.AccessSize;
            r.RegisterCount = 1;
            r.Rt = syndrome.RegisterNumber;
            r.Rt2 = LoadStoreInstruction.NoRegister;
            r.Rn = LoadStoreInstruction.NoRegister;
            r.Rm = LoadStoreInstruction.NoRegister;
            r.SignExtend = !syndrome.IsWrite && syndrome.SignExtend;
            r.RegisterWidth = syndrome.Register64Bit ? 64 : 32;
            r.Mode = IndexMode.Offset;
            r.AcquireRelease = syndrome.AcquireRelease;
            return r;
        }

        // The instruction fetched for an ISV=0 abort is read from guest memory
        // after the fault; another vCPU may have rewritten it meanwhile. A
        // decoded store must go with WnR = 1 and a load with WnR = 0.
        public static bool AgreesWithSyndrome(in LoadStoreInstruction access, in DataAbortSyndrome syndrome)
        {
            if (!access.IsSupported) return false;
            return access.IsStore == syndrome.IsWrite;
        }

        // (a) The value(s) a store writes, each cut to the access size.
        // For pairs, second goes to the address AccessSize bytes above first.
        public static EmulationStatus ReadStoreData(in LoadStoreInstruction access, ReadOnlySpan<ulong> x,
                                                    out ulong first, out ulong second)
        {
            first = 0;
            second = 0;
            EmulationStatus status = Validate(access, x.Length);
            if (status != EmulationStatus.Done) return status;
            if (!access.IsStore) return EmulationStatus.WrongDirection;

            first = TruncateToSize(ReadDataRegister(x, access.Rt), access.AccessSize);
            if (access.RegisterCount == 2)
                second = TruncateToSize(ReadDataRegister(x, access.Rt2), access.AccessSize);
            return EmulationStatus.Done;
        }

        // (b) Puts the value(s) the device returned into the destination
        // register(s), extended as the instruction says. second is ignored for
        // single-register loads.
        public static EmulationStatus WriteLoadData(in LoadStoreInstruction access, Span<ulong> x,
                                                    ulong first, ulong second)
        {
            EmulationStatus status = Validate(access, x.Length);
            if (status != EmulationStatus.Done) return status;
            if (!access.IsLoad) return EmulationStatus.WrongDirection;

            WriteDataRegister(x, access.Rt,
                ExtendLoadedValue(first, access.AccessSize, access.SignExtend, access.RegisterWidth));
            if (access.RegisterCount == 2)
                WriteDataRegister(x, access.Rt2,
                    ExtendLoadedValue(second, access.AccessSize, access.SignExtend, access.RegisterWidth));
            return EmulationStatus.Done;
        }

        // (c) Pre- and post-indexed forms move the base register by the offset
        // once the access is done: both end with base = base + offset (they
        // differ only in which address was accessed). Nothing to do otherwise.
        public static EmulationStatus ApplyWriteback(in LoadStoreInstruction access, Span<ulong> x, ref ulong sp)
        {
            EmulationStatus status = Validate(access, x.Length);
            if (status != EmulationStatus.Done) return status;
            if (!access.Writeback) return EmulationStatus.Done;
            if (access.Rn == LoadStoreInstruction.NoRegister) return EmulationStatus.NoBaseRegister;

            if (access.Rn == ZeroRegisterOrSp) sp += (ulong)access.Offset;
            else x[access.Rn] += (ulong)access.Offset;
            return EmulationStatus.Done;
        }

        // (b) then (c): what is left to do once the device access happened.
        // For stores the loaded values are ignored.
        public static EmulationStatus Finish(in LoadStoreInstruction access, Span<ulong> x, ref ulong sp,
                                             ulong loadedFirst, ulong loadedSecond)
        {
            if (access.IsLoad)
            {
                EmulationStatus status = WriteLoadData(access, x, loadedFirst, loadedSecond);
                if (status != EmulationStatus.Done) return status;
            }
            return ApplyWriteback(access, x, ref sp);
        }

        // The virtual address of the first element, from the registers as they
        // were at the fault (call before ApplyWriteback). FAR_EL2 normally makes
        // this unnecessary; it serves pairs and sanity checks.
        public static EmulationStatus ComputeAddress(in LoadStoreInstruction access, ReadOnlySpan<ulong> x,
                                                     ulong sp, out ulong address)
        {
            address = 0;
            EmulationStatus status = Validate(access, x.Length);
            if (status != EmulationStatus.Done) return status;
            if (access.Rn == LoadStoreInstruction.NoRegister) return EmulationStatus.NoBaseRegister;

            ulong baseValue = access.Rn == ZeroRegisterOrSp ? sp : x[access.Rn];
            if (access.Mode == IndexMode.PostIndex) address = baseValue;
            else if (access.HasRegisterOffset)
                address = baseValue + ExtendIndex(ReadDataRegister(x, access.Rm), access.Extend, access.Shift);
            else address = baseValue + (ulong)access.Offset;
            return EmulationStatus.Done;
        }

        // A loaded value as it lands in the register: cut to the access size,
        // sign- or zero-extended, then cut to the register width. Writing a W
        // register clears bits [63:32] of the X register, hence the final mask.
        public static ulong ExtendLoadedValue(ulong raw, int accessSize, bool signExtend, int registerWidth)
        {
            ulong value = TruncateToSize(raw, accessSize);
            if (signExtend && accessSize < 8)
            {
                int unused = 64 - accessSize * 8;
                value = (ulong)((long)(value << unused) >> unused);
            }
            if (registerWidth == 32) value &= 0xffffffffUL;
            return value;
        }

        // The low accessSize bytes of value.
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        public static ulong TruncateToSize(ulong value, int accessSize)
        {
            if (accessSize >= 8) return value;
            return value & ((1UL << (accessSize * 8)) - 1);
        }

        // Rm widened as the register-offset form's option field says, then shifted.
        public static ulong ExtendIndex(ulong rm, IndexExtend extend, int shift)
        {
            ulong value;
            switch (extend)
            {
                case IndexExtend.Uxtw: value = rm & 0xffffffffUL; break;
                case IndexExtend.Sxtw: value = (ulong)(long)(int)(uint)rm; break;
                default: value = rm; break;
            }
            return value << shift;
        }

        private static ulong ReadDataRegister(ReadOnlySpan<ulong> x, int register) =>
            register == ZeroRegisterOrSp ? 0 : x[register];

        private static void WriteDataRegister(Span<ulong> x, int register, ulong value)
        {
            if (register != ZeroRegisterOrSp) x[register] = value;
        }

        // Everything the steps rely on before touching a register: a supported
        // access, a full register file, and register numbers that index it. The
        // struct's fields are public, so a hand-built one is checked too rather
        // than trusted: an out-of-range index would panic the hypervisor.
        private static EmulationStatus Validate(in LoadStoreInstruction access, int registerCount)
        {
            if (!access.IsSupported) return EmulationStatus.Unsupported;
            if (registerCount < GeneralRegisterCount) return EmulationStatus.RegisterFileTooSmall;
            if (!IsRegister(access.Rt)) return EmulationStatus.Unsupported;
            if (access.RegisterCount != 1 && access.RegisterCount != 2) return EmulationStatus.Unsupported;
            if (access.RegisterCount == 2 && !IsRegister(access.Rt2)) return EmulationStatus.Unsupported;
            if (access.Rn != LoadStoreInstruction.NoRegister && !IsRegister(access.Rn)) return EmulationStatus.Unsupported;
            if (access.HasRegisterOffset && !IsRegister(access.Rm)) return EmulationStatus.Unsupported;
            if (access.AccessSize != 1 && access.AccessSize != 2 && access.AccessSize != 4 && access.AccessSize != 8)
                return EmulationStatus.Unsupported;
            return EmulationStatus.Done;
        }

        private static bool IsRegister(int number) => number >= 0 && number <= 31;
    }
}
