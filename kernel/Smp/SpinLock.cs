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
    //
    // A waiter spins (WFE) a while, then sleeps (WFI) with its byte in
    // _sleepers set, and the releasing CPU wakes the sleepers with the kick
    // SGI. Why sleep at all: when the physical CPUs are themselves shared
    // (an emulator with more CPUs than host cores, or a hypervisor under
    // another one), a spinning waiter takes the time the holder needs to
    // finish, and every wait becomes as long as a host time slice. A WFI
    // gives it back. On dedicated cores the spin almost always suffices.
    public sealed unsafe class SpinLock : Guard
    {
        [RuntimeImport("*", "ticket_take")][MethodImpl(MethodImplOptions.InternalCall)] private static extern uint TakeTicket(uint* word, uint lse);
        [RuntimeImport("*", "ticket_wait")][MethodImpl(MethodImplOptions.InternalCall)] private static extern ulong WaitTicket(uint* word, uint ticket, ulong waits);
        [RuntimeImport("*", "spin_unlock")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void Unlock(uint* word);
        [RuntimeImport("*", "barrier_dmb_ish")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void DmbIsh();

        private const ulong SpinWaits = 256;       // WFE wake-ups before a waiter sleeps

        private uint _word;
        private ulong _sleepers;                   // byte n set: CPU n sleeps waiting for this lock
        public readonly LockRank Rank;
        public ulong Contended;                    // acquisitions that found it taken (counted under it)
        public ulong Sleeps;                       // times a waiter slept (WFI) for it

        // Set once at boot, before any second CPU runs.
        public static uint UseLse;

        // False until a second CPU is started (Cpus.StartSecondaries): with
        // one CPU there is nobody to exclude, and the lock word is left
        // alone, as a uniprocessor Linux compiles its spinlocks away. The
        // lock order is checked either way.
        public static bool Smp;

        public SpinLock(LockRank rank) => Rank = rank;

        // For structures that only know a Guard (the frame allocator).
        public override void Enter() => Acquire(Cpus.This);
        public override void Exit() => Release(Cpus.This);

        // Only while several CPUs run, for paths that count every instruction
        // with one CPU (the scheduler's VM switch): there the lock is neither
        // taken nor recorded, so its rank is checked on the several-CPU runs.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void AcquireIfShared(PhysicalCpu cpu)
        {
            if (Smp) Acquire(cpu);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void ReleaseIfShared(PhysicalCpu cpu)
        {
            if (Smp) Release(cpu);
        }

        public void Acquire() => Acquire(Cpus.This);

        // With the caller's PhysicalCpu at hand (the exit path has it): one
        // TPIDR_EL2 lookup fewer.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Acquire(PhysicalCpu cpu)
        {
            if (!cpu.Locks.TryTake(Rank)) OrderViolated();
            if (Smp) Take(cpu);
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private void Take(PhysicalCpu cpu)
        {
            uint* w = (uint*)Unsafe.AsPointer(ref _word);   // a field of a heap object, which never moves
            uint before = TakeTicket(w, UseLse);
            if ((before & 0xffff) != before >> 16) Wait(w, before >> 16, cpu);   // taken: the slow path
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private void Wait(uint* w, uint ticket, PhysicalCpu cpu)
        {
            ulong slept = 0;
            if (WaitTicket(w, ticket, SpinWaits) == 0)
            {
                // Only a CPU whose GIC interface is on can be woken by a kick.
                if (cpu.GicUp) slept = Sleep(w, ticket, cpu.Index);
                else while (WaitTicket(w, ticket, SpinWaits) == 0) { }
            }
            Contended++;
            Sleeps += slept;
        }

        public void Release() => Release(Cpus.This);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Release(PhysicalCpu cpu)
        {
            cpu.Locks.Released(Rank);
            if (Smp) Give();
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private void Give()
        {
            Unlock((uint*)Unsafe.AsPointer(ref _word));
            if (_sleepers != 0) WakeSleepers();
        }

        // Another CPU has taken a ticket and waits (read by the holder, to
        // cut optional work short: the idle loop's scrubbing).
        public bool HasWaiters
        {
            get
            {
                if (!Smp) return false;                           // the word is not used with one CPU
                uint word;
                fixed (uint* w = &_word) word = Hypervisor.Arch.Mmio.Read32((ulong)w);   // one real load, not a cached value
                return ((word >> 16) & 0xffff) != ((word + 1) & 0xffff);
            }
        }

        // The CPU says it sleeps, then looks at the word once more (the
        // barrier makes one of releaser and sleeper see the other), then
        // WFI: the releaser's kick, or any other interrupt, wakes it.
        private ulong Sleep(uint* w, uint ticket, int cpu)
        {
            byte* mine = (byte*)Unsafe.AsPointer(ref _sleepers) + cpu;
            ulong sleeps = 0;
            while (true)
            {
                *mine = 1;
                DmbIsh();
                if (WaitTicket(w, ticket, 1) != 0) break;
                Hypervisor.Arch.Cpu.WaitForInterrupt();
                sleeps++;
                Hypervisor.Arch.Gic.ConsumeKick();
                if (WaitTicket(w, ticket, SpinWaits) != 0) break;
            }
            *mine = 0;
            return sleeps;
        }

        private void WakeSleepers()
        {
            ulong sleepers = _sleepers;
            for (int i = 0; i < 8; i++)
                if ((sleepers >> (8 * i) & 0xff) != 0 && i < Cpus.Count) Hypervisor.Arch.Gic.SendSgi(Cpus.At(i).Mpidr, Cpus.KickIntid);
        }

        private void OrderViolated()
        {
            Hypervisor.Console.Log.Direct();
            Hypervisor.Console.Log.Write("[hv] lock order violated: rank ");
            Hypervisor.Console.Log.Dec((ulong)Rank);
            Hypervisor.Console.Log.Write(" while holding ");
            Hypervisor.Console.Log.Hex(Cpus.This.Locks.Mask);
            Hypervisor.Console.Log.NewLine();
            Hypervisor.Trap.Panic.Message("lock order");
        }
    }
}
