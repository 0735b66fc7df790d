using Hypervisor.Arch;
using Hypervisor.Mm;
using Hypervisor.Vm;

namespace Hypervisor.Paging
{
    // The guest's translation as the guest itself defines it, whatever the
    // MMU really walks: the registers it wrote and the stage 2 that gives its
    // table addresses meaning. The hypervisor uses it to read guest memory by
    // GVA (fetching an instruction to decode, the walk hypercall).
    //
    //   stage2 : live TTBRs          over the GPA -> HPA stage 2
    //   shadow : the guest's TTBRs   over the GPA -> HPA stage 2 (the real ones name shadows)
    //   direct : live TTBRs          over the identity map (its tables hold HPAs)
    public static class GuestView
    {
        public static void Registers(VirtualMachine vm, bool running, out GuestTranslationRegisters regs)
        {
            Live(vm, running, out regs);
            if (vm.Shadow != null && vm.ActiveStage2Root != vm.Stage2Root)
            {
                regs.Ttbr0El1 = vm.Shadow.GuestTtbr0;
                regs.Ttbr1El1 = vm.Shadow.GuestTtbr1;
                regs.TcrEl1 = vm.Shadow.GuestTcr;
            }
        }

        // The registers as the CPU has them: in the CPU while the VM runs, in
        // its saved vCPU context otherwise.
        private static void Live(VirtualMachine vm, bool running, out GuestTranslationRegisters regs)
        {
            if (running)
            {
                regs.Ttbr0El1 = SysReg.ReadTtbr0El1();
                regs.Ttbr1El1 = SysReg.ReadTtbr1El1();
                regs.TcrEl1 = SysReg.ReadTcrEl1();
            }
            else
            {
                // Not in this CPU: vCPU 0's saved registers (the monitor's view).
                regs.Ttbr0El1 = vm.Vcpus[0].Context.El1.Ttbr0;
                regs.Ttbr1El1 = vm.Vcpus[0].Context.El1.Ttbr1;
                regs.TcrEl1 = vm.Vcpus[0].Context.El1.Tcr;
            }
        }

        public static Stage2Table Stage2(VirtualMachine vm) =>
            vm.Direct != null && vm.ActiveStage2Root != vm.Stage2Root ? vm.Direct.Identity.Table : vm.Stage2;

        // What the MMU itself walks: the live registers over the active stage 2.
        public static void Hardware(VirtualMachine vm, bool running, out GuestTranslationRegisters regs, out Stage2Table stage2)
        {
            Live(vm, running, out regs);
            stage2 = vm.ActiveStage2Root == vm.Stage2Root ? vm.Stage2
                   : vm.Shadow != null ? vm.Shadow.Identity.Table : vm.Direct.Identity.Table;
        }
    }
}
