namespace Hypervisor.Arch
{
    public enum MemoryAccessKind
    {
        Unsupported = 0, // so that default(LoadStoreInstruction) means "cannot emulate"
        Load,
        Store,
    }

    // How the base register is used. Offset: address = base + offset, base kept.
    // PreIndex: address = base + offset, then base = address.
    // PostIndex: address = base, then base = base + offset.
    public enum IndexMode
    {
        Offset,
        PreIndex,
        PostIndex,
    }

    // The "option" field of Load/store register (register offset): how the index
    // register Rm is widened to 64 bits before the shift. Lsl is UXTX.
    public enum IndexExtend
    {
        None,
        Uxtw, // low 32 bits of Rm, zero-extended
        Lsl,  // all 64 bits of Rm
        Sxtw, // low 32 bits of Rm, sign-extended
        Sxtx, // all 64 bits of Rm (same value as Lsl; a different spelling)
    }

    // One decoded general-purpose load or store: everything the hypervisor needs
    // to finish it on the guest's behalf after a data abort.
    //
    // The hypervisor never needs the address from here for the access itself
    // (FAR_EL2 and HPFAR_EL2 give it); the base register and offset matter only
    // for writeback. MmioEmulation.ComputeAddress still derives the address,
    // for pairs (the CPU may report the second element's address) and for checks.
    public struct LoadStoreInstruction
    {
        // Rn/Rt2/Rm when the form has no such register (ISV=1 syndromes, singles).
        public const int NoRegister = -1;

        public MemoryAccessKind Kind;
        public int AccessSize;      // bytes per register: 1, 2, 4 or 8
        public int RegisterCount;   // 1, or 2 for LDP/STP (second at address + AccessSize)
        public int Rt;              // 31 = XZR/WZR: reads as zero, writes are discarded
        public int Rt2;
        public int Rn;              // base register; 31 = SP
        public bool SignExtend;     // LDRSB/LDRSH/LDRSW/LDPSW
        public int RegisterWidth;   // 32 (W register) or 64 (X register) bits
        public IndexMode Mode;
        public long Offset;         // signed immediate in bytes, already scaled
        public bool HasRegisterOffset;
        public int Rm;              // index register; 31 = XZR
        public IndexExtend Extend;
        public int Shift;           // left shift applied to the extended Rm
        public bool AcquireRelease; // LDAR/STLR/LDAPR...: the trap itself orders it

        public bool IsSupported => Kind != MemoryAccessKind.Unsupported;
        public bool IsLoad => Kind == MemoryAccessKind.Load;
        public bool IsStore => Kind == MemoryAccessKind.Store;
        public bool Writeback => Mode != IndexMode.Offset;
        public long WritebackOffset => Mode != IndexMode.Offset ? Offset : 0;
        public int TotalSize => AccessSize * RegisterCount;
    }

    // Decodes the A64 instruction behind a data abort that came without a valid
    // instruction syndrome (ESR_EL2.ISV = 0): pairs, writeback forms, register
    // offsets. Only general-purpose register forms are emulated; SIMD&FP,
    // exclusives, atomics, prefetches, literal loads and anything unknown come
    // back as Kind = Unsupported (the hypervisor then injects an abort or stops).
    //
    // Encoding classes are from the Arm ARM, C4.1 "A64 instruction set encoding",
    // group "Loads and Stores" (op0 = x1x0 in bits [28:25]).
    public static class LoadStoreDecoder
    {
        public static LoadStoreInstruction Decode(uint insn)
        {
            // Top-level group "Loads and Stores": bit 27 = 1, bit 25 = 0.
            if ((insn & 0x0a000000) != 0x08000000) return default;

            // Bits [29:27] = 111, [25:24] = 01: Load/store register (unsigned immediate).
            if ((insn & 0x3b000000) == 0x39000000) return UnsignedImmediate(insn);
            // Bits [29:27] = 111, [25:24] = 00, bit 21 = 0: the imm9 classes
            // (unscaled immediate, immediate post-indexed, unprivileged, immediate pre-indexed).
            if ((insn & 0x3b200000) == 0x38000000) return NineBitImmediate(insn);
            // ... bit 21 = 1, bits [11:10] = 10: Load/store register (register offset).
            if ((insn & 0x3b200c00) == 0x38200800) return RegisterOffset(insn);
            // LDAPR/LDAPRB/LDAPRH, which live among the Atomic memory operations
            // (o3 = 1, opc = 100, Rs = 11111).
            if ((insn & 0x3ffffc00) == 0x38bfc000) return LoadAcquirePc(insn);
            // Bits [29:27] = 101, bit 25 = 0: the Load/store pair classes.
            if ((insn & 0x3a000000) == 0x28000000) return Pair(insn);
            // Bits [29:24] = 001000, o2 (bit 23) = 1, o1 (bit 21) = 0: Load/store
            // ordered (LDAR/STLR, and LDLAR/STLLR when o0 = 0). o2 = 0 would be
            // the exclusives, o1 = 1 compare-and-swap: both left Unsupported.
            if ((insn & 0x3fa00000) == 0x08800000) return Ordered(insn);
            // Bits [29:24] = 011001, bit 21 = 0, bits [11:10] = 00:
            // LDAPR/STLR (unscaled immediate), i.e. LDAPUR*/STLUR*.
            if ((insn & 0x3f200c00) == 0x19000000) return RcpcUnscaledImmediate(insn);

            return default;
        }

