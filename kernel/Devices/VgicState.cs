using System;
using Hypervisor.Arch;

namespace Hypervisor.Devices
{
    // Told when the state of the virtual GIC changed in a way that may alter
    // what the vCPU should see: an interrupt was raised, a line moved, the
    // guest enabled, disabled, pended or re-prioritised something. The kernel
    // answers by recomputing its list registers (ICH_LR<n>_EL2) before it next
    // enters the guest. An abstract class because the kernel has no interfaces.
    public abstract class VgicListener
    {
        public abstract void Changed();
    }

    // Which per-interrupt bit a GICD_/GICR_ I*R register pair reads or writes.
    public enum VgicBit { Group, Enable, Pending, Active }

    // The state of a GICv3 (Arm IHI 0069) as one vCPU's guest sees it: per
    // interrupt enable, pending, active, priority, group and trigger config, plus
    // GICD_CTLR and GICR_WAKER. Pure logic, no hardware: the distributor and
    // redistributor devices decode the guest's MMIO onto it, the hypervisor
    // raises interrupts into it and moves the deliverable ones into list
    // registers. One security state (GICD_CTLR.DS = 1) and affinity routing
    // always on (ARE = 1), as on QEMU virt with a non-secure guest.
    //
    // Several vCPUs: each has its own VgicState for its SGIs and PPIs (INTIDs
    // 0-31, its redistributor). The SPIs and GICD_CTLR are the VM's, kept in
    // one of them, the "SPI holder" (vCPU 0's); every other vCPU's state
    // forwards what concerns an SPI there, and takes from it only the SPIs
    // GICD_IROUTER routes to its affinity. Changes to SPIs are announced to
    // SpiListener (every vCPU), changes to private INTIDs to Listener (this one).
    //
    // INTIDs: 0-15 SGIs, 16-31 PPIs, 32.. SPIs (IHI 0069 2.2). Per-interrupt bits
    // are kept as 32-bit words, word n covering INTIDs 32n..32n+31: exactly the
    // layout of GICD_ISENABLER<n> and friends, so a register is one word.
    public sealed class VgicState
    {
        public const int SpiCount = 64;
        public const int FirstPpi = 16, FirstSpi = 32;
        public const int IntidCount = FirstSpi + SpiCount;     // 96: INTIDs 0..95
        public const int Words = IntidCount / 32;

        // GICD_CTLR bits with DS = 1 (IHI 0069 12.9.4).
        public const uint CtlrEnableGrp0 = 1u << 0, CtlrEnableGrp1 = 1u << 1;
        public const uint CtlrAre = 1u << 4, CtlrDs = 1u << 6;

        private readonly uint[] _group = new uint[Words];      // GICD_IGROUPR: 1 = group 1
        private readonly uint[] _enabled = new uint[Words];    // GICD_ISENABLER
        private readonly uint[] _latch = new uint[Words];      // pending latch: an edge, or ISPENDR
        private readonly uint[] _level = new uint[Words];      // the input line, as SetLevel left it
        private readonly uint[] _active = new uint[Words];     // GICD_ISACTIVER
        private readonly uint[] _edge = new uint[Words];       // GICD_ICFGR: 1 = edge-triggered
        private readonly byte[] _priority = new byte[IntidCount];
        private readonly ulong[] _router = new ulong[SpiCount]; // GICD_IROUTER<n>, n = 32..

        private uint _ctlr;                                     // EnableGrp0 | EnableGrp1
        private readonly VgicState _spis;                       // the SPI holder (this one, or vCPU 0's)
        private readonly ulong _affinity;                       // this vCPU's MPIDR affinity (IROUTER's layout)
        public int VcpuCount = 1;                               // (holder) how many vCPUs share its SPIs

        // GICR_WAKER.ProcessorSleep: set out of reset; the guest clears it and
        // waits for ChildrenAsleep to follow before it uses the redistributor.
        public bool ProcessorSleep = true;

        // Who to tell when something changed; may be null (host tests).
        public VgicListener Listener;
        public VgicListener SpiListener;                        // (holder) for SPI changes; null: Listener

        // A VM's first vCPU (or its only one): it holds the SPIs.
        public VgicState()
        {
            _spis = this;
            Reset();
        }

        // Another vCPU, with affinity `affinity` (MPIDR's Aff3 in 39:32, Aff2..0 in 23:0).
        public VgicState(VgicState spis, ulong affinity)
        {
            _spis = spis;
            _affinity = affinity & RouterAffinity;
            Reset();
        }

