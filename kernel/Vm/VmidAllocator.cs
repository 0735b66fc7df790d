using Hypervisor.Arch;

namespace Hypervisor.Vm
{
    // VMIDs with generations (the scheme of KVM's arch/arm64/kvm/vmid.c).
    //
    // Why VMIDs: the TLB tags every stage-2 (and combined stage-1+2) entry with
    // the VMID from VTTBR_EL2, so switching VMs needs no TLB flush as long as
    // each VM has its own VMID. The hardware offers 8 or 16 bits
    // (ID_AA64MMFR1_EL1.VMIDBits), so there may be more VMs than VMIDs.
    //
    // Why generations: instead of taking a VMID away from one VM to give it to
    // another (which needs a per-VMID flush and bookkeeping of who is
    // resident), every VMID handed out belongs to a generation. When the
    // current generation has no free VMID left, a new generation starts: all
    // VMIDs become free at once, one TLBI ALLE1IS throws away every entry tagged
    // with an old VMID, and each VM picks up a fresh VMID the next time it is
    // entered. VM entry only has to compare the generation (IsCurrent), which is
    // one shift and one compare.
    //
    // A VM keeps one tag: (generation << 16) | vmid, 0 = never assigned. The
    // shift is 16 whatever the width, so a tag reads the same on every machine.
    // The generation starts at 1, so the tag 0 is never current. 48 bits of
    // generation remain in a tag: at one rollover per 10 ms time slice that is
    // about 89,000 years before it would wrap.
    //
    // VMID 0 is never handed out: it is the hypervisor's own "no VM" value
    // (VTTBR_EL2 holds it while no guest runs), so a generation has
    // 2^width - 1 usable VMIDs.
    //
    // Several CPUs (not needed yet). KVM keeps, per physical CPU, the VMID that
    // is running there ("active") and a "reserved" copy. A rollover can happen on
    // one CPU while other CPUs are running guests that cannot be stopped to pick
    // a new VMID, so at a rollover KVM marks every CPU's active (or reserved)
    // VMID as used again in the fresh bitmap and keeps it reserved: a VM that is
    // running elsewhere keeps its number across the rollover and no other VM can
    // be given that number. When such a VM is next assigned, KVM finds its old
    // number in the reserved set and moves the reservation into the new
    // generation instead of taking a new VMID. Entry takes a lock-free fast path
    // (the generation matches and the CPU's active slot is set) and only the
    // slow path takes a spin lock.
    // Here every call runs under the scheduler lock (kernel/Smp/LockOrder.cs),
    // so no fast path is needed, and "active" is exact: the tag of the VM
    // whose registers each CPU holds (SetActive on load, 0 once saved). At a
    // rollover exactly those VMIDs are reserved into the new generation; the
    // TLBI ALLE1IS that goes with it is broadcast, so it empties every CPU's
    // TLB at once, the running VMs' entries included (they refill). With more
    // CPUs than VMIDs not every VM can run at once: CanRun says whether one
    // can get a VMID now, and the scheduler picks another VM when not.
    //
    // No allocation after the constructor: Assign and Release run on the VM
    // switch path. A "next" cursor makes the common case O(1): VMIDs are handed
    // out in order, and a search scans 64 VMIDs per bitmap word.
    public sealed class VmidAllocator
    {
        public const int MinBits = 1;
        public const int MaxBits = 16;
        public const int TagShift = 16;                 // tag = generation << TagShift | vmid
        public const ulong VmidMask = (1UL << TagShift) - 1;
        public const ushort NoVmid = 0;                 // reserved: "no VM"
        private const int BitmapWords = (1 << MaxBits) / 64;   // 1024 words = 65536 bits

        public const int MaxCpus = 8;
        private readonly ulong[] _used;   // bit v set: VMID v is taken in this generation
        private readonly ulong[] _active = new ulong[MaxCpus];     // per CPU: tag of the VM it holds, 0 none
        private readonly ulong[] _reserved = new ulong[MaxCpus];   // per CPU: what it held at the last rollover
        private readonly int _width;
        private readonly int _capacity;   // 2^width - 1: VMIDs 1..capacity
        private ulong _generation;
        private ulong _rollovers;
        private int _inUse;
        private int _next;                // where the next search starts (1..capacity)

        // bits outside 1..16 are clamped into that range (never throw): the
        // caller reads the width back from Width. The hypervisor passes 8 or 16
        // from the hardware, or a smaller vmid_bits from vms.conf.
        public VmidAllocator(int bits)
        {
            if (bits < MinBits) bits = MinBits;
            if (bits > MaxBits) bits = MaxBits;
            _width = bits;
            _capacity = (1 << bits) - 1;
            // Always sized for 16 bits, so the bitmap is the same object whatever
            // the hardware offers and no bounds need recomputing.
            _used = new ulong[BitmapWords];
            _generation = 1;
            ClearBitmap();
        }

        public int Width => _width;
        public int Capacity => _capacity;
        public ulong Generation => _generation;
        public ulong Rollovers => _rollovers;
        // VMIDs taken in the current generation. VMs whose tags are from an older
        // generation are not counted: they no longer hold a VMID.
        public int VmidsInUse => _inUse;

        public static ushort VmidOf(ulong tag) => (ushort)(tag & VmidMask);
        public static ulong GenerationOf(ulong tag) => tag >> TagShift;

        // Checked on every VM entry: may the VM run with the VMID in its tag?
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        public bool IsCurrent(ulong tag) =>
            (tag >> TagShift) == _generation && (tag & VmidMask) != NoVmid;

