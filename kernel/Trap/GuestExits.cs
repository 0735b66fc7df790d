using Hypervisor.Arch;
using Hypervisor.Console;
using Hypervisor.Vm;

namespace Hypervisor.Trap
{
    // Every VM exit arrives here: one handler per exception class (ESR_EL2.EC).
    // A handler either completes what the guest asked (and the guest resumes
    // where ELR_EL2 points), injects an exception into the guest, or stops that
    // VM. Nothing a guest does reaches Panic.
    public static unsafe class GuestExits
    {
        public static void Handle(TrapFrame* frame, ulong kind)
        {
            VirtualMachine vm = Scheduler.Current;
            vm.Counters.Exits++;

            if (!VectorKind.IsSynchronous(kind))
            {
                // No interrupt is enabled at the physical GIC yet, so an IRQ/FIQ
                // here is spurious; an SError is the guest's fault.
                if ((kind & 3) == 3) Scheduler.StopCurrent("SError from guest");
                return;
            }

            uint ec = ExceptionClass.Of(frame->Esr);
            switch (ec)
            {
                case ExceptionClass.Hvc64:
                    Hypercalls.Handle(vm, frame);
                    break;
                case ExceptionClass.Smc64:
                    // A trapped SMC (HCR_EL2.TSC) returns to the SMC itself: step over it.
                    frame->Elr += 4;
                    Hypercalls.Handle(vm, frame);
                    break;
                case ExceptionClass.DataAbortLowerEl:
                    DataAborts.Handle(vm, frame);
                    break;
                case ExceptionClass.InstructionAbortLowerEl:
                    DataAborts.HandleInstructionFetch(vm, frame);
                    break;
                case ExceptionClass.WfiWfe:
                    // Nothing else to run on this CPU yet: the guest continues.
                    frame->Elr += 4;
                    break;
                case ExceptionClass.SysReg64:
                case ExceptionClass.Unknown:
                    // Nothing is configured to trap system registers; if the
                    // guest gets here it used something this VM does not offer.
                    Injection.UndefinedInstruction(vm, frame);
                    break;
                default:
                    Log.Write("[hv] vm ");
                    Log.Write(vm.Name);
                    Log.Write(": unhandled exit ");
                    Log.Write(ExceptionClass.Name(ec));
                    Log.Write(" ESR_EL2=");
                    Log.Hex(frame->Esr);
                    Log.NewLine();
                    Scheduler.StopCurrent("unhandled exit");
                    break;
            }
        }
    }
}
