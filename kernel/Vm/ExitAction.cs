namespace Hypervisor.Vm
{
    // What should happen after a VM exit: the answer every exit handler
    // returns. One place acts on it (Scheduler.AfterExit, the run loop), so no
    // handler ever jumps away from the middle of its work: a handler that
    // holds a lock, or has half-updated a table, finishes and returns first.
    //   Resume: back into the same guest (ELR_EL2 says where);
    //   Yield:  the guest gives up the rest of its slice (WFE, the Yield
    //           hypercall, the end of its slice);
    //   Wait:   the guest executed WFI with no interrupt pending for it;
    //   Stop:   the VM ends (SYSTEM_OFF, a fatal error: VirtualMachine.StopReason says which);
    //   Reset:  the VM starts again from its image (SYSTEM_RESET);
    //   Off:    this vCPU is off (PSCI CPU_OFF); the VM's others go on.
    // A helper deep inside a handler that finds the VM must stop (an
    // exception loop, an exhausted pool) records it with
    // VirtualMachine.RequestStop and returns normally; the run loop sees the
    // request after the handler has returned, as KVM's vCPU requests work.
    public enum ExitAction : byte { Resume, Yield, Wait, Stop, Reset, Off }

    public static class ExitDecision
    {
        // The action the run loop carries out: a recorded stop request wins
        // over whatever the handler returned (it may not know a helper stopped
        // the VM), then a reset request (possibly made by another vCPU).
        public static ExitAction Final(ExitAction returned, string stopReason, bool resetPending = false) =>
            stopReason != null ? ExitAction.Stop : resetPending ? ExitAction.Reset : returned;

        // WFI completes at once when an interrupt is pending for the guest,
        // else the vCPU waits for one; WFE (a guest spinning on a lock or a
        // flag) and the Yield hypercall give the CPU away if anyone else can
        // use it, and carry on otherwise.
        public static ExitAction ForWfi(bool interruptPending) => interruptPending ? ExitAction.Resume : ExitAction.Wait;
        public static ExitAction ForYield(bool othersRunnable) => othersRunnable ? ExitAction.Yield : ExitAction.Resume;
    }
}
