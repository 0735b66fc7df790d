using System.Runtime;
using System.Runtime.CompilerServices;
using Hypervisor.Arch;

namespace Hypervisor.Vm
{
    // Everything of a vCPU that is not in the CPU while another VM runs:
    //   Frame: general registers, PC, PSTATE, q16/q17 (what an exit saves),
    //   El1:   the EL1 system registers (its MMU setup, vectors, timer, ...)
    //          and SP_EL0,
    //   Fp:    the SIMD/FP registers.
    // The EL2 view of the VM (VTTBR/VTCR/HCR) lives in VirtualMachine.
    public sealed unsafe class VcpuContext
    {
        public TrapFrame Frame;
        public El1State El1;
        public FpState Fp;

        // Their addresses, taken once: the kernel's heap never moves an
        // object (kernel/Runtime/Heap.cs has no collector), so the switch
        // needs no `fixed` (a pinned local stored and cleared on the stack
        // for each, on every switch).
        private readonly TrapFrame* _frame;
        private readonly El1State* _el1;
        private readonly FpState* _fp;

        public VcpuContext()
        {
            fixed (TrapFrame* f = &Frame) _frame = f;
            fixed (El1State* e = &El1) _el1 = e;
            fixed (FpState* fp = &Fp) _fp = fp;
        }

        [RuntimeImport("*", "vcpu_save")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void Save(TrapFrame* live, TrapFrame* frame, El1State* el1, FpState* fp);
        [RuntimeImport("*", "vcpu_restore")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void Restore(TrapFrame* live, TrapFrame* frame, El1State* el1, FpState* fp);

        // SCTLR_EL1 as after reset: MMU and caches off, RES1 bits set.
        private const ulong SctlrEl1Reset = 0x30d00800;

        // As a CPU comes out of reset into the guest's entry point, with
        // x0 = its device tree (the arm64 Linux boot protocol).
        public void Reset(ulong entry, ulong dtb)
        {
            fixed (TrapFrame* f = &Frame)
            {
                byte* raw = (byte*)f;
                for (int i = 0; i < TrapFrame.Size; i++) raw[i] = 0;
                f->X[0] = dtb;
                f->Elr = entry;
                f->Spsr = Pstate.GuestEntry;
            }
            El1 = default;
            El1.Sctlr = SctlrEl1Reset;
            fixed (FpState* fp = &Fp)
            {
                for (int i = 0; i < 64; i++) fp->Q[i] = 0;
                fp->Fpsr = 0;
                fp->Fpcr = 0;
            }
        }

        // The CPU's guest state (live frame + registers) into this context:
        // one call (boot/context.s vcpu_save), q16/q17 from the live frame.
        public void SaveFrom(TrapFrame* live) => Save(live, _frame, _el1, _fp);

        // This context into the CPU; the exit path's return restores `live`.
        public void RestoreInto(TrapFrame* live) => Restore(live, _frame, _el1, _fp);
    }
}