        // Load/store register (unsigned immediate): LDR x1, [x2, #8].
        // imm12 counts elements, so it is scaled by the access size.
        private static LoadStoreInstruction UnsignedImmediate(uint insn)
        {
            LoadStoreInstruction r = default;
            if (IsSimdAndFp(insn) || !SingleRegister(Size(insn), Opc(insn), ref r)) return default;
            r.Rt = Rt(insn);
            r.Rn = Rn(insn);
            r.Mode = IndexMode.Offset;
            r.Offset = (long)(Field(insn, 10, 12) << (int)Size(insn));
            return Checked(r);
        }

        // Unscaled (LDUR), post-indexed, unprivileged (LDTR) and pre-indexed:
        // a signed, unscaled imm9 in bits [20:12]; bits [11:10] pick the form.
        private static LoadStoreInstruction NineBitImmediate(uint insn)
        {
            LoadStoreInstruction r = default;
            if (IsSimdAndFp(insn) || !SingleRegister(Size(insn), Opc(insn), ref r)) return default;
            r.Rt = Rt(insn);
            r.Rn = Rn(insn);
            r.Offset = SignExtend(Field(insn, 12, 9), 9);
            switch (Field(insn, 10, 2))
            {
                case 0: r.Mode = IndexMode.Offset; break;     // LDUR/STUR
                case 1: r.Mode = IndexMode.PostIndex; break;  // LDR x1, [x2], #8
                case 2: r.Mode = IndexMode.Offset; break;     // LDTR/STTR: EL0 permissions
                default: r.Mode = IndexMode.PreIndex; break;  // LDR x1, [x2, #8]!
            }
            // LDTR/STTR check EL0 permissions at stage 1; the CPU did that before
            // the stage-2 fault, so for the hypervisor they are plain accesses.
            return Checked(r);
        }

        // Load/store register (register offset): LDR x1, [x2, w3, sxtw #3].
        private static LoadStoreInstruction RegisterOffset(uint insn)
        {
            LoadStoreInstruction r = default;
            if (IsSimdAndFp(insn) || !SingleRegister(Size(insn), Opc(insn), ref r)) return default;
            switch (Field(insn, 13, 3)) // option
            {
                case 2: r.Extend = IndexExtend.Uxtw; break;
                case 3: r.Extend = IndexExtend.Lsl; break;
                case 6: r.Extend = IndexExtend.Sxtw; break;
                case 7: r.Extend = IndexExtend.Sxtx; break;
                default: return default; // option<1> = 0 is unallocated
            }
            r.Rt = Rt(insn);
            r.Rn = Rn(insn);
            r.Rm = (int)Field(insn, 16, 5);
            r.HasRegisterOffset = true;
            // S (bit 12) says "shift by log2(access size)"; for bytes that is 0 either way.
            r.Shift = Field(insn, 12, 1) != 0 ? (int)Size(insn) : 0;
            r.Mode = IndexMode.Offset;
            return Checked(r);
        }

        // LDAPR{B,H} Wt/Xt, [Xn]: load-acquire with the weaker RCpc ordering.
        private static LoadStoreInstruction LoadAcquirePc(uint insn)
        {
            LoadStoreInstruction r = default;
            if (!SingleRegister(Size(insn), 1, ref r)) return default;
            r.Rt = Rt(insn);
            r.Rn = Rn(insn);
            r.AcquireRelease = true;
            return Checked(r);
        }

        // Load/store ordered: LDAR/STLR (and LDLAR/STLLR). Base only, no offset.
        // Rs (bits [20:16]) and Rt2 (bits [14:10]) are should-be-ones fields;
        // other values are CONSTRAINED UNPREDICTABLE, and we take the UNDEFINED
        // choice (as the GNU disassembler does) rather than guess.
        private static LoadStoreInstruction Ordered(uint insn)
        {
            if (Field(insn, 16, 5) != 31 || Field(insn, 10, 5) != 31) return default;
            LoadStoreInstruction r = default;
            uint isLoad = Field(insn, 22, 1);
            if (!SingleRegister(Size(insn), isLoad, ref r)) return default;
            r.Rt = Rt(insn);
            r.Rn = Rn(insn);
            r.AcquireRelease = true;
            return Checked(r);
        }

        // LDAPR/STLR (unscaled immediate): LDAPUR x1, [x2, #-8]. Same size/opc
        // table as LDUR, including the sign-extending LDAPURS* forms.
        private static LoadStoreInstruction RcpcUnscaledImmediate(uint insn)
        {
            LoadStoreInstruction r = default;
            if (!SingleRegister(Size(insn), Opc(insn), ref r)) return default;
            r.Rt = Rt(insn);
            r.Rn = Rn(insn);
            r.Offset = SignExtend(Field(insn, 12, 9), 9);
            r.AcquireRelease = true;
            return Checked(r);
        }

