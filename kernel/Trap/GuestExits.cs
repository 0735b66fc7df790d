using Hypervisor.Arch;
using Hypervisor.Console;
using Hypervisor.Vm;

namespace Hypervisor.Trap
{
    // Every VM exit arrives here: one handler per exception class (ESR_EL2.EC).
    // A handler either completes what the guest asked (and the guest resumes
    // where ELR_EL2 points), injects an exception into the guest, or decides
    // the vCPU must yield, wait, stop or reset: it returns that decision
    // (kernel/Vm/ExitAction.cs) and the run loop acts on it. Nothing a guest
    // does reaches Panic.
    public static unsafe class GuestExits
    {
        // Inlined into the exit path (kernel/Trap/TrapEntry.cs): a hypercall
        // pays for one frame of calls, no more (docs/performance.md).
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        public static ExitAction Handle(Vcpu vcpu, TrapFrame* frame, ulong kind)
        {
            // With list registers in use: the timer's line first (Sync
            // withdraws an untaken interrupt whose line went low), then what
            // the guest did with them. A high timer line is listed, or the
            // guest disabled INTID 27, in which case a stale line costs at most
            // one spurious interrupt once it enables it again (its EOI samples).
            if (vcpu.VgicCpu.Listed != 0) SyncListed(vcpu);
            // The most frequent exception classes are tested before Other's
            // switch, in the order a guest makes them: hypercalls (a
            // paravirtualized guest), stage-2 aborts (demand faults, MMIO),
            // system registers (a booting Linux reads ID registers).
            if (VectorKind.IsSynchronous(kind))
            {
                uint ec = ExceptionClass.Of(frame->Esr);
                if (ec == ExceptionClass.Hvc64)
                {
                    vcpu.Vm.Counters.ExitsHvc++;
                    return Hypercalls.Handle(vcpu, frame);
                }
                if (ec == ExceptionClass.DataAbortLowerEl)
                {
                    VirtualMachine vm = vcpu.Vm;
                    vm.Counters.ExitsDataAbort++;
                    DataAborts.Handle(vm, frame);
                    return ExitAction.Resume;
                }
                if (ec == ExceptionClass.SysReg64)
                {
                    vcpu.Vm.Counters.ExitsSysReg++;
                    SystemRegisterTraps.Handle(vcpu, frame);
                    return ExitAction.Resume;
                }
            }
            return Other(vcpu, frame, kind);
        }

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
        private static void SyncListed(Vcpu vcpu)
        {
            if (vcpu.Timers.VirtualHigh) vcpu.Timers.SampleVirtual();
            vcpu.VgicCpu.Sync();
        }

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
        private static ExitAction Other(Vcpu vcpu, TrapFrame* frame, ulong kind)
        {
            VirtualMachine vm = vcpu.Vm;
            if (!VectorKind.IsSynchronous(kind))
            {
                if ((kind & 3) == 3) return vm.RequestStop("SError from guest");
                vm.Counters.ExitsIrq++;
                return PhysicalInterrupt();
            }

            uint ec = ExceptionClass.Of(frame->Esr);
            switch (ec)
            {
                case ExceptionClass.Smc64:
                    // A trapped SMC (HCR_EL2.TSC) returns to the SMC itself: step over it.
                    vm.Counters.ExitsSmc++;
                    frame->Elr += 4;
                    return Hypercalls.Handle(vcpu, frame);
                case ExceptionClass.InstructionAbortLowerEl:
                    vm.Counters.ExitsInstructionAbort++;
                    DataAborts.HandleInstructionFetch(vm, frame);
                    break;
                case ExceptionClass.WfiWfe:
                    // WFI: the guest has nothing to do until an interrupt. If
                    // one is there already the WFI completes; else the VM
                    // waits (kernel/Vm/Scheduler.cs) until one is pending for
                    // it, and the CPU goes to another VM or idles.
                    // WFE: a guest spinning on a lock or a flag: it gives the
                    // CPU to another VM if there is one, and carries on.
                    vm.Counters.ExitsWfx++;
                    if (ExceptionClass.IsWfxWithTimeout(frame->Esr))
                    {
                        Injection.UndefinedInstruction(vm, frame);   // WFIT, WFET: hidden
                        break;
                    }
                    frame->Elr += ExceptionVectors.InstructionLength(frame->Esr);
                    if (ExceptionClass.IsWfe(frame->Esr)) return ExitDecision.ForYield(Scheduler.OthersRunnable());
                    return ExitDecision.ForWfi(vcpu.VgicCpu.HasWork());
                case ExceptionClass.Unknown:
                    // An instruction this VM does not offer.
                    vm.Counters.ExitsSysReg++;
                    Injection.UndefinedInstruction(vm, frame);
                    break;
                default:
                    vm.Counters.ExitsOther++;
                    if (ExceptionClass.IsAbsentFeature(ec))
                    {
                        Injection.UndefinedInstruction(vm, frame);
                        break;
                    }
                    Log.Write("[hv] vm ");
                    Log.Write(vm.Name);
                    Log.Write(": unhandled exit ");
                    Log.Write(ExceptionClass.Name(ec));
                    Log.Write(" ESR_EL2=");
                    Log.Hex(frame->Esr);
                    Log.NewLine();
                    return vm.RequestStop("unhandled exit");
            }
            return ExitAction.Resume;
        }

        // A physical IRQ taken while a guest ran (HCR_EL2.IMO):
        //   the EL2 timer          -> the running VM's slice is over;
        //   the virtual timer      -> the running VM's own timer fired
        //                             (VirtualTimerFired);
        //   the maintenance IRQ    -> list registers ran low: they are
        //                             refilled on the way back in.
        private static ExitAction PhysicalInterrupt()
        {
            uint intid = Gic.Acknowledge();
            if (intid == Gic.SpuriousIntid) return ExitAction.Resume;
            ExitAction action = ExitAction.Resume;
            if (intid == Gic.HypTimerIntid)
            {
                HypTimer.Stop();                     // its level would signal again; the run loop re-arms it
                action = ExitAction.Yield;
            }
            else if (intid == Gic.VirtualTimerIntid)
            {
                VirtualTimerFired();
            }
            // (The kick SGI, Cpus.KickIntid, needs nothing: it only woke an
            // idle CPU, and this one is running a guest already.)
            Gic.EndOfInterrupt(intid);
            return action;
        }

        // The virtual timer's PPI reached EL2: the loaded VM's line goes high
        // (kernel/Vm/GuestTimers.cs).
        public static void VirtualTimerFired()
        {
            Vcpu vcpu = Scheduler.Current;
            if (vcpu == null)
            {
                SysReg.WriteCntvCtlEl0(0);   // a stopped vCPU's timer, still in the CPU: nobody's now
                return;
            }
            vcpu.Timers.VirtualPpi();
        }

    }
}
