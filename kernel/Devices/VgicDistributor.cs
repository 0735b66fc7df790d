using Hypervisor.Vm;

namespace Hypervisor.Devices
{
    // The guest's GICv3 distributor (GICD_*, Arm IHI 0069 chapter 12.9) at
    // 0x08000000, as on QEMU virt. It owns the SPIs (INTID 32 and up); with
    // affinity routing on (ARE = 1) the SGIs and PPIs live in the
    // redistributor, so here their banked registers read as zero and ignore
    // writes. The state itself is in VgicState, shared with VgicRedistributor.
    //
    // Offsets nothing is implemented at read as zero and ignore writes, as a
    // real GIC's reserved space does; only an access of the wrong size or
    // alignment to a real register aborts.
    public sealed class VgicDistributor : MmioDevice
    {
        public const ulong DefaultBase = 0x0800_0000, FrameSize = 0x10000;

        private const ulong Ctlr = 0x0000, Typer = 0x0004, Iidr = 0x0008, Pidr2 = 0xffe8;
        private const ulong IrouterBase = 0x6000, IrouterEnd = 0x7fe0;    // IROUTER<32..1019>

        // Registers shared with the redistributor's SGI_base frame, same layout.
        private const ulong Igroupr = 0x080, Isenabler = 0x100, Ispendr = 0x200;
        private const ulong Ipriorityr = 0x400, Itargetsr = 0x800, Icfgr = 0xc00, BlockEnd = 0xd00;

        // GICD_TYPER: ITLinesNumber (4:0) = SpiCount/32 gives INTIDs up to
        // 32*(N+1)-1 = 95; IDbits (23:19) = 9, ten bits of INTID; No1N (25):
        // no "any PE" routing; CPUNumber (7:5) is the vCPU count less one;
        // no LPIs, no message-based SPIs, no security extension.
        public const uint TyperValue = (VgicState.SpiCount / 32) | (9u << 19) | (1u << 25);
        public uint TyperRegister => TyperValue | (uint)((State.VcpuCount - 1) & 7) << 5;
        // IIDR: ProductID 'H' (31:24), implementer Arm's JEP106 code 0x43B.
        public const uint IidrValue = 0x4800_043b;
        // PIDR2: ArchRev 3 (GICv3) in 7:4, JEDEC-assigned bit 3, JEP106 bits 2:0.
        public const uint Pidr2Value = 0x3b;

        public readonly VgicState State;

        public VgicDistributor(VgicState state, ulong baseAddress = DefaultBase) : base(baseAddress, FrameSize)
        {
            State = state;
        }

        public override bool Read(VirtualMachine vm, ulong offset, int size, out ulong value) => ReadRegister(offset, size, out value);
        public override bool Write(VirtualMachine vm, ulong offset, int size, ulong value) => WriteRegister(offset, size, value);

        // The register decoding without a VM, so host tests reach it directly.
        public bool ReadRegister(ulong offset, int size, out ulong value)
        {
            value = 0;
            return Access(offset, size, false, ref value);
        }

        public bool WriteRegister(ulong offset, int size, ulong value) => Access(offset, size, true, ref value);

        private bool Access(ulong offset, int size, bool write, ref ulong value)
        {
            if (offset == Ctlr || offset == Typer || offset == Iidr || offset == Pidr2)
            {
                if (!Is32(offset, size)) return false;
                if (write)
                {
                    // EnableGrp0/EnableGrp1 are writable; ARE and DS are RAO/WI, RWP reads 0.
                    if (offset == Ctlr) State.WriteDistributorControl((uint)value);
                    return true;
                }
                value = offset == Ctlr ? State.DistributorControl
                      : offset == Typer ? TyperRegister
                      : offset == Iidr ? IidrValue : Pidr2Value;
                return true;
            }
            if (offset >= Igroupr && offset < BlockEnd)
                return AccessInterruptRegister(State, offset, size, write, ref value, VgicState.FirstSpi, VgicState.IntidCount);
            if (offset >= IrouterBase && offset < IrouterEnd) return AccessRouter(offset, size, write, ref value);
            return true;                                    // reserved: RAZ/WI
        }

