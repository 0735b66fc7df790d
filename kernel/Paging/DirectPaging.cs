using Hypervisor.Arch;
using Hypervisor.Trap;
using Hypervisor.Vm;

namespace Hypervisor.Paging
{
    // paging=direct (para-virtualized). Filled in below.
    public sealed unsafe class DirectPaging
    {
        private readonly VirtualMachine _vm;
        public IdentityMap Identity;

        public DirectPaging(VirtualMachine vm) { _vm = vm; }

        public bool Start()
        {
            if (Identity == null) Identity = IdentityMap.Create(_vm);
            return Identity != null;
        }

        public void Reset() { }

        public bool OwnsHostRam(ulong hpa) => hpa >= Hypervisor.Kernel.Frames.Base;

        public void Release()
        {
            if (Identity != null) Identity.Destroy();
            Identity = null;
        }

        public void Hypercall(VirtualMachine vm, TrapFrame* frame, ulong fid) { Hypercalls.Error(frame, HypercallAbi.NotSupported); }

        public bool Write(VirtualMachine vm, TrapFrame* frame, TranslationRegister reg, ulong value)
        {
            TranslationRegisters.WriteReal(reg, value);
            return true;
        }
    }
}
