namespace Hypervisor.Smp
{
    // The lock order, written down once. A CPU may take a lock only while it
    // holds no lock of the same or a later rank: so two CPUs can never each
    // hold what the other waits for. No lock is held across a guest entry
    // (the run loop releases everything before ERET; TrapEntry checks).
    //
    //   1. Hypervisor  the scheduler, every VM's state, its stage-2 tables,
    //                  devices and virtual GIC, the frame allocator, the heap
    //                  and the monitor: everything an exit handler touches.
    //                  Taken when an exit arrives and when a CPU starts
    //                  scheduling, released just before the guest is entered
    //                  and around the idle loop's WFI. Guests run in parallel
    //                  on every CPU; their exits are handled one at a time.
    //                  (With a single CPU the exit path leaves it out, and
    //                  the lock word is never touched: SpinLock.Smp.)
    //                  The console too: every line is written under it,
    //                  except a panic's (a panicking CPU may hold anything).
    //
    // Splitting rank 1 into per-structure locks (frame allocator, each VM's
    // stage 2, each device, the vGIC, the console) adds ranks after it, in
    // the order a handler nests them.
    public enum LockRank : byte { None = 0, Hypervisor = 1 }

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
