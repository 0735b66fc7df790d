using System.Runtime;
using System.Runtime.CompilerServices;

namespace Hypervisor.Smp
{
    // A ticket spinlock (boot/smp.s): CPUs are served in the order they
    // asked, with LSE atomics where the CPU has them (ID_AA64ISAR0_EL1.Atomic),
    // LDAXR/STXR otherwise. The hypervisor runs with interrupts masked at
    // EL2, so a lock is never wanted by an interrupt handler on the CPU that
    // holds it. Every lock has a rank (kernel/Smp/LockOrder.cs): taking them
    // out of order stops the hypervisor with a line naming both.
    public sealed unsafe class SpinLock
    {
        [RuntimeImport("*", "spin_lock")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void Lock(uint* word, uint lse);
        [RuntimeImport("*", "spin_unlock")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void Unlock(uint* word);

        private uint _word;
        public readonly LockRank Rank;

        // Set once at boot, before any second CPU runs.
        public static uint UseLse;

        public SpinLock(LockRank rank) => Rank = rank;

        public void Acquire()
        {
            if (!Cpus.This.Locks.TryTake(Rank)) OrderViolated();
            fixed (uint* w = &_word) Lock(w, UseLse);
        }

        public void Release()
        {
            fixed (uint* w = &_word) Unlock(w);
            Cpus.This.Locks.Released(Rank);
        }

        private void OrderViolated()
        {
            Hypervisor.Console.Log.Write("[hv] lock order violated: rank ");
            Hypervisor.Console.Log.Dec((ulong)Rank);
            Hypervisor.Console.Log.Write(" while holding ");
            Hypervisor.Console.Log.Hex(Cpus.This.Locks.Mask);
            Hypervisor.Console.Log.NewLine();
            Hypervisor.Trap.Panic.Message("lock order");
        }
    }
}
