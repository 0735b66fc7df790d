using Hypervisor.Arch;
using Hypervisor.Console;
using Hypervisor.Devices;
using Hypervisor.Mm;
using Hypervisor.Trap;
using Hypervisor.Vm;

namespace Hypervisor.Paging
{
    // paging=shadow: the guest believes its TTBRs point at its own tables; the
    // MMU really walks shadow tables (ShadowTables.cs) that map GVA -> HPA.
    //
    //   HCR_EL2.TVM   guest writes to SCTLR/TTBR0/TTBR1/TCR/MAIR/... exit here:
    //                 a TTBR write selects (or builds) the shadow for that root
    //   HCR_EL2.TRVM  guest reads of them exit too: it reads its own values
    //   HCR_EL2.TTLB  guest TLBIs exit: they are done for it (counted)
    //   stage 2       identity, guest table pages read-only (IdentityMap.cs):
    //                 each write to a table exits and the shadows follow
    //
    // No two shadows per process for user and kernel views, as x86 shadow
    // paging needs: Arm gives EL0 and EL1 one tree with per-entry AP bits, and
    // the kernel half has its own register (TTBR1), so one guest root is one
    // shadow root, and the kernel half's shadow is shared by every process.
    //
    // What a shadow guest can still tell apart from stage-2 mode, on the
    // Armv8.0 CPU QEMU models here: AT S1E1* walks the real (shadow) tables and
    // leaves a host address in PAR_EL1 (HCR_EL2.AT, which would trap it, needs
    // FEAT_PAN2); and stores the emulation cannot decode (DC ZVA, exclusive or
    // atomic stores) to a live table page get an abort instead of completing.
    //
    // While the guest's MMU is off there is nothing to shadow: the VM runs on
    // its GPA -> HPA stage 2 like a stage-2 VM, and the shadows are dropped
    // (the guest may change its tables freely without an MMU).
    public sealed unsafe class ShadowPaging : ShadowHost
    {
        public const int PoolPages = 2048;                   // 8 MiB of shadow tables at most per VM
        private const ulong AsidMask = 0xFFFFUL << 48;
        private const ulong BaddrMask = 0x0000_FFFF_FFFF_F000;
        private const ulong TcrEpd1 = WalkRules.TcrEpd1, TcrHa = 1UL << 39, TcrHd = 1UL << 40;
        private const ulong SctlrM = WalkRules.SctlrM;

        private readonly VirtualMachine _vm;
        public readonly ShadowTables Tables;
        public readonly GuestTableWrites Writes;
        public IdentityMap Identity;

        // The guest's own values of the registers it cannot see the real ones of.
        public ulong GuestTtbr0, GuestTtbr1, GuestTcr;
        private ulong _root0, _root1;                        // live shadow roots, 0 when none

        public ShadowPaging(VirtualMachine vm)
        {
            _vm = vm;
            Tables = new ShadowTables(this, vm.TableMemory, Kernel.Cache, PoolPages);
            Writes = new GuestTableWrites(this);
        }

        public bool MmuOn => (SysReg.ReadSctlrEl1() & SctlrM) != 0;

        // A fresh start (boot, SYSTEM_RESET): registers as after reset, no shadows.
        public bool Start()
        {
            Tables.DropAll();
            Tables.FreeAllWaiting();
            GuestTtbr0 = GuestTtbr1 = GuestTcr = 0;
            _root0 = _root1 = 0;
            if (Identity == null) Identity = IdentityMap.Create(_vm);
            return Identity != null;
        }

        public void Release()
        {
            Tables.DropAll();
            Tables.FreeAllWaiting();
            _root0 = _root1 = 0;
            if (Identity != null) Identity.Destroy();
            Identity = null;
        }

        // ---- translation registers (HCR_EL2.TVM / TRVM) ----

        public ulong Read(TranslationRegister reg)
        {
            switch (reg)
            {
                case TranslationRegister.Ttbr0: return GuestTtbr0;
                case TranslationRegister.Ttbr1: return GuestTtbr1;
                case TranslationRegister.Tcr: return GuestTcr;
                default: return TranslationRegisters.ReadReal(reg);
            }
        }

        // False: the VM was stopped (the reason is logged).
        public bool Write(TranslationRegister reg, ulong value)
        {
            _vm.Counters.RegisterTraps++;
            switch (reg)
            {
                case TranslationRegister.Ttbr0:
                    GuestTtbr0 = value;
                    return MmuOn ? Activate(false) : Set(reg, value);
                case TranslationRegister.Ttbr1:
                    GuestTtbr1 = value;
                    return MmuOn ? Activate(true) : Set(reg, value);
                case TranslationRegister.Tcr:
                    // (The granule, cacheability and the rest were checked by
                    // WalkRules before this write got here.)
                    GuestTcr = value;
                    // The MMU must not set access/dirty bits in the shadow: the
                    // guest would never see them in its own tables.
                    SysReg.WriteTcrEl1(value & ~(TcrHa | TcrHd));
                    if (!MmuOn) return true;
                    Tables.DropAll();
                    _root0 = _root1 = 0;
                    return Activate(false) && Activate(true);
                case TranslationRegister.Sctlr:
                    return WriteSctlr(value);
                default:
                    return Set(reg, value);
            }
        }