        // The VMID the VM must run with. A current tag keeps its VMID. Otherwise
        // the VM gets a free VMID of this generation; if there is none, a new
        // generation starts and flushAll is true: before entering the guest the
        // caller must do TLBI ALLE1IS, DSB ISH, ISB, because the TLB may still
        // hold entries tagged with VMIDs of the old generation, which are about
        // to be handed to other VMs.
        //
        // The caller (on CPU `cpu`) must have checked CanRun, and must have
        // cleared its own active slot: the VM it held is no longer running.
        public ushort Assign(ref ulong tag, out bool flushAll)
        {
            // LAB 3 BEGIN VmidAllocator.Assign | flushAll = false; return NoVmid;
            flushAll = false;
            if (IsCurrent(tag)) return VmidOf(tag);
            ushort kept = Reserved(tag);
            if (kept != NoVmid)
            {
                tag = (_generation << TagShift) | kept;   // reserved at the rollover: already marked used
                return kept;
            }

            // From the cursor to the end, then from 1 up to the cursor: VMIDs
            // released earlier in this generation are reused before a rollover.
            int vmid = FindFree(_next, _capacity + 1);
            if (vmid == NoVmid) vmid = FindFree(1, _next);
            if (vmid == NoVmid)
            {
                NewGeneration();
                flushAll = true;
                vmid = FindFree(1, _capacity + 1);   // free but for the reserved ones
                if (vmid == NoVmid) return NoVmid;   // only if CanRun was not asked
            }

            _used[vmid >> 6] |= 1UL << (vmid & 63);
            _inUse++;
            _next = vmid + 1 > _capacity ? 1 : vmid + 1;
            tag = (_generation << TagShift) | (uint)vmid;
            return (ushort)vmid;
            // LAB 3 END
        }

        // The VM is gone. Its VMID becomes free in this generation, so the
        // caller must already have removed its TLB entries (TLBI VMALLS12E1IS
        // under that VMID): the next VM given this number must not find them.
        // A tag of an older generation holds no bit in the bitmap. The tag is
        // cleared either way, so a second Release does nothing.
        public void Release(ref ulong tag)
        {
            ushort vmid = IsCurrent(tag) ? VmidOf(tag) : Reserved(tag);
            if (vmid != NoVmid)
            {
                _used[vmid >> 6] &= ~(1UL << (vmid & 63));
                _inUse--;
            }
            for (int c = 0; c < MaxCpus; c++)
            {
                if (_reserved[c] == tag) _reserved[c] = 0;
                if (_active[c] == tag) _active[c] = 0;
            }
            tag = 0;
        }

        // CPU `cpu` now runs with `tag` (0: it holds no VM).
        public void SetActive(int cpu, ulong tag) => _active[cpu] = tag;

        // May a VM with `tag` be entered on `cpu` now? Yes if it holds a VMID
        // or one is free; else only if a rollover would leave one over once
        // the VMIDs the other CPUs run with are reserved. Those are counted
        // once each: two vCPUs of one VM on two CPUs hold one VMID.
        public bool CanRun(ulong tag, int cpu)
        {
            if (IsCurrent(tag) || _inUse < _capacity || Reserved(tag) != NoVmid) return true;
            int distinct = 0;
            for (int c = 0; c < MaxCpus; c++)
            {
                if (c == cpu || _active[c] == 0) continue;
                bool seen = false;
                for (int d = 0; d < c; d++) seen |= d != cpu && _active[d] == _active[c];
                if (!seen) distinct++;
            }
            return distinct < _capacity;
        }

        // The VMID kept for an old-generation tag at the last rollover, or 0.
        private ushort Reserved(ulong tag)
        {
            if (tag == 0) return NoVmid;
            for (int c = 0; c < MaxCpus; c++) if (_reserved[c] == tag) return VmidOf(tag);
            return NoVmid;
        }

        // Every VMID free again, but those the CPUs are running with: their
        // VMs go on running across the rollover and keep their numbers.
        private void NewGeneration()
        {
            // LAB 3 BEGIN VmidAllocator.NewGeneration | return;
            _generation++;
            _rollovers++;
            ClearBitmap();
            _inUse = 0;
            for (int c = 0; c < MaxCpus; c++)
            {
                ulong t = _active[c];
                _reserved[c] = t;
                if (t == 0) continue;
                int vmid = VmidOf(t);
                if ((_used[vmid >> 6] & (1UL << (vmid & 63))) == 0) { _used[vmid >> 6] |= 1UL << (vmid & 63); _inUse++; }
            }
            // LAB 3 END
        }

        private void ClearBitmap()
        {
            for (int i = 0; i < _used.Length; i++) _used[i] = 0;
            _used[0] = 1;   // VMID 0 is never free
            _next = 1;
        }

        // The lowest free VMID in [from, to), or 0 when there is none. Whole
        // words of 64 taken VMIDs are skipped with one compare each.
        private int FindFree(int from, int to)
        {
            if (from >= to) return NoVmid;
            int word = from >> 6;
            int lastWord = (to - 1) >> 6;
            // Bits below `from` in the first word do not count: treat them as taken.
            ulong free = ~_used[word] & (~0UL << (from & 63));
            while (true)
            {
                if (word == lastWord)
                {
                    int bitsInLast = to - (lastWord << 6);   // 1..64
                    if (bitsInLast < 64) free &= (1UL << bitsInLast) - 1;
                    return free == 0 ? NoVmid : (word << 6) + Bits.LowestSetBit(free);
                }
                if (free != 0) return (word << 6) + Bits.LowestSetBit(free);
                word++;
                free = ~_used[word];
            }
        }
    }
}
