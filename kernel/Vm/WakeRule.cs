namespace Hypervisor.Vm
{
    // A vCPU's state (Vcpu.State): Off (not started, or CPU_OFF), Running
    // (in a physical CPU), Runnable (ready for one), Waiting (in WFI with no
    // interrupt pending; runnable again once one is: kernel/Vm/Scheduler.cs).
    // A VM's own State is Created, Runnable (alive) or Stopped.
    public enum VmState { Created, Runnable, Running, Waiting, Stopped, Off }   // (Off last: the scheduler counts vCPUs per state up to it)

    // What the scheduler does when something may have changed for a vCPU
    // (Scheduler.Notice): an interrupt made pending for it, or PSCI CPU_ON.
    //   KickItsCpu  its registers are in another physical CPU (running
    //               there, waiting there while that CPU idles, or being put
    //               down there after its CPU_OFF): a kick SGI makes that CPU
    //               look again (refill the list registers, wake, or find
    //               the CPU_ON when it unloads it);
    //   MakeRunnable it waits in no CPU, or it is off in no CPU while the
    //               guest has turned it on again and its VM is not ending;
    //   Nothing     it runs here (the exit path refills it), it is runnable
    //               already, or it stays off.
    // The CPU_OFF/CPU_ON race it settles: a vCPU calls CPU_OFF on one CPU
    // and another vCPU turns it on again from a second CPU before the first
    // has put it down. The CPU_ON's notice finds it still loaded (a kick),
    // and the first CPU, once it has unloaded it, notices it again and finds
    // it off and turned on: runnable, with the registers CPU_ON gave it.
    public enum Wake : byte { Nothing, KickItsCpu, MakeRunnable }

    public static class WakeRule
    {
        public static Wake For(VmState state, bool loadedSomewhere, bool loadedHere, bool poweredOn, bool vmEnding)
        {
            if (loadedSomewhere) return loadedHere ? Wake.Nothing : Wake.KickItsCpu;
            if (state == VmState.Waiting) return Wake.MakeRunnable;
            if (state == VmState.Off && poweredOn && !vmEnding) return Wake.MakeRunnable;
            return Wake.Nothing;
        }
    }
}
