using Hypervisor.Arch;
using Hypervisor.Trap;
using Hypervisor.Vm;

namespace Hypervisor.Trap
{
    // Making the guest take an exception, as the hardware would have: the answer
    // to any access or instruction the hypervisor will not complete. The guest's
    // own vector table then handles it; the hypervisor never panics for it.
    //
    // The guest's EL1 registers are live in the CPU while we run (the hypervisor
    // never uses EL1), so ESR/FAR/ELR/SPSR_EL1 are written directly; ELR_EL2 and
    // SPSR_EL2 in the frame are redirected to the guest's vector.
    public static unsafe class Injection
    {
        private const ulong IlBit = 1UL << 25;                // 32-bit instruction
        private const uint SyncExternalAbort = 0x10;          // DFSC/IFSC

        public static void DataAbort(VirtualMachine vm, TrapFrame* frame, bool write)
        {
            uint ec = FromEl0(frame) ? ExceptionClass.DataAbortLowerEl : ExceptionClass.DataAbortSameEl;
            ulong iss = SyncExternalAbort | (write ? 1UL << 6 : 0);
            Deliver(vm, frame, ec, iss, frame->Far);
        }

        public static void InstructionAbort(VirtualMachine vm, TrapFrame* frame)
        {
            uint ec = FromEl0(frame) ? ExceptionClass.InstructionAbortLowerEl : ExceptionClass.InstructionAbortSameEl;
            Deliver(vm, frame, ec, SyncExternalAbort, frame->Far);
        }

        public static void UndefinedInstruction(VirtualMachine vm, TrapFrame* frame)
        {
            Deliver(vm, frame, ExceptionClass.Unknown, 0, 0);
        }

        private static bool FromEl0(TrapFrame* frame) => ExceptionVectors.FromEl0(frame->Spsr);

        private static void Deliver(VirtualMachine vm, TrapFrame* frame, uint ec, ulong iss, ulong far)
        {
            ulong vector = SysReg.ReadVbarEl1() + ExceptionVectors.SyncOffset(frame->Spsr);
            if (frame->Elr == vector)
            {
                // The fault is at the guest's own exception vector: injecting
                // would send it straight back here, forever.
                vm.RequestStop("guest exception loop: its exception vector itself faults");
                return;
            }
            // IL: the trapped instruction's length (a 16-bit Thumb one has it
            // clear); an unknown-reason exception always reports 1.
            ulong il = ec == ExceptionClass.Unknown ? IlBit : frame->Esr & IlBit;
            SysReg.WriteEsrEl1(((ulong)ec << 26) | il | iss);
            SysReg.WriteFarEl1(far);
            SysReg.WriteElrEl1(frame->Elr);
            SysReg.WriteSpsrEl1(frame->Spsr);
            frame->Elr = vector;
            frame->Spsr = Pstate.GuestEntry;
            vm.Counters.InjectedAborts++;
        }
    }
}
