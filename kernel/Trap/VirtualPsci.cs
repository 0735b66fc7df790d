using Hypervisor.Arch;
using Hypervisor.Vm;

namespace Hypervisor.Trap
{
    // PSCI as a guest sees it (Arm DEN 0022, reached with HVC because the
    // guest's device tree says method = "hvc"), with the answers real
    // firmware gives:
    //   CPU_ON        an unknown MPIDR: INVALID_PARAMETERS; a vCPU that is on:
    //                 ALREADY_ON; an entry point outside the VM's RAM or not
    //                 word-aligned: INVALID_ADDRESS; else the vCPU starts there
    //                 with x0 = context_id, MMU off, as out of reset.
    //   CPU_OFF       the calling vCPU stops until a CPU_ON; when none of the
    //                 VM's vCPUs is on any more, the VM is over.
    //   AFFINITY_INFO ON or OFF for the vCPUs the affinity names (at level 0
    //                 one vCPU; above, any vCPU whose higher affinity matches).
    //   SYSTEM_OFF    stops this VM only; SYSTEM_RESET starts it again from
    //                 its image (every vCPU leaves its CPU first).
    public static unsafe class VirtualPsci
    {
        public static ExitAction Handle(Vcpu vcpu, TrapFrame* frame, ulong fid)
        {
            VirtualMachine vm = vcpu.Vm;
            switch (fid)
            {
                // PSCI_VERSION never gets here: Hypercalls.Handle answers it
                // (PsciAbi.Version1_1) on the inlined path, with the null call.
                case PsciAbi.Features:
                    Hypercalls.Error(frame, IsImplemented(frame->X[1]) ? PsciAbi.Success : PsciAbi.NotSupportedCode);
                    break;
                case PsciAbi.CpuOn64:
                case PsciAbi.CpuOn32:
                    Hypercalls.Error(frame, CpuOn(vm, Argument(frame, 1, fid), Argument(frame, 2, fid), Argument(frame, 3, fid)));
                    break;
                case PsciAbi.AffinityInfo64:
                case PsciAbi.AffinityInfo32:
                    AffinityInfo(vm, frame, Argument(frame, 1, fid), Argument(frame, 2, fid));
                    break;
                case PsciAbi.MigrateInfoType:
                    Hypercalls.Return(frame, PsciAbi.MigrateNotRequired);
                    break;
                case PsciAbi.CpuOff:
                    return CpuOff(vcpu);
                case PsciAbi.SystemOff:
                    return vm.RequestStop("SYSTEM_OFF");
                case PsciAbi.SystemReset:
                    return vm.RequestReset();
                default:
                    Hypercalls.Error(frame, PsciAbi.NotSupportedCode);
                    break;
            }
            return ExitAction.Resume;
        }

        // An SMC32/HVC32 function (bit 30 clear) takes 32-bit arguments.
        private static ulong Argument(TrapFrame* frame, int n, ulong fid) =>
            (fid & (1UL << 30)) != 0 ? frame->X[n] : frame->X[n] & 0xffffffff;

        private static long CpuOn(VirtualMachine vm, ulong target, ulong entry, ulong context)
        {
            Vcpu vcpu = vm.VcpuByMpidr(target);
            if (vcpu == null || (target & ~Hypervisor.Smp.Cpus.AffinityMask) != 0) return PsciAbi.InvalidParameters;
            if (vcpu.PoweredOn || vm.HasRequest) return PsciAbi.AlreadyOn;
            if ((entry & 3) != 0 || !vm.IsRam(entry)) return PsciAbi.InvalidAddress;
            // Its registers are its own to set: off, it runs nowhere (a CPU
            // still putting it down after its CPU_OFF saves none of them).
            vcpu.Context.Reset(entry, context);
            vcpu.PoweredOn = true;
            Scheduler.Notice(vcpu);
            return PsciAbi.Success;
        }

        // The vCPU is off from now on for the guest (AFFINITY_INFO says so);
        // the run loop takes it out of its CPU. The last one off ends the VM,
        // as KVM ends a VM whose vCPUs are all off.
        private static ExitAction CpuOff(Vcpu vcpu)
        {
            VirtualMachine vm = vcpu.Vm;
            vcpu.PoweredOn = false;
            for (int i = 0; i < vm.Vcpus.Length; i++) if (vm.Vcpus[i].PoweredOn) return ExitAction.Off;
            return vm.RequestStop(vm.Vcpus.Length == 1 ? "last vCPU called CPU_OFF" : "every vCPU called CPU_OFF");
        }

        // Affinity levels: 0 = Aff0 .. 3 = Aff3 (MPIDR bits 39:32).
        private static void AffinityInfo(VirtualMachine vm, TrapFrame* frame, ulong target, ulong level)
        {
            if (level > 3 || (target & ~Hypervisor.Smp.Cpus.AffinityMask) != 0)
            {
                Hypercalls.Error(frame, PsciAbi.InvalidParameters);
                return;
            }
            ulong ignored = level == 0 ? 0 : level == 1 ? 0xffUL : level == 2 ? 0xffffUL : 0xffffffUL;
            bool any = false, on = false;
            for (int i = 0; i < vm.Vcpus.Length; i++)
            {
                if ((vm.Vcpus[i].Mpidr & ~ignored) != (target & ~ignored)) continue;
                any = true;
                on |= vm.Vcpus[i].PoweredOn;
            }
            if (!any) Hypercalls.Error(frame, PsciAbi.InvalidParameters);
            else Hypercalls.Return(frame, on ? PsciAbi.AffinityOn : PsciAbi.AffinityOff);
        }

        private static bool IsImplemented(ulong fid) =>
            fid == PsciAbi.Version || fid == PsciAbi.Features || fid == PsciAbi.CpuOn64 || fid == PsciAbi.CpuOn32 ||
            fid == PsciAbi.AffinityInfo64 || fid == PsciAbi.AffinityInfo32 || fid == PsciAbi.CpuOff ||
            fid == PsciAbi.SystemOff || fid == PsciAbi.SystemReset || fid == PsciAbi.MigrateInfoType;
    }
}