        // Load/store pair classes: LDP/STP/LDPSW and the no-allocate LDNP/STNP.
        //   opc [31:30]  00 = 32-bit, 01 = LDPSW (loads only), 10 = 64-bit
        //   [24:23]      00 no-allocate offset, 01 post-index, 10 signed offset, 11 pre-index
        //   L [22]       1 = load
        //   imm7 [21:15] signed, scaled by the access size
        private static LoadStoreInstruction Pair(uint insn)
        {
            if (IsSimdAndFp(insn)) return default;
            uint opc = insn >> 30;
            uint form = Field(insn, 23, 2);
            bool load = Field(insn, 22, 1) != 0;

            LoadStoreInstruction r = default;
            r.Kind = load ? MemoryAccessKind.Load : MemoryAccessKind.Store;
            switch (opc)
            {
                case 0:
                    r.AccessSize = 4;
                    r.RegisterWidth = 32;
                    break;
                case 1:
                    // LDPSW; with L = 0 this is STGP (memory tagging), and there is
                    // no no-allocate LDPSW.
                    if (!load || form == 0) return default;
                    r.AccessSize = 4;
                    r.RegisterWidth = 64;
                    r.SignExtend = true;
                    break;
                case 2:
                    r.AccessSize = 8;
                    r.RegisterWidth = 64;
                    break;
                default:
                    return default;
            }
            r.RegisterCount = 2;
            r.Rt = Rt(insn);
            r.Rt2 = (int)Field(insn, 10, 5);
            r.Rn = Rn(insn);
            r.Rm = LoadStoreInstruction.NoRegister;
            r.Offset = SignExtend(Field(insn, 15, 7), 7) * r.AccessSize;
            switch (form)
            {
                case 1: r.Mode = IndexMode.PostIndex; break;
                case 3: r.Mode = IndexMode.PreIndex; break;
                default: r.Mode = IndexMode.Offset; break;
            }
            return Checked(r);
        }

        // The size/opc table shared by the single-register classes (V = 0):
        //   opc 00: store          STRB/STRH/STR (W for size < 3, X for size 3)
        //   opc 01: load           LDRB/LDRH/LDR, zero-extending
        //   opc 10: load signed    LDRSB/LDRSH/LDRSW to an X register
        //           (size 3 here is PRFM, a prefetch: never emulated)
        //   opc 11: load signed    LDRSB/LDRSH to a W register (sizes 0 and 1 only)
        private static bool SingleRegister(uint size, uint opc, ref LoadStoreInstruction r)
        {
            r.AccessSize = 1 << (int)size;
            r.RegisterCount = 1;
            r.Rt2 = LoadStoreInstruction.NoRegister;
            r.Rm = LoadStoreInstruction.NoRegister;
            switch (opc)
            {
                case 0:
                    r.Kind = MemoryAccessKind.Store;
                    r.RegisterWidth = size == 3 ? 64 : 32;
                    return true;
                case 1:
                    r.Kind = MemoryAccessKind.Load;
                    r.RegisterWidth = size == 3 ? 64 : 32;
                    return true;
                case 2:
                    if (size == 3) return false;
                    r.Kind = MemoryAccessKind.Load;
                    r.SignExtend = true;
                    r.RegisterWidth = 64;
                    return true;
                default:
                    if (size >= 2) return false;
                    r.Kind = MemoryAccessKind.Load;
                    r.SignExtend = true;
                    r.RegisterWidth = 32;
                    return true;
            }
        }

        // Reject the register combinations the Arm ARM calls CONSTRAINED
        // UNPREDICTABLE for loads; "treat as UNDEFINED" is one of the permitted
        // behaviours and the only one that needs no extra code:
        //  - a load with writeback into its own base (LDR x1, [x1], #8);
        //  - LDP with both destinations the same register.
        // A store with writeback of its own base stores the original value.
        // Rn = 31 is SP and Rt = 31 is XZR: different registers, no overlap.
        private static LoadStoreInstruction Checked(LoadStoreInstruction r)
        {
            if (r.Kind != MemoryAccessKind.Load) return r;
            if (r.Mode != IndexMode.Offset && r.Rn != 31)
            {
                if (r.Rt == r.Rn) return default;
                if (r.RegisterCount == 2 && r.Rt2 == r.Rn) return default;
            }
            if (r.RegisterCount == 2 && r.Rt == r.Rt2) return default;
            return r;
        }

        // V (bit 26) selects the SIMD&FP register file: not emulated.
        private static bool IsSimdAndFp(uint insn) => Field(insn, 26, 1) != 0;

        private static uint Size(uint insn) => insn >> 30;
        private static uint Opc(uint insn) => Field(insn, 22, 2);
        private static int Rt(uint insn) => (int)Field(insn, 0, 5);
        private static int Rn(uint insn) => (int)Field(insn, 5, 5);

        private static uint Field(uint insn, int lsb, int width) => (insn >> lsb) & ((1u << width) - 1);

        // Treat the top bit of a width-bit field as the sign.
        private static long SignExtend(uint value, int width)
        {
            int unused = 64 - width;
            return ((long)value << unused) >> unused;
        }
    }
}