        internal static bool Is32(ulong offset, int size) => size == 4 && (offset & 3) == 0;

        // GICD_IROUTER<n>: 64-bit, also reachable as two 32-bit halves
        // (IHI 0069 12.1.3 allows 32-bit access to 64-bit GIC registers).
        // n < 32 is reserved with ARE = 1.
        private bool AccessRouter(ulong offset, int size, bool write, ref ulong value)
        {
            if (!((size == 8 && (offset & 7) == 0) || Is32(offset, size))) return false;
            int intid = (int)((offset - IrouterBase) >> 3);
            if (intid < VgicState.FirstSpi) return true;
            int shift = (offset & 4) != 0 ? 32 : 0;
            ulong current = State.ReadRouter(intid);
            if (!write)
            {
                value = size == 8 ? current : (current >> shift) & 0xffffffff;
                return true;
            }
            if (size == 4) value = (current & ~(0xfffffffful << shift)) | ((value & 0xffffffff) << shift);
            State.WriteRouter(intid, value);
            return true;
        }

        // The per-interrupt registers from IGROUPR (0x080) to ICFGR (0xCFF),
        // laid out alike in GICD and in the redistributor's SGI_base frame.
        // Only INTIDs in [first, end) are this frame's; the rest read as zero and
        // ignore writes. `offset` is relative to the frame holding the block.
        internal static bool AccessInterruptRegister(VgicState state, ulong offset, int size, bool write, ref ulong value, int first, int end)
        {
            if (offset >= Ipriorityr && offset < Itargetsr)
            {
                // IPRIORITYR<n>: one byte per INTID, byte or word access.
                if ((size != 1 && size != 4) || (offset & (ulong)(size - 1)) != 0) return false;
                int intid = (int)(offset - Ipriorityr);
                if (!write) value = 0;
                for (int i = 0; i < size; i++)
                {
                    if (intid + i < first || intid + i >= end) continue;
                    if (write) state.WritePriority(intid + i, (byte)(value >> (8 * i)));
                    else value |= (ulong)state.ReadPriority(intid + i) << (8 * i);
                }
                return true;
            }
            if (offset >= Itargetsr && offset < Icfgr) return true;   // ITARGETSR: RAZ/WI when ARE = 1
            if (!Is32(offset, size)) return false;
            uint v = (uint)value;
            if (offset >= Icfgr)
            {
                int register = (int)(offset - Icfgr) >> 2;             // 16 INTIDs per ICFGR
                if (register * 16 < first || register * 16 >= end) { if (!write) value = 0; return true; }
                if (write) state.WriteConfig(register, v);
                else value = state.ReadConfig(register);
                return true;
            }
            // IGROUPR, IS/ICENABLER, IS/ICPENDR, IS/ICACTIVER: 32 INTIDs a word,
            // each kind 0x100 bytes: a set half (0x00-0x7F) then a clear half.
            ulong block = offset & ~0xfful;                            // 0x000 for IGROUPR's 0x080
            bool setHalf = (offset & 0x80) == 0;
            int word = (int)(offset & 0x7f) >> 2;
            if (word * 32 < first || word * 32 >= end) { if (!write) value = 0; return true; }
            VgicBit kind = block == 0 ? VgicBit.Group : block == Isenabler ? VgicBit.Enable
                         : block == Ispendr ? VgicBit.Pending : VgicBit.Active;
            if (!write) { value = state.Read(kind, word); return true; }
            if (kind == VgicBit.Group)
            {
                // IGROUPR is read/write, not set/clear.
                state.Write(VgicBit.Group, word, v, true);
                state.Write(VgicBit.Group, word, ~v, false);
            }
            else state.Write(kind, word, v, setHalf);
            return true;
        }
    }
}
