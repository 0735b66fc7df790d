using Hypervisor.Mm;

namespace Hypervisor.Vm
{
    // A VM's memory goes back to the host: every frame scrubbed and freed, its
    // stage-2 tables freed, its TLB entries gone.
    public static class VmTeardown
    {
        // Guest memory and stage-2 tables; the root table, the VM object and
        // its VMID stay (SYSTEM_RESET builds the VM again on them).
        public static void ReleaseMemory(VirtualMachine vm)
        {
            if (vm.Stage2 == null) return;
            // First the TLB: after this no CPU can reach the frames through
            // this VMID, so they may go to someone else.
            if (vm.Vmid != 0) Tlb.FlushVm(vm);
            if (vm.Shadow != null) vm.Shadow.Tables.DropAll();
            if (vm.Direct != null) vm.Direct.Reset();
            GuestMemory.ReleaseAll(vm);
            vm.Stage2.Destroy(out _);
        }

        // Everything: memory, tables, root, VMID. The VM object stays for the summary.
        public static void Destroy(VirtualMachine vm)
        {
            ReleaseMemory(vm);
            for (int i = 0; i < vm.Vcpus.Length; i++) vm.Vcpus[i].Debug.Reset();   // their breakpoints leave the CPU too
            if (vm.Shadow != null) vm.Shadow.Release();
            if (vm.Direct != null) vm.Direct.Release();
            if (vm.Stage2Root != 0)
            {
                for (uint i = 0; i < vm.Stage2RootFrames; i++)
                {
                    Kernel.Frames.Free(vm.Stage2Root + i * FrameAllocator.FrameSize, FrameOwner.Hypervisor);
                }
                vm.Stage2Root = 0;
            }
            vm.Stage2 = null;
            if (Scheduler.Vmids != null) Scheduler.Vmids.Release(ref vm.VmidTag);
            vm.Vmid = 0;
            vm.State = VmState.Stopped;
        }
    }
}
