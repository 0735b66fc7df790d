using System;
using Hypervisor.Mm;
using Hypervisor.Trap;

namespace Hypervisor.Paging
{
    // What applying an MmuUpdate batch needs from DirectPaging: the per-frame
    // counts and the TLB. Host tests pass a recorder.
    public abstract class DirectTables
    {
        // The checked entry at `entry` goes from `old` to `value`.
        public abstract void Replaced(ulong entry, ulong old, ulong value);

        public abstract void InvalidateVa(ulong va);
        public abstract void InvalidateAll();
    }

    // MmuUpdate's second half: every request was checked (DirectPaging.Check),
    // now they are applied in order. The MMU walks these tables with the
    // guest's attributes, so each entry is cleaned as it is written (one DC
    // CVAC) and a barrier completes the cleans before a TLBI, after which the
    // walker reads the table again, and before the guest runs on
    // (kernel/Mm/Coherency.cs). Returns how many entries were written.
    public static unsafe class DirectBatch
    {
        public static ulong Apply(ReadOnlySpan<ulong> requests, DirectTables tables, CacheMaintenance cache)
        {
            // LAB 5 BEGIN DirectBatch.Apply | return 0;
            ulong writes = 0;
            for (int i = 0; i + 1 < requests.Length; i += 2)
            {
                ulong target = requests[i], value = requests[i + 1];
                switch (target & HypercallAbi.Update.KindMask)
                {
                    case HypercallAbi.Update.WriteEntry:
                        ulong old = *(ulong*)target;
                        Coherency.WriteEntry(cache, target, value);
                        tables.Replaced(target, old, value);
                        writes++;
                        break;
                    case HypercallAbi.Update.InvalidateVa:
                        cache.Barrier();
                        tables.InvalidateVa(value);
                        break;
                    default:
                        cache.Barrier();
                        tables.InvalidateAll();
                        break;
                }
            }
            cache.Barrier();
            return writes;
            // LAB 5 END
        }
    }
}
