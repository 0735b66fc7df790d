using System.Runtime;
using System.Runtime.CompilerServices;
using Hypervisor.Arch;
using Hypervisor.Console;
using Hypervisor.Vm;

namespace Hypervisor.Trap
{
    // The one C# entry point for every exception taken to EL2 (boot/vectors.S).
    // Exceptions from the hypervisor itself are bugs: they end in Panic. Exits
    // from guests arrive from the lower-EL entries once VMs run.
    public static unsafe class TrapEntry
    {
        // Returns the frame the vector code restores and enters: after a VM
        // exit, the frame of whichever vCPU the CPU holds now (the same one
        // unless the scheduler switched).
        [RuntimeExport("hv_trap")]
        private static TrapFrame* OnTrap(TrapFrame* frame, ulong kind)
        {
            if (!VectorKind.IsFromLowerEl(kind)) Panic.FromException(frame, kind);
            else if (Hypervisor.Smp.SpinLock.Smp) return ExitOnSeveralCpus(frame, kind);
            else return Exit(Hypervisor.Smp.Cpus.Boot, frame, kind);
            return frame;
        }

        // With several CPUs an exit holds its VM's lock for the handler
        // (kernel/Smp/LockOrder.cs): exits of different VMs run side by side.
        // Only an exit that must reschedule, or that woke another vCPU, then
        // takes the scheduler lock, after the VM's lock is released. No lock
        // is held when the guest is entered again. With one CPU nothing else
        // runs to exclude: the exit path leaves locks out.
        [MethodImpl(MethodImplOptions.NoInlining)]
        private static TrapFrame* ExitOnSeveralCpus(TrapFrame* frame, ulong kind)
        {
            Hypervisor.Smp.PhysicalCpu cpu = Hypervisor.Smp.Cpus.This;
            Vcpu vcpu = cpu.Loaded;
            VirtualMachine vm = vcpu.Vm;
            vm.Lock.Acquire(cpu);
            ExitAction action = GuestExits.Handle(vcpu, frame, kind);
            if (action == ExitAction.Resume && !vm.HasRequest && cpu.Noticed == 0)
            {
                vcpu.VgicCpu.Fill();
                vm.Lock.Release(cpu);
                return frame;
            }
            vm.Lock.Release(cpu);
            Scheduler.Lock.Acquire(cpu);
            Scheduler.TakeNotices(cpu);
            if (action != ExitAction.Resume || vm.HasRequest) Scheduler.AfterExit(cpu, vcpu, action);
            Scheduler.RefillLoaded(cpu);
            Scheduler.Lock.Release(cpu);
            return cpu.EntryFrame;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static TrapFrame* Exit(Hypervisor.Smp.PhysicalCpu cpu, TrapFrame* frame, ulong kind)
        {
            Vcpu vcpu = cpu.Loaded;
            // The handler decides; the run loop acts (kernel/Vm/ExitAction.cs).
            ExitAction action = GuestExits.Handle(vcpu, frame, kind);
            if (action != ExitAction.Resume || vcpu.Vm.HasRequest) Scheduler.AfterExit(cpu, vcpu, action);
            // Back into whichever vCPU is loaded now: its list registers get
            // what became deliverable meanwhile. (Every VM has a virtual GIC;
            // VmBuilder makes it with the VM.)
            cpu.Loaded.VgicCpu.Fill();
            return cpu.EntryFrame;
        }
    }

    public static unsafe class Panic
    {
        // `[hv] PANIC: data abort at EL2 (EC=0x25) ESR_EL2=... ELR_EL2=... FAR_EL2=...`
        public static void FromException(TrapFrame* frame, ulong kind)
        {
            uint ec = ExceptionClass.Of(frame->Esr);
            Log.Direct();
            Log.Write("[hv] PANIC: ");
            if (VectorKind.IsSynchronous(kind)) Log.Write(ExceptionClass.Name(ec));
            else { Log.Write(VectorKind.Name(kind)); Log.Write(" exception"); }
            Log.Write(" (EC=");
            Log.Hex(ec, 2);
            Log.Write(") ESR_EL2=");
            Log.Hex(frame->Esr);
            Log.Write(" ELR_EL2=");
            Log.Hex(frame->Elr);
            Log.Write(" FAR_EL2=");
            Log.Hex(frame->Far);
            Log.NewLine();
            Halt();
        }

        public static void Message(string reason)
        {
            Log.Direct();
            Log.Write("[hv] PANIC: ");
            Log.Line(reason);
            Halt();
        }

        // A panicked hypervisor cannot trust its own state: it powers the machine
        // off so QEMU ends (scripts/hv-run turns a PANIC line into a failure status).
        private static void Halt()
        {
            Log.Line("[hv] stopped after panic");
            Psci.PowerOff();
        }
    }
}
