using Hypervisor.Arch;
using Hypervisor.Console;
using Hypervisor.Mm;
using Hypervisor.Vm;

namespace Hypervisor.Trap
{
    // HVC #0 (and trapped SMC #0) from a guest, by SMCCC function id in x0:
    // PSCI (power), the standard SMCCC version query, and the hypervisor's own
    // vendor calls (HypercallAbi). Every unknown id gets NOT_SUPPORTED in x0;
    // bad arguments get an error code; nothing a guest passes stops anything
    // but, at worst, that guest.
    public static unsafe class Hypercalls
    {
        // Inlined into the exit path: the null hypercall, which measures the
        // bare round trip, is answered before any other call's code runs, and
        // so are PSCI_VERSION, the firmware interface's constant query (a PSCI
        // driver's first call; through Dispatch and VirtualPsci.Handle, with
        // their two calls and saved registers, it cost 53 instructions more
        // than the null hypercall) and Yield, which starts a VM switch (through
        // Dispatch and the vendor calls' switch it cost 40 more). Every other
        // call pays three compares more.
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        public static ExitAction Handle(Vcpu vcpu, TrapFrame* frame)
        {
            ulong fid = frame->X[0];
            if (fid == HypercallAbi.Null)
            {
                Return(frame, 0);
                return ExitAction.Resume;
            }
            if (fid == PsciAbi.Version)
            {
                Return(frame, PsciAbi.Version1_1);
                return ExitAction.Resume;
            }
            if (fid == HypercallAbi.Yield)
            {
                // A guest polling for something another VM will do: let
                // that VM run now (WFI would wait for an interrupt).
                Return(frame, 0);
                return ExitDecision.ForYield(Scheduler.OthersRunnable());
            }
            return Dispatch(vcpu, frame);
        }

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
        private static ExitAction Dispatch(Vcpu vcpu, TrapFrame* frame)
        {
            VirtualMachine vm = vcpu.Vm;
            ulong fid = frame->X[0];
            if ((fid & 0xff000000) == HypercallAbi.VendorBase) return Vendor(vm, frame, fid);
            if (fid == PsciAbi.SmcccVersion)
            {
                Return(frame, 0x10001);   // SMCCC 1.1
                return ExitAction.Resume;
            }
            return VirtualPsci.Handle(vcpu, frame, fid);
        }

        private static ExitAction Vendor(VirtualMachine vm, TrapFrame* frame, ulong fid)
        {
            switch (fid)   // (HypercallAbi.Null and Yield never get here: Handle and Dispatch answer them)
            {
                case HypercallAbi.ConsoleWrite:
                    ConsoleWrite(vm, frame);
                    break;
                case HypercallAbi.ReadCounter:
                    if (vm.TryGetCounter(frame->X[1], out ulong value)) { Return(frame, 0); frame->X[1] = value; }
                    else Error(frame, HypercallAbi.InvalidParameter);
                    break;
                case HypercallAbi.TestRemap:
                    if (vm.Direct != null)
                    {
                        // The guest holds machine addresses: the hypervisor cannot
                        // move its memory behind its back.
                        bool page = (frame->X[1] & 0xfff) == 0 && vm.IsRam(frame->X[1]);
                        Error(frame, page ? HypercallAbi.Denied : HypercallAbi.InvalidParameter);
                        break;
                    }
                    Error(frame, GuestMemory.RemapToFreshFrame(vm, frame->X[1], frame->X[2]));
                    if ((long)frame->X[0] == HypercallAbi.Ok && vm.Shadow != null) vm.Shadow.FramesMoved();
                    break;
                case HypercallAbi.PagingInfo:
                    Return(frame, 0);
                    frame->X[1] = vm.Shadow != null ? HypercallAbi.Paging.Shadow : vm.Direct != null ? HypercallAbi.Paging.Direct : HypercallAbi.Paging.Stage2;
                    break;
                case HypercallAbi.WalkHardware:
                    AddressWalk.HardwareForHypercall(vm, frame);
                    break;
                case HypercallAbi.MachineFrames:
                case HypercallAbi.PinTable:
                case HypercallAbi.UnpinTable:
                case HypercallAbi.MmuUpdate:
                    if (vm.Direct != null) vm.Direct.Hypercall(vm, frame, fid);
                    else Error(frame, HypercallAbi.NotSupported);
                    break;
                case HypercallAbi.WalkAddress:
                    AddressWalk.ForHypercall(vm, frame);
                    break;
                case HypercallAbi.RunningVms:
                    Return(frame, 0);
                    frame->X[1] = (ulong)Scheduler.LiveVms();
                    break;
                case HypercallAbi.ReadCycles:
                    // A clock as fine as one instruction under -icount, that
                    // counts the hypervisor's and other VMs' work too: for the
                    // benchmarks only, so a VM must be given it in vms.conf.
                    if (!vm.MayReadCycles) { Error(frame, HypercallAbi.NotSupported); break; }
                    frame->X[1] = SysReg.ReadPmccntrEl0();
                    Return(frame, 0);
                    break;
                default:
                    Error(frame, HypercallAbi.NotSupported);
                    break;
            }
            return ExitAction.Resume;
        }

        // x1 = GPA, x2 = length (at most a page): the bytes go out as "[name] ..." lines.
        private static void ConsoleWrite(VirtualMachine vm, TrapFrame* frame)
        {
            ulong gpa = frame->X[1], length = frame->X[2];
            if (length > 4096 || !vm.IsRam(gpa) || !vm.IsRam(gpa + length - 1) || length == 0)
            {
                Error(frame, HypercallAbi.InvalidParameter);
                return;
            }
            for (ulong i = 0; i < length; i++)
            {
                ulong hpa = GuestMemory.HostAddressOf(vm, gpa + i);
                byte b = hpa == 0 ? (byte)0 : *(byte*)hpa;
                vm.Uart.Write(vm, 0, 1, b);
            }
            Return(frame, length);
        }

        public static void Return(TrapFrame* frame, ulong value) => frame->X[0] = value;
        public static void Error(TrapFrame* frame, long status) => frame->X[0] = (ulong)status;
    }
}
