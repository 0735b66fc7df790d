using Hypervisor.Vm;

namespace Hypervisor.Devices
{
    // One vCPU's GICv3 redistributor (GICR_*, Arm IHI 0069 chapter 12.10):
    // vCPU n's at 0x080A0000 + n * 128 KiB, as on QEMU virt. Two 64 KiB frames, RD_base (control,
    // identification, power) then SGI_base (the SGIs' and PPIs' enable,
    // pending, active, priority and config registers: INTIDs 0-31). Shares its
    // VgicState with the distributor. Reserved offsets are RAZ/WI; a wrong-size
    // access to a real register aborts.
    public sealed class VgicRedistributor : MmioDevice
    {
        public const ulong DefaultBase = 0x080a_0000, FrameSize = 0x20000, SgiBase = 0x10000;

        // RD_base frame.
        private const ulong Ctlr = 0x0000, Iidr = 0x0004, Typer = 0x0008, Waker = 0x0014, Pidr2 = 0xffe8;
        // SGI_base frame, relative to SgiBase.
        private const ulong Igroupr0 = 0x080, Icfgr1End = 0xc08, Igrpmodr0 = 0x0d00;

        // GICR_TYPER: Affinity_Value (63:32) = the vCPU's MPIDR affinity
        // (Aff3.Aff2.Aff1.Aff0), Processor_Number (23:8) = its index, Last
        // (bit 4) on the last vCPU's; no physical or virtual LPIs.
        public const ulong LastBit = 1ul << 4;
        public readonly ulong TyperValue;

        // GICR_WAKER: ProcessorSleep (bit 1) read/write, ChildrenAsleep (bit 2)
        // follows it at once; there is nothing to quiesce.
        private const uint WakerProcessorSleep = 1u << 1, WakerChildrenAsleep = 1u << 2;

        public readonly VgicState State;

        // vCPU `index` of `count`, with MPIDR affinity `mpidr`.
        public VgicRedistributor(VgicState state, int index = 0, int count = 1, ulong mpidr = 0)
            : base(DefaultBase + (ulong)index * FrameSize, FrameSize)
        {
            State = state;
            ulong affinity = (mpidr & 0xffffff) | ((mpidr >> 32) & 0xff) << 24;
            TyperValue = affinity << 32 | (ulong)index << 8 | (index == count - 1 ? LastBit : 0);
        }

        public override bool Read(VirtualMachine vm, ulong offset, int size, out ulong value) => ReadRegister(offset, size, out value);
        public override bool Write(VirtualMachine vm, ulong offset, int size, ulong value) => WriteRegister(offset, size, value);

        public bool ReadRegister(ulong offset, int size, out ulong value)
        {
            value = 0;
            return offset >= SgiBase ? AccessSgiFrame(offset - SgiBase, size, false, ref value) : AccessRdFrame(offset, size, false, ref value);
        }

        public bool WriteRegister(ulong offset, int size, ulong value) =>
            offset >= SgiBase ? AccessSgiFrame(offset - SgiBase, size, true, ref value) : AccessRdFrame(offset, size, true, ref value);

        private bool AccessRdFrame(ulong offset, int size, bool write, ref ulong value)
        {
            if (offset == Typer || offset == Typer + 4)
            {
                // 64-bit register; a 32-bit access reads either half. Read-only.
                if (!((size == 8 && offset == Typer) || VgicDistributor.Is32(offset, size))) return false;
                if (!write) value = size == 8 ? TyperValue : (TyperValue >> (int)(8 * (offset - Typer))) & 0xffffffff;
                return true;
            }
            if (offset != Ctlr && offset != Iidr && offset != Waker && offset != Pidr2) return true;    // RAZ/WI
            if (!VgicDistributor.Is32(offset, size)) return false;
            if (offset == Waker)
            {
                if (write) State.ProcessorSleep = (value & WakerProcessorSleep) != 0;
                else value = State.ProcessorSleep ? WakerProcessorSleep | WakerChildrenAsleep : 0;
                return true;
            }
            // GICR_CTLR: no LPIs to enable, RWP/UWP read 0, so RAZ/WI. IIDR and PIDR2 read-only.
            if (!write) value = offset == Iidr ? VgicDistributor.IidrValue : offset == Pidr2 ? VgicDistributor.Pidr2Value : 0;
            return true;
        }

        private bool AccessSgiFrame(ulong offset, int size, bool write, ref ulong value)
        {
            // GICR_IGROUPR0 .. GICR_ICFGR1: the distributor's layout, INTIDs 0-31.
            // GICR_ICFGR0 reads 0xAAAAAAAA (SGIs are edge) and ignores writes;
            // VgicState enforces that.
            if (offset >= Igroupr0 && offset < Icfgr1End)
                return VgicDistributor.AccessInterruptRegister(State, offset, size, write, ref value, 0, VgicState.FirstSpi);
            // GICR_IGRPMODR0: with one security state there is no group modifier.
            if (offset == Igrpmodr0) return VgicDistributor.Is32(offset, size);
            return true;                                    // reserved: RAZ/WI
        }
    }
}