        private bool WriteSctlr(ulong value)
        {
            bool wasOn = MmuOn;
            bool on = (value & SctlrM) != 0;
            if (on && !wasOn)
            {
                // Point the TTBRs at shadows before the MMU can walk anything.
                SysReg.WriteTtbr0El1(0);
                SysReg.WriteTtbr1El1(0);
                _vm.UseStage2Root(Identity.Root);
                SysReg.WriteSctlrEl1(value);
                if (!Activate(false) || !Activate(true)) return false;
                Log.Write("[hv] vm ");
                Log.Write(_vm.Name);
                Log.Write(": MMU on, shadow paging: TTBR0_EL1 ");
                Log.Hex(GuestTtbr0);
                Log.Write(" (guest) -> ");
                Log.Hex(SysReg.ReadTtbr0El1());
                Log.Write(" (shadow), ");
                Log.Dec((ulong)Tables.PagesInUse);
                Log.Line(" shadow table pages");
                return true;
            }
            if (!on && wasOn)
            {
                SysReg.WriteSctlrEl1(value);
                Tables.DropAll();
                _root0 = _root1 = 0;
                SysReg.WriteTtbr0El1(GuestTtbr0);
                SysReg.WriteTtbr1El1(GuestTtbr1);
                _vm.UseStage2Root(_vm.Stage2Root);
                return true;
            }
            SysReg.WriteSctlrEl1(value);
            return true;
        }

        // The real TTBR gets the shadow of the guest's root (same ASID).
        private bool Activate(bool upper)
        {
            ulong guest = upper ? GuestTtbr1 : GuestTtbr0;
            ulong tcr = GuestTcr;
            ulong real;
            if (upper && (tcr & TcrEpd1) != 0)
            {
                real = 0;                                    // no walks of the upper half
                _root1 = 0;
            }
            else
            {
                int size = (int)((upper ? tcr >> 16 : tcr) & 0x3f);
                int startLevel = StartLevel(upper);
                ulong vaBase = upper ? ~0UL << (64 - (size == 0 ? 64 : size)) : 0;
                ulong gpa = guest & BaddrMask;
                ulong root;
                if (!_vm.IsRam(gpa))
                {
                    root = ShadowTables.TrapIpa(gpa);        // the walk faults at EL2, as in stage-2 mode
                }
                else
                {
                    root = Tables.RootFor(gpa, upper, startLevel, vaBase, upper ? _root0 : _root1, out _);
                    if (root == 0) return Stop("shadow page pool exhausted");
                }
                if (upper) _root1 = root; else _root0 = root;
                real = root | (guest & AsidMask);
            }
            if (upper) SysReg.WriteTtbr1El1(real); else SysReg.WriteTtbr0El1(real);
            return true;
        }

        // The level a walk of that half starts at, from the guest's TxSZ (4 KiB
        // granule: up to 24 -> level 0, up to 33 -> level 1, else level 2).
        private int StartLevel(bool upper)
        {
            int size = (int)((upper ? GuestTcr >> 16 : GuestTcr) & 0x3f);
            return size <= 24 ? 0 : size <= 33 ? 1 : 2;
        }

        private static bool Set(TranslationRegister reg, ulong value)
        {
            TranslationRegisters.WriteReal(reg, value);
            return true;
        }

        private bool Stop(string why)
        {
            _vm.RequestStop(why);
            return false;
        }

        // ---- guest TLB maintenance (HCR_EL2.TTLB) ----

        // The shadows are already in step with every table write, so all a
        // guest TLBI has to do is what it says to the TLB. VMALLE1IS covers
        // every form, by VA or ASID, of this VM (TLBIs act on the current VMID).
        public void OnGuestTlbi()
        {
            _vm.Counters.GuestTlbiTraps++;
            Tlb.FlushGuestStage1(_vm);
        }

        // ---- stage-2 aborts while the shadows are live ----

        // An access through a shadow leaf that points into the trap window made
        // a RAM page present (demand fault, already done by the caller): point
        // the leaf at the frame. `va` is the guest's FAR.
        public void AfterDemandFault(ulong va, ulong gpa)
        {
            _vm.Counters.HiddenFaults++;
            ulong frame = GuestMemory.HostAddressOf(_vm, gpa & ~0xfffUL);
            if (frame == 0) return;
            bool upper = (va >> 55) != 0;
            ulong root = upper ? _root1 : _root0;
            if (root == 0 || ShadowTables.InTrapWindow(root)) return;
            Tables.FixLeaf(root, StartLevel(upper), va, gpa, frame);
        }

