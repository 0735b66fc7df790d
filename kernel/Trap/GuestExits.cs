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
            if (vm.VgicCpu.Listed != 0) vm.VgicCpu.Sync();

            if (!VectorKind.IsSynchronous(kind))
            {
                if ((kind & 3) == 3)
                {
                    Scheduler.StopCurrent("SError from guest");
                    return;
                }
                vm.Counters.ExitsIrq++;
                PhysicalInterrupt(frame);
                return;
            }

            uint ec = ExceptionClass.Of(frame->Esr);
            switch (ec)
            {
                case ExceptionClass.Hvc64:
                    vm.Counters.ExitsHvc++;
                    Hypercalls.Handle(vm, frame);
                    break;
                case ExceptionClass.Smc64:
                    // A trapped SMC (HCR_EL2.TSC) returns to the SMC itself: step over it.
                    vm.Counters.ExitsSmc++;
                    frame->Elr += 4;
                    Hypercalls.Handle(vm, frame);
                    break;
                case ExceptionClass.DataAbortLowerEl:
                    vm.Counters.ExitsDataAbort++;
                    DataAborts.Handle(vm, frame);
                    break;
                case ExceptionClass.InstructionAbortLowerEl:
                    vm.Counters.ExitsInstructionAbort++;
                    DataAborts.HandleInstructionFetch(vm, frame);
                    break;
                case ExceptionClass.WfiWfe:
                    // The guest has nothing to do until an interrupt: a good
                    // moment to let another VM run. Alone, a guest waiting for
                    // its own timer lets the CPU go idle until an interrupt
                    // (its timer, or the next slice tick) instead of spinning.
                    vm.Counters.ExitsWfx++;
                    frame->Elr += 4;
                    if (Scheduler.OthersRunnable()) Scheduler.Yield(frame);
                    else if (vm.VgicCpu != null && !vm.VgicCpu.HasWork() && WaitsForItsTimer()) Idle();
                    break;
                case ExceptionClass.SysReg64:
                    vm.Counters.ExitsSysReg++;
                    SystemRegisterTraps.Handle(vm, frame);
                    break;
                case ExceptionClass.Unknown:
                    // An instruction this VM does not offer.
                    vm.Counters.ExitsSysReg++;
                    Injection.UndefinedInstruction(vm, frame);
                    break;
                default:
                    vm.Counters.ExitsOther++;
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

        // A physical IRQ taken while a guest ran (HCR_EL2.IMO):
        //   the EL2 timer          -> the running VM's slice is over;
        //   the virtual timer      -> the running VM's own timer fired: it is
        //                             masked (CNTV_CTL_EL0.IMASK, which the
        //                             guest's handler rewrites anyway) so the
        //                             level does not fire again at once, and
        //                             the virtual GIC presents it to the guest;
        //   the maintenance IRQ    -> list registers ran low: they are
        //                             refilled on the way back in.
        private static void PhysicalInterrupt(TrapFrame* frame)
        {
            uint intid = Gic.Acknowledge();
            if (intid == Gic.SpuriousIntid) return;
            if (intid == Gic.HypTimerIntid)
            {
                Scheduler.Yield(frame);              // re-arms the timer before the EOI below
            }
            else if (intid == Gic.VirtualTimerIntid)
            {
                // Only if this VM's timer really fires: the interrupt may have
                // been raised by the previous VM's timer just before the switch
                // (its condition is checked again when that VM runs next).
                ulong ctl = SysReg.ReadCntvCtlEl0();
                if ((ctl & (CntvEnable | CntvImask | CntvStatus)) == (CntvEnable | CntvStatus))
                {
                    SysReg.WriteCntvCtlEl0(ctl | CntvImask);
                    Scheduler.Current.Vgic.Raise((int)Gic.VirtualTimerIntid);
                }
            }
            Gic.EndOfInterrupt(intid);
        }

        private const ulong CntvImask = 1UL << 1, CntvEnable = 1, CntvStatus = 1UL << 2;

        // The CPU has nothing to run until an interrupt. First the work that
        // waits for such moments: freed frames are scrubbed, a few at a time,
        // for as long as no interrupt is pending (the interrupt then waits one
        // step, about 2,500 instructions). Then WFI: the CPU sleeps at EL2.
        private const uint IdleScrubStep = 16;
        private const ulong IsrIrqPending = 1UL << 7;

        private static void Idle()
        {
            while ((SysReg.ReadIsrEl1() & IsrIrqPending) == 0 && Kernel.Frames.ScrubSome(IdleScrubStep) != 0) { }
            Cpu.WaitForInterrupt();
        }

        private static bool WaitsForItsTimer() => (SysReg.ReadCntvCtlEl0() & (CntvEnable | CntvImask)) == CntvEnable;
    }
}
