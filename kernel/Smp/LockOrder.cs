namespace Hypervisor.Smp
{
    // The lock order, written down once. A CPU may take a lock only while it
    // holds no lock of the same or a later rank: so two CPUs can never each
    // hold what the other waits for, and no CPU ever holds two VMs' locks.
    // No lock is held across a guest entry (the exit path releases all of
    // them before ERET). The hypervisor runs with interrupts masked, so no
    // interrupt handler can want a lock its own CPU holds. And no CPU waits
    // for a lock while it has acknowledged an interrupt and not yet ended
    // it: the GIC's running priority would hide the kick SGI that wakes a
    // sleeping waiter (kernel/Smp/SpinLock.cs), and it would sleep forever.
    //
    //   1. Scheduler  the run queue: every vCPU's scheduling state (Running,
    //                 Runnable, Waiting, Off) and counts, which vCPU is loaded
    //                 in which CPU, VMIDs, idle CPUs; and what runs at a
    //                 scheduling point: the monitor and the balloon policy.
    //                 Taken by an exit only when it must reschedule (its
    //                 handler returned something other than Resume, its VM
    //                 has a request, or it woke another vCPU).
    //   2. Vm         one per VM: its stage-2 tables, devices and virtqueues,
    //                 virtual GIC (distributor and every vCPU's interrupts and
    //                 list-register state), timers, counters, requests (stop,
    //                 reset) and which of its vCPUs the guest has turned on
    //                 (Vcpu.PoweredOn). Every exit takes its VM's lock for the
    //                 handler: exits of different VMs run in parallel, exits
    //                 of one VM one at a time. A handler never takes rank 1:
    //                 a vCPU it woke is noted in the CPU (Scheduler.Notice)
    //                 and handed to the scheduler after the VM lock is gone.
    //   3. Frames     the frame allocator: free stack, owner tags, scrubbing.
    //   4. Heap       the bump allocator (in practice only boot allocates).
    //   5. Console    the serial line, one whole line at a time (kernel/
    //                 Console/Log.cs). A panic writes without it: a
    //                 panicking CPU may hold anything.
    //
    // (With one CPU nothing runs in parallel: the exit path leaves locks out,
    // and the other paths record ranks without touching a lock word; see
    // SpinLock.Smp.)
    public enum LockRank : byte { None = 0, Scheduler = 1, Vm = 2, Frames = 3, Heap = 4, Console = 5 }

    // What one CPU holds: a bit per rank.
    public struct HeldLocks
    {
        private uint _held;

        public bool Holds(LockRank rank) => (_held & (1u << (int)rank)) != 0;
        public bool Any => _held != 0;

        public uint Mask => _held;

        // False (and nothing recorded) when the order forbids it.
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        public bool TryTake(LockRank rank)
        {
            if (!LockOrder.MayTake(_held, rank)) return false;
            _held |= 1u << (int)rank;
            return true;
        }

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        public void Released(LockRank rank) => _held &= ~(1u << (int)rank);
    }

    public static class LockOrder
    {
        // No lock of `rank` or later held (that includes `rank` itself: a
        // ticket lock taken twice by one CPU waits for itself forever).
        public static bool MayTake(uint held, LockRank rank) => (held >> (int)rank) == 0;
    }
}