        public bool HoldsSpis => _spis == this;
        private const ulong RouterAffinity = 0x0000_00ff_00ff_ffffUL;

        // Where the state of `intid` lives: SPIs at the holder.
        private bool Forwarded(int intid) => intid >= FirstSpi && _spis != this;

        // As out of reset (a VM's SYSTEM_RESET reuses the object: no allocation).
        public void Reset()
        {
            for (int w = 0; w < Words; w++) _group[w] = _enabled[w] = _latch[w] = _level[w] = _active[w] = _edge[w] = 0;
            for (int i = 0; i < IntidCount; i++) _priority[i] = 0;
            for (int i = 0; i < SpiCount; i++) _router[i] = 0;
            _ctlr = 0;
            ProcessorSleep = true;
            // SGIs are always edge-triggered (GICR_ICFGR0 is read-only). PPIs and
            // SPIs start level-sensitive: the timer PPIs are level, and Linux
            // configures SPIs as level unless the device tree says otherwise.
            _edge[0] = 0xffff;
            // Group 1 out of reset, as KVM does for a GICv3 guest: a guest that
            // never writes IGROUPR (single security state) still gets IRQs.
            for (int w = 0; w < Words; w++) _group[w] = 0xffffffff;
        }

        public static bool IsValid(int intid) => intid >= 0 && intid < IntidCount;

        // A write to ICC_SGI1R_EL1 (or ASGI1R, SGI0R): TargetList 15:0, Aff1
        // 23:16, INTID 27:24, Aff2 39:32, IRM 40, RS 47:44, Aff3 55:48. Does
        // it reach the vCPU with affinity `target` (MPIDR layout), written by
        // the one with affinity `sender`? IRM = 1: every PE but the writer.
        // Else the PE whose Aff3.Aff2.Aff1 are the named ones and whose Aff0
        // is RS * 16 + a set bit of TargetList (the writer too, if named).
        public static bool SgiReaches(ulong sgiRegister, ulong target, ulong sender)
        {
            if ((sgiRegister & (1UL << 40)) != 0) return (target & RouterAffinity) != (sender & RouterAffinity);
            if (((target >> 8) & 0xff) != ((sgiRegister >> 16) & 0xff)) return false;
            if (((target >> 16) & 0xff) != ((sgiRegister >> 32) & 0xff)) return false;
            if (((target >> 32) & 0xff) != ((sgiRegister >> 48) & 0xff)) return false;
            ulong aff0 = target & 0xff;
            if ((aff0 >> 4) != ((sgiRegister >> 44) & 0xf)) return false;
            return (sgiRegister & (1UL << (int)(aff0 & 15))) != 0;
        }

        public static int SgiIntid(ulong sgiRegister) => (int)((sgiRegister >> 24) & 0xf);

        private static bool Test(uint[] bits, int intid) => (bits[intid >> 5] & (1u << (intid & 31))) != 0;

        private void Notify(int intid)
        {
            VgicListener to = intid >= FirstSpi && SpiListener != null ? SpiListener : Listener;
            if (to != null) to.Changed();
        }

        // ---- What the hypervisor's interrupt sources do ----

        // A level-sensitive source (the virtual timer, PPI 27; a UART or virtio
        // SPI) drives its line. If the interrupt is configured edge-triggered, a
        // rising edge latches it, as the GIC's edge detector would.
        public void SetLevel(int intid, bool high)
        {
            if (!IsValid(intid)) return;
            if (Forwarded(intid)) { _spis.SetLevel(intid, high); return; }
            int w = intid >> 5;
            uint bit = 1u << (intid & 31);
            bool was = (_level[w] & bit) != 0;
            if (was == high) return;
            if (high) _level[w] |= bit; else _level[w] &= ~bit;
            if (high && (_edge[w] & bit) != 0) _latch[w] |= bit;
            Notify(intid);
        }

        // An edge: pending until the vCPU is given it (Delivered).
        public void Raise(int intid)
        {
            if (!IsValid(intid)) return;
            if (Forwarded(intid)) { _spis.Raise(intid); return; }
            int w = intid >> 5;
            uint bit = 1u << (intid & 31);
            if ((_latch[w] & bit) != 0) return;
            _latch[w] |= bit;
            Notify(intid);
        }

        // ---- Queries ----

