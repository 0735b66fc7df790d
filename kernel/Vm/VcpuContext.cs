using System.Runtime;
using System.Runtime.CompilerServices;
using Hypervisor.Arch;

namespace Hypervisor.Vm
{
    // Everything of a vCPU that is not in the CPU while another VM runs:
    //   Frame: general registers, PC, PSTATE, q16/q17. Every exit saves
    //          them here directly (boot/vectors.s: SP_EL2 points at this
    //          frame while the vCPU runs), so a handler reads and changes
    //          the guest's registers in place, and a switch moves none.
    //   El1:   the EL1 system registers (its MMU setup, vectors, timer, ...)
    //          and SP_EL0,
    //   Fp:    the other SIMD/FP registers.
    // The EL2 view of the VM (VTTBR/VTCR/HCR) lives in VirtualMachine.
    public sealed unsafe class VcpuContext
    {
        public El1State El1;
        public FpState Fp;

        // The frame's room: SP_EL2 points at it, and SP must be 16-byte
        // aligned; the heap aligns objects to 8 only, so the frame starts
        // at the first 16-byte boundary inside.
        private FrameRoom _room;
        private struct FrameRoom { public fixed byte Bytes[TrapFrame.Size + 8]; }

        // Their addresses, taken once: the kernel's heap never moves an
        // object (kernel/Runtime/Heap.cs has no collector), so the switch
        // needs no `fixed` (a pinned local stored and cleared on the stack
        // for each, on every switch).
        private readonly TrapFrame* _frame;
        private readonly El1State* _el1;
        private readonly FpState* _fp;

        public VcpuContext()
        {
            fixed (FrameRoom* room = &_room) _frame = (TrapFrame*)(((ulong)room + 15) & ~15UL);
            fixed (El1State* e = &El1) _el1 = e;
            fixed (FpState* fp = &Fp) _fp = fp;
        }

        public TrapFrame* Frame => _frame;

        [RuntimeImport("*", "vcpu_save")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void SaveRegisters(El1State* el1, FpState* fp);
        [RuntimeImport("*", "vcpu_restore")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void RestoreRegisters(El1State* el1, FpState* fp);

        // SCTLR_EL1 as after reset: MMU and caches off, RES1 bits set.
        private const ulong SctlrEl1Reset = 0x30d00800;

        // As a CPU comes out of reset into the guest's entry point, with
        // x0 = its device tree (the arm64 Linux boot protocol).
        public void Reset(ulong entry, ulong dtb)
        {
            TrapFrame* f = _frame;
            byte* raw = (byte*)f;
            for (int i = 0; i < TrapFrame.Size; i++) raw[i] = 0;
            f->X[0] = dtb;
            f->Elr = entry;
            f->Spsr = Pstate.GuestEntry;
            El1 = default;
            El1.Sctlr = SctlrEl1Reset;
            Fp = default;
        }

        // The guest state in the CPU (EL1 and SIMD/FP registers) into this
        // context: one call (boot/context.s vcpu_save). Its frame is here already.
        public void Save() => SaveRegisters(_el1, _fp);

        // This context into the CPU; the exit path's return then loads the frame.
        public void Restore() => RestoreRegisters(_el1, _fp);
    }
}
