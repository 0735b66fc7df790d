using Hypervisor.Arch;
using Hypervisor.Vm;

namespace Hypervisor.Trap
{
    // PSCI as a guest sees it (Arm DEN 0022, reached with HVC because the
    // guest's device tree says method = "hvc"). A VM has one vCPU for now: it
    // is on, CPU_ON for it says ALREADY_ON and for any other id
    // INVALID_PARAMETERS. SYSTEM_OFF stops this VM only; SYSTEM_RESET starts it again from its image.
    public static unsafe class VirtualPsci
    {
        public static ExitAction Handle(VirtualMachine vm, TrapFrame* frame, ulong fid)
        {
            switch (fid)
            {
                case PsciAbi.Version:
                    Hypercalls.Return(frame, PsciAbi.Version1_1);
                    break;
                case PsciAbi.Features:
                    Hypercalls.Error(frame, IsImplemented(frame->X[1]) ? PsciAbi.Success : PsciAbi.NotSupportedCode);
                    break;
                case PsciAbi.CpuOn64:
                    Hypercalls.Error(frame, (frame->X[1] & 0xff00ffffff) == 0 ? PsciAbi.AlreadyOn : PsciAbi.InvalidParameters);
                    break;
                case PsciAbi.AffinityInfo64:
                    if ((frame->X[1] & 0xff00ffffff) == 0) Hypercalls.Return(frame, PsciAbi.AffinityOn);
                    else Hypercalls.Error(frame, PsciAbi.InvalidParameters);
                    break;
                case PsciAbi.MigrateInfoType:
                    Hypercalls.Return(frame, PsciAbi.MigrateNotRequired);
                    break;
                case PsciAbi.CpuOff:
                    return vm.RequestStop("last vCPU called CPU_OFF");
                case PsciAbi.SystemOff:
                    return vm.RequestStop("SYSTEM_OFF");
                case PsciAbi.SystemReset:
                    return ExitAction.Reset;
                default:
                    Hypercalls.Error(frame, PsciAbi.NotSupportedCode);
                    break;
            }
            return ExitAction.Resume;
        }

        private static bool IsImplemented(ulong fid) =>
            fid == PsciAbi.Version || fid == PsciAbi.Features || fid == PsciAbi.CpuOn64 ||
            fid == PsciAbi.AffinityInfo64 || fid == PsciAbi.CpuOff || fid == PsciAbi.SystemOff ||
            fid == PsciAbi.SystemReset || fid == PsciAbi.MigrateInfoType;
    }
}