        // Pending = latched, or a level-sensitive line that is high (IHI 0069 4.1.2).
        public bool IsPending(int intid) => IsValid(intid) && (Read(VgicBit.Pending, intid >> 5) & (1u << (intid & 31))) != 0;
        public bool IsEnabled(int intid) => IsValid(intid) && Test(At(intid)._enabled, intid);
        public bool IsActive(int intid) => IsValid(intid) && Test(At(intid)._active, intid);
        public bool IsGroup1(int intid) => IsValid(intid) && Test(At(intid)._group, intid);
        public bool IsLevelSensitive(int intid) => IsValid(intid) && !Test(At(intid)._edge, intid);
        public int Priority(int intid) => IsValid(intid) ? At(intid)._priority[intid] : 0xff;
        public uint DistributorControl => _spis._ctlr | CtlrAre | CtlrDs;

        private VgicState At(int intid) => intid >= FirstSpi ? _spis : this;

        private bool GroupEnabled(int intid) =>
            (_spis._ctlr & (Test(At(intid)._group, intid) ? CtlrEnableGrp1 : CtlrEnableGrp0)) != 0;

        // The SPIs of word `word` (1..) that GICD_IROUTER sends to `affinity`.
        // With one vCPU every SPI is its, whatever the guest wrote there.
        private uint RoutedTo(int word, ulong affinity)
        {
            if (VcpuCount == 1) return 0xffffffff;
            uint mask = 0;
            for (int b = 0; b < 32; b++)
            {
                int spi = word * 32 + b - FirstSpi;
                if (spi >= 0 && spi < SpiCount && (_router[spi] & RouterAffinity) == affinity) mask |= 1u << b;
            }
            return mask;
        }

        // The interrupt the vCPU should see next: pending, enabled, not active,
        // its group enabled in GICD_CTLR, and not already in a list register
        // (`exclude`). Highest priority = lowest value; ties go to the lower INTID,
        // as on real GICs. -1 when there is none.
        public int NextDeliverable(ReadOnlySpan<int> exclude)
        {
            int best = -1, bestPriority = 0x100;
            for (int w = 0; w < Words; w++)
            {
                VgicState s = w == 0 ? this : _spis;
                // Read(Pending) inlined: this scan runs at every refill.
                uint candidates = (s._latch[w] | (s._level[w] & ~s._edge[w])) & s._enabled[w] & ~s._active[w];
                if (candidates != 0 && w > 0) candidates &= _spis.RoutedTo(w, _affinity);
                for (; candidates != 0; candidates &= candidates - 1)   // the set bits only
                {
                    int intid = w * 32 + Bits.LowestSetBit(candidates);
                    // Strictly lower only: an equal priority at a higher INTID loses.
                    if (s._priority[intid] >= bestPriority || !GroupEnabled(intid)) continue;
                    if (Contains(exclude, intid)) continue;
                    best = intid;
                    bestPriority = s._priority[intid];
                }
            }
            return best;
        }

        private static bool Contains(ReadOnlySpan<int> list, int value)
        {
            for (int i = 0; i < list.Length; i++)
                if (list[i] == value) return true;
            return false;
        }

        // ---- What the hypervisor does with list registers ----

        // The interrupt went into a list register as pending: the list register
        // now carries that pending state, so the latch is consumed. A level
        // interrupt whose line is still high stays pending here regardless.
        public void Delivered(int intid)
        {
            if (!IsValid(intid)) return;
            At(intid)._latch[intid >> 5] &= ~(1u << (intid & 31));
        }

        // A list register was read back and emptied: the guest's view of this
        // interrupt returns here. `active`: acknowledged (ICC_IAR1_EL1) but not
        // yet EOI'd. `stillPending`: not yet acknowledged; an edge interrupt
        // gets its latch back, a level one is pending again only while its line
        // is high (nothing to record).
        public void Retired(int intid, bool stillPending, bool active)
        {
            if (!IsValid(intid)) return;
            if (Forwarded(intid)) { _spis.Retired(intid, stillPending, active); return; }
            int w = intid >> 5;
            uint bit = 1u << (intid & 31);
            if (active) _active[w] |= bit; else _active[w] &= ~bit;
            if (stillPending && (_edge[w] & bit) != 0) _latch[w] |= bit;
        }

        // ---- Register-shaped access, shared by GICD and GICR ----