        // The guest's walk for `va` faulted at stage 2 reading a "table" at
        // TrapBase + `gpa`: if that was a deferred shadow entry
        // (ShadowBudget.cs) it is derived now and true says the access can be
        // retried. False: not a deferred entry (or the VM was stopped).
        public bool FillDeferred(ulong va, ulong gpa)
        {
            bool upper = (va >> 55) != 0;
            ulong root = upper ? _root1 : _root0;
            if (root == 0 || ShadowTables.InTrapWindow(root)) return false;
            ShadowStatus status = Tables.FillDeferred(root, StartLevel(upper), va, ShadowTables.TrapIpa(gpa), out bool filled);
            if (status != ShadowStatus.Ok) return Stop("shadow page pool exhausted");
            if (filled) _vm.Counters.HiddenFaults++;
            return filled;
        }

        // A stage-2 fault on the identity map (IPA == HPA): a guest write to
        // one of its page-table pages, or something this VM must not do.
        public bool IsGuestTable(ulong hpa) => Tables.IsMirrored(hpa & ~0xfffUL);

        // A GPA's frame changed under the guest (TestRemap): every shadow leaf
        // naming the old frame is stale. Rare, so rebuild from scratch.
        public void FramesMoved()
        {
            Tables.DropAll();
            _root0 = _root1 = 0;
            if (MmuOn) { Activate(false); Activate(true); }
        }

        // ---- ShadowHost: the builder's view of this VM ----

        public override bool IsRam(ulong gpa) => _vm.IsRam(gpa);
        public override bool TouchesRam(ulong gpa, ulong size) => gpa < _vm.RamBase + _vm.RamSize && gpa + size > _vm.RamBase;
        public override ulong FrameOf(ulong gpa) => _vm.IsRam(gpa) ? GuestMemory.HostAddressOf(_vm, gpa & ~0xfffUL) : 0;

        public override ulong Back(ulong gpa)
        {
            if (!_vm.IsRam(gpa) || !GuestMemory.MapOnDemand(_vm, gpa)) return 0;
            return GuestMemory.HostAddressOf(_vm, gpa & ~0xfffUL);
        }

        public override void WriteProtect(ulong hpa, bool readOnly)
        {
            if (Identity != null && !Identity.Protect(hpa, readOnly))
                Log.Line("[hv] shadow: no frame to split a stage-2 block; a guest table stays writable");
        }

        public override void InvalidateVa(ulong va) => Tlb.FlushGuestVa(_vm, va);
        public override void InvalidateAll() => Tlb.FlushGuestStage1(_vm);
    }

    // The guest's stores to its write-protected table pages, emulated like an
    // MMIO device (the same decoder handles STR, STP and the rest): the store
    // goes to memory, then every shadow mirroring that table follows. Its
    // "offsets" are host-physical addresses (Base 0).
    public sealed unsafe class GuestTableWrites : MmioDevice
    {
        private readonly ShadowPaging _shadow;

        public GuestTableWrites(ShadowPaging shadow) : base(0, ulong.MaxValue) { _shadow = shadow; }

        // Only write faults are routed here today, but a read must not become
        // a way to read any host address either: only an aligned access to a
        // guest table page the shadows mirror (one of this VM's frames).
        public override bool Read(VirtualMachine vm, ulong hpa, int size, out ulong value)
        {
            value = 0;
            if ((hpa & (ulong)(size - 1)) != 0 || !_shadow.IsGuestTable(hpa)) return false;
            value = MmioEmulation.TruncateToSize(*(ulong*)(hpa & ~7UL) >> (int)((hpa & 7) * 8), size);
            return true;
        }

        public override bool Write(VirtualMachine vm, ulong hpa, int size, ulong value)
        {
            if ((hpa & (ulong)(size - 1)) != 0 || !_shadow.IsGuestTable(hpa)) return false;
            vm.Counters.TableWriteTraps++;
            ulong* entry = (ulong*)(hpa & ~7UL);
            if (size == 8)
            {
                *entry = value;
            }
            else
            {
                int shift = (int)((hpa & 7) * 8);
                ulong mask = (size == 4 ? 0xFFFF_FFFFUL : size == 2 ? 0xFFFFUL : 0xFFUL) << shift;
                *entry = (*entry & ~mask) | ((value << shift) & mask);
            }
            // The store was the guest's, made by us: in DRAM as it would have
            // been had the guest's attributes said non-cacheable (Coherency.cs;
            // OnGuestWrite's barrier completes it).
            Kernel.Cache.CleanInvalidate((ulong)entry, 8);
            ulong page = hpa & ~0xfffUL;
            int index = (int)((hpa & 0xfff) >> 3);
            if (_shadow.Tables.OnGuestWrite(page, index, *entry) != ShadowStatus.Ok)
            {
                vm.RequestStop("shadow page pool exhausted");
                return false;
            }
            return true;
        }
    }
}
