using System;
using Hypervisor.Arch;
using Hypervisor.Console;
using Hypervisor.Mm;
using Hypervisor.Paging;
using Hypervisor.Vm;

namespace Hypervisor.Trap
{
    // The seed lecture's two-dimensional walk, made visible: GVA -> GPA -> HPA
    // with every table entry read on the way, using the guest's live stage-1
    // registers and the VM's stage-2 tables.
    public static unsafe class AddressWalk
    {
        // HypercallAbi.WalkAddress: x1 = GVA -> x1 = GPA, x2 = HPA, x3 = accesses.
        public static void ForHypercall(VirtualMachine vm, TrapFrame* frame)
        {
            Span<TranslationStep> steps = stackalloc TranslationStep[TwoStageWalker.MaxSteps];
            TwoStageStatus status = Walk(vm, frame->X[1], steps, out TwoStageResult result);
            Print("walk", vm, steps, result);
            Reply(frame, status, result);
        }

        private static void Reply(TrapFrame* frame, TwoStageStatus status, in TwoStageResult result)
        {
            if (status != TwoStageStatus.Ok)
            {
                Hypercalls.Error(frame, HypercallAbi.InvalidParameter);
                return;
            }
            frame->X[0] = 0;
            frame->X[1] = result.Gpa;
            frame->X[2] = result.Hpa;
            frame->X[3] = (ulong)result.MemoryAccesses;
        }

        // The monitor's `walk`: any VM, running or not.
        public static void Show(VirtualMachine vm, ulong gva)
        {
            Span<TranslationStep> steps = stackalloc TranslationStep[TwoStageWalker.MaxSteps];
            Walk(vm, gva, steps, out TwoStageResult result);
            Print("walk", vm, steps, result);
        }

        // The walk the guest defines (its tables over its stage 2), whatever the
        // paging mode; kernel/Paging/GuestView.cs. The guest's registers are in
        // the CPU while it runs, in its saved vCPU context otherwise.
        public static TwoStageStatus Walk(VirtualMachine vm, ulong gva, Span<TranslationStep> steps, out TwoStageResult result)
        {
            Vcpu here = Scheduler.Current;
            GuestView.Registers(vm, here != null && here.Vm == vm, out GuestTranslationRegisters regs);
            return TwoStageWalker.Translate(GuestView.Stage2(vm), regs, gva, steps, out result);
        }

        // HypercallAbi.WalkHardware: the walk the MMU makes on a TLB miss (for
        // shadow paging: the shadow tables over the identity map). x1 = GVA ->
        // x1 = the IPA stage 1 produced, x2 = HPA, x3 = memory accesses.
        // Printed as `[hv] hardware walk ...`: beside the guest's own walk of
        // the same GVA it shows a shadow tree beside the guest's tree
        // (scripts/draw-shadow draws the two).
        public static void HardwareForHypercall(VirtualMachine vm, TrapFrame* frame)
        {
            Span<TranslationStep> steps = stackalloc TranslationStep[TwoStageWalker.MaxSteps];
            GuestView.Hardware(vm, true, out GuestTranslationRegisters regs, out Stage2Table stage2);
            TwoStageStatus status = TwoStageWalker.Translate(stage2, regs, frame->X[1], steps, out TwoStageResult result);
            Print("hardware walk", vm, steps, result);
            Reply(frame, status, result);
        }

        // [hv] walk vm=g gva=... then one line per entry read, then the result.
        private static void Print(string what, VirtualMachine vm, Span<TranslationStep> steps, in TwoStageResult r)
        {
            Log.Write("[hv] ");
            Log.Write(what);
            Log.Write(" vm=");
            Log.Write(vm.Name);
            Log.Write(" gva=");
            Log.Hex(r.Gva);
            Log.NewLine();
            for (int i = 0; i < r.StepsRecorded && i < steps.Length; i++)
            {
                TranslationStep s = steps[i];
                Log.Write(s.Stage == 1 ? "[hv]   stage-1 L" : "[hv]     stage-2 L");
                Log.Dec((ulong)s.Level);
                Log.Write(s.Stage == 1 ? " table gpa=" : " table hpa=");
                Log.Hex(s.TableAddress);
                Log.Write(" [");
                Log.Dec((ulong)s.Index);
                Log.Write("] read at hpa=");
                Log.Hex(s.HostAddress);
                Log.Write(" -> ");
                Log.Hex(s.Descriptor);
                Log.NewLine();
            }
            Log.Write("[hv] ");
            Log.Write(what);
            Log.Write(" result: gva ");
            Log.Hex(r.Gva);
            if (r.Status == TwoStageStatus.Ok)
            {
                Log.Write(" -> gpa ");
                Log.Hex(r.Gpa);
                Log.Write(" -> hpa ");
                Log.Hex(r.Hpa);
            }
            else
            {
                Log.Write(" faults at stage ");
                Log.Dec((ulong)r.FaultStage);
                Log.Write(" level ");
                Log.Dec((ulong)r.FaultLevel);
            }
            Log.Write(", ");
            Log.Dec((ulong)r.MemoryAccesses);
            Log.Line(" memory accesses (4-level stage 1 over 4-level stage 2 would be 24)");
        }
    }
}