        // Word `word` (INTIDs 32*word..+31) of one per-interrupt bit; 0 beyond the
        // implemented INTIDs (RAZ).
        public uint Read(VgicBit kind, int word)
        {
            if (word < 0 || word >= Words) return 0;
            if (word > 0 && _spis != this) return _spis.Read(kind, word);
            switch (kind)
            {
                case VgicBit.Group: return _group[word];
                case VgicBit.Enable: return _enabled[word];
                case VgicBit.Pending: return _latch[word] | (_level[word] & ~_edge[word]);
                default: return _active[word];
            }
        }

        // GICD_IS*R (set = true) or GICD_IC*R (set = false): the 1 bits of `mask`
        // set or clear, the 0 bits change nothing. Clearing pending clears the
        // latch only: a level line that is still high keeps it pending
        // (IHI 0069 12.9.3, GICD_ICPENDR). IGROUPR is a plain read/write register:
        // call Set then Clear with the complement.
        public void Write(VgicBit kind, int word, uint mask, bool set)
        {
            if (word < 0 || word >= Words) return;
            if (word > 0 && _spis != this) { _spis.Write(kind, word, mask, set); return; }
            uint[] bits = kind == VgicBit.Group ? _group : kind == VgicBit.Enable ? _enabled
                        : kind == VgicBit.Pending ? _latch : _active;
            uint old = bits[word];
            bits[word] = set ? old | mask : old & ~mask;
            if (bits[word] != old) Notify(word * 32);
        }

        // GICD_IPRIORITYR: one byte per INTID, all 8 bits kept as written.
        public byte ReadPriority(int intid) => IsValid(intid) ? At(intid)._priority[intid] : (byte)0;

        public void WritePriority(int intid, byte priority)
        {
            if (!IsValid(intid)) return;
            if (Forwarded(intid)) { _spis.WritePriority(intid, priority); return; }
            if (_priority[intid] == priority) return;
            _priority[intid] = priority;
            Notify(intid);
        }

        // GICD_ICFGR<n>: two bits per INTID, 16 INTIDs per register; bit 2F+1
        // set = edge-triggered, bit 2F reserved (RES0). SGIs are always edge.
        public uint ReadConfig(int register)
        {
            if (register >= FirstSpi / 16 && _spis != this) return _spis.ReadConfig(register);
            uint value = 0;
            for (int f = 0; f < 16; f++)
            {
                int intid = register * 16 + f;
                if (IsValid(intid) && Test(_edge, intid)) value |= 2u << (2 * f);
            }
            return value;
        }

        public void WriteConfig(int register, uint value)
        {
            if (register >= FirstSpi / 16 && _spis != this) { _spis.WriteConfig(register, value); return; }
            bool changed = false;
            for (int f = 0; f < 16; f++)
            {
                int intid = register * 16 + f;
                if (!IsValid(intid) || intid < FirstPpi) continue;
                int w = intid >> 5;
                uint bit = 1u << (intid & 31);
                uint old = _edge[w];
                if ((value & (2u << (2 * f))) != 0) _edge[w] |= bit; else _edge[w] &= ~bit;
                changed |= old != _edge[w];
            }
            if (changed) Notify(register * 16);
        }

        // GICD_CTLR: only the two group enables are writable.
        public void WriteDistributorControl(uint value)
        {
            if (_spis != this) { _spis.WriteDistributorControl(value); return; }
            uint next = value & (CtlrEnableGrp0 | CtlrEnableGrp1);
            if (next == _ctlr) return;
            _ctlr = next;
            Notify(FirstSpi);   // every vCPU: the group enables gate its private INTIDs too
        }

        // GICD_IROUTER<n> for SPIs: the affinity of the one vCPU the SPI goes
        // to (with one vCPU, every SPI goes to it whatever was written).
        // Interrupt_Routing_Mode (bit 31, "any PE") is RAZ/WI: GICD_TYPER
        // says No1N, as KVM's and QEMU's virtual GICs do.
        public ulong ReadRouter(int intid) => intid >= FirstSpi && intid < IntidCount ? _spis._router[intid - FirstSpi] : 0;

        public void WriteRouter(int intid, ulong value)
        {
            if (intid < FirstSpi || intid >= IntidCount) return;
            if (_spis != this) { _spis.WriteRouter(intid, value); return; }
            ulong next = value & RouterAffinity;
            if (_router[intid - FirstSpi] == next) return;
            _router[intid - FirstSpi] = next;
            Notify(intid);
        }
    }
}
