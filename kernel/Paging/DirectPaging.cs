using System;
using Hypervisor.Arch;
using Hypervisor.Console;
using Hypervisor.Devices;
using Hypervisor.Mm;
using Hypervisor.Trap;
using Hypervisor.Vm;

namespace Hypervisor.Paging
{
    // paging=direct, the seed lecture's direct paging (直接页表, para-virtualized):
    // the guest knows it is virtualized. Its page tables hold machine (host-
    // physical) addresses and the MMU walks them as they are; the guest may
    // read them but changes them only through hypercalls that check every
    // entry first.
    //
    //   MachineFrames  which frames back my RAM? (allocates untouched pages)
    //   PinTable       this frame is a page table of level L from now on: it is
    //                  scrubbed, and read-only to the guest everywhere
    //   UnpinTable     it is plain memory again (nothing may point to it)
    //   MmuUpdate      a batch of { entry, new value } writes and TLB requests:
    //                  all validated before any is applied
    //   TTBR/TCR/SCTLR writes trap (HCR_EL2.TVM): with the MMU on, a TTBR must
    //                  name a pinned level-0 table
    //
    // The rules that keep the guest inside its own memory:
    //   a table entry points to a frame of this VM pinned at the next level;
    //   a leaf maps a frame of this VM, read-only if it is a pinned table; or
    //     lies outside host RAM in a window where this VM has a device (it
    //     traps: the identity stage 2 maps only RAM, so the device is emulated);
    //   nothing else: no other VM's frame, no hypervisor frame, no real device.
    //
    // Per-frame state is global (a frame belongs to one VM at a time):
    //   pinned level + 1 (0 = not a table); how many table entries point at it
    //   (it may stop being a table only at 0); how many writable leaves map it
    //   (it may become a table only at 0); the GPA it backs (to protect that
    //   mapping too). Read-only leaves may map a table: the guest reads its
    //   own tables, it just cannot write them.
    public sealed unsafe class DirectPaging : DirectTables
    {
        private const ulong OutputMask = 0x0000_FFFF_FFFF_F000;
        private const ulong ReservedHighOutput = 0x000F_0000_0000_0000;   // OA[51:48]: not on this machine
        private const ulong ContiguousHint = 1UL << 52;
        private const ulong ReadOnlyBit = 1UL << 7;                       // AP[2]
        private const ulong SctlrM = WalkRules.SctlrM, TcrEpd0 = WalkRules.TcrEpd0, TcrEpd1 = WalkRules.TcrEpd1, TcrHa = 1UL << 39, TcrHd = 1UL << 40;

        private static byte[] s_pinned;      // per host frame: level + 1, or 0
        private static uint[] s_tableRefs;   // per host frame: table descriptors naming it
        private static uint[] s_writable;    // per host frame: writable leaves mapping it
        private static uint[] s_pinnedGpa;   // per host frame: GPA page number it backs, while pinned

        private readonly VirtualMachine _vm;
        private readonly ulong[] _requests = new ulong[2 * HypercallAbi.Update.MaxRequests];
        public IdentityMap Identity;
        public ulong PinnedTables;

        public DirectPaging(VirtualMachine vm)
        {
            _vm = vm;
            if (s_pinned == null)
            {
                uint frames = Kernel.Frames.TotalFrames;
                s_pinned = new byte[frames];
                s_tableRefs = new uint[frames];
                s_writable = new uint[frames];
                s_pinnedGpa = new uint[frames];
            }
        }

        public bool Start()
        {
            if (Identity == null) Identity = IdentityMap.Create(_vm);
            return Identity != null;
        }

        // The VM's memory is going back to the host: its frames forget they
        // were tables. (The identity map is rebuilt writable by Release/Start.)
        public void Reset()
        {
            ulong start = Kernel.Frames.Base;
            for (uint f = 0; f < s_pinned.Length; f++)
            {
                if (s_pinned[f] == 0 && s_tableRefs[f] == 0 && s_writable[f] == 0) continue;
                if (Kernel.Frames.OwnerOf(start + ((ulong)f << 12)) != _vm.Owner) continue;
                if (s_pinned[f] != 0 && Identity != null) Identity.Protect(start + ((ulong)f << 12), false);
                s_pinned[f] = 0;
                s_tableRefs[f] = 0;
                s_writable[f] = 0;
                s_pinnedGpa[f] = 0;
            }
            PinnedTables = 0;
        }

        public void Release()
        {
            if (Identity != null) Identity.Destroy();
            Identity = null;
        }

        public static bool IsHostRam(ulong pa) =>
            pa >= Kernel.Frames.Base && pa - Kernel.Frames.Base < (ulong)Kernel.Frames.TotalFrames << 12;

        private bool Owns(ulong pa) => IsHostRam(pa) && Kernel.Frames.OwnerOf(pa) == _vm.Owner;
        private static uint FrameIndex(ulong pa) => (uint)((pa - Kernel.Frames.Base) >> 12);
        private static int PinnedLevel(ulong pa) => s_pinned[FrameIndex(pa)] - 1;

        // ---- hypercalls ----

        public void Hypercall(VirtualMachine vm, TrapFrame* frame, ulong fid)
        {
            long status;
            switch (fid)
            {
                case HypercallAbi.MachineFrames: status = MachineFrames(frame->X[1], frame->X[2], frame->X[3]); break;
                case HypercallAbi.PinTable: status = Pin(frame->X[1], frame->X[2], out frame->X[1]); break;
                case HypercallAbi.UnpinTable: status = Unpin(frame->X[1]); break;
                default: status = Update(frame->X[1], frame->X[2], out frame->X[1]); break;
            }
            if (status != HypercallAbi.Ok) vm.Counters.DirectRefused++;
            frame->X[0] = (ulong)status;
        }

        // buffer[i] = machine address of the page at firstGpa + i * 4 KiB.
        private long MachineFrames(ulong bufferGpa, ulong firstGpa, ulong pages)
        {
            if (pages == 0 || pages > 512 || (bufferGpa & 7) != 0 || (firstGpa & 0xfff) != 0) return HypercallAbi.InvalidParameter;
            if ((bufferGpa & 0xfff) + pages * 8 > 4096 || !_vm.IsRam(bufferGpa)) return HypercallAbi.InvalidParameter;
            if (!_vm.IsRam(firstGpa) || !_vm.IsRam(firstGpa + pages * 4096 - 1)) return HypercallAbi.InvalidParameter;
            ulong buffer = Backed(bufferGpa);
            if (buffer == 0) return HypercallAbi.NoMemory;
            if (s_pinned[FrameIndex(buffer)] != 0) return HypercallAbi.Denied;   // we would write into a table
            ulong answer = buffer + (bufferGpa & 0xfff);
            for (ulong i = 0; i < pages; i++)
            {
                ulong hpa = Backed(firstGpa + i * 4096);
                if (hpa == 0) return HypercallAbi.NoMemory;
                *(ulong*)(answer + i * 8) = hpa;
            }
            // The answer is in guest RAM (Coherency.cs): in DRAM before it returns.
            Kernel.Cache.CleanInvalidate(answer, pages * 8);
            Kernel.Cache.Barrier();
            return HypercallAbi.Ok;
        }

        private ulong Backed(ulong gpa)
        {
            ulong hpa = GuestMemory.HostAddressOf(_vm, gpa);
            if (hpa == 0 && GuestMemory.MapOnDemand(_vm, gpa)) hpa = GuestMemory.HostAddressOf(_vm, gpa);
            return hpa;
        }

        // x1 = GPA of the page, x2 = level -> x1 = its machine address.
        private long Pin(ulong gpa, ulong level, out ulong machine)
        {
            machine = 0;
            if ((gpa & 0xfff) != 0 || !_vm.IsRam(gpa) || level > 3) return HypercallAbi.InvalidParameter;
            ulong hpa = Backed(gpa);
            if (hpa == 0) return HypercallAbi.NoMemory;
            uint f = FrameIndex(hpa);
            if (s_pinned[f] != 0) return HypercallAbi.Denied;        // already a table
            if (s_writable[f] != 0) return HypercallAbi.Denied;      // still mapped writable somewhere
            // Read-only through the GPA stage 2 (MMU off) and the identity map
            // (MMU on, defence in depth: no valid entry can map it writable).
            if (_vm.Stage2.Map4K(gpa, hpa, Stage2.Attributes(Stage2MemoryType.NormalWriteBack, Stage2Access.ReadOnly, false)) != Stage2Status.Ok)
                return HypercallAbi.NoMemory;
            if (!Identity.Protect(hpa, true)) return HypercallAbi.NoMemory;
            // Empty in DRAM too: the MMU may walk it non-cacheably (Coherency.cs).
            Coherency.ZeroFrame(Kernel.Cache, hpa);
            Kernel.Cache.Barrier();
            s_pinned[f] = (byte)(level + 1);
            s_pinnedGpa[f] = (uint)(gpa >> 12);
            PinnedTables++;
            // A TLB entry from before may still map the page writable.
            Tlb.FlushGuestStage1(_vm);
            machine = hpa;
            return HypercallAbi.Ok;
        }

        private long Unpin(ulong machine)
        {
            if ((machine & 0xfff) != 0 || !Owns(machine)) return HypercallAbi.InvalidParameter;
            uint f = FrameIndex(machine);
            if (s_pinned[f] == 0) return HypercallAbi.InvalidParameter;
            if (s_tableRefs[f] != 0 || IsLiveRoot(machine)) return HypercallAbi.Denied;
            int level = s_pinned[f] - 1;
            for (int i = 0; i < 512; i++) Unreference(*(ulong*)(machine + (ulong)i * 8), level);
            ulong gpa = (ulong)s_pinnedGpa[f] << 12;
            s_pinned[f] = 0;
            s_pinnedGpa[f] = 0;
            PinnedTables--;
            Identity.Protect(machine, false);
            _vm.Stage2.Map4K(gpa, machine, Stage2.NormalReadWriteExecute);
            // The MMU's walk caches may still hold pointers into it.
            Tlb.FlushGuestStage1(_vm);
            return HypercallAbi.Ok;
        }

        private static bool IsLiveRoot(ulong machine) =>
            (SysReg.ReadTtbr0El1() & OutputMask) == machine || (SysReg.ReadTtbr1El1() & OutputMask) == machine;

        // x1 = GPA of { target, value } pairs, x2 = count.
        private long Update(ulong listGpa, ulong count, out ulong badIndex)
        {
            badIndex = 0;
            if (count == 0 || count > HypercallAbi.Update.MaxRequests || (listGpa & 0xf) != 0) return HypercallAbi.InvalidParameter;
            if ((listGpa & 0xfff) + count * 16 > 4096 || !_vm.IsRam(listGpa)) return HypercallAbi.InvalidParameter;
            ulong list = GuestMemory.HostAddressOf(_vm, listGpa & ~0xfffUL);
            if (list == 0) return HypercallAbi.InvalidParameter;
            // A private copy: what is validated is what is applied.
            ulong* source = (ulong*)(list + (listGpa & 0xfff));
            for (ulong i = 0; i < 2 * count; i++) _requests[i] = source[i];

            for (ulong i = 0; i < count; i++)
            {
                long status = Check(_requests[2 * i], _requests[2 * i + 1]);
                if (status != HypercallAbi.Ok)
                {
                    badIndex = i;
                    return status;
                }
            }
            ulong writes = DirectBatch.Apply(new ReadOnlySpan<ulong>(_requests).Slice(0, 2 * (int)count), this, Kernel.Cache);
            _vm.Counters.DirectUpdates += writes;
            _vm.Counters.DirectBatches++;
            return HypercallAbi.Ok;
        }

        // One request against the rules above. Nothing changes here.
        private long Check(ulong target, ulong value)
        {
            ulong kind = target & HypercallAbi.Update.KindMask;
            if (kind == HypercallAbi.Update.InvalidateVa || kind == HypercallAbi.Update.InvalidateAll) return HypercallAbi.Ok;
            if (kind != HypercallAbi.Update.WriteEntry) return HypercallAbi.InvalidParameter;
            if (!Owns(target) || s_pinned[FrameIndex(target)] == 0) return HypercallAbi.Denied;   // not one of its tables
            return CheckEntry(PinnedLevel(target), value);
        }

        public long CheckEntry(int level, ulong value)
        {
            if (!Descriptor.IsValid(value)) return HypercallAbi.Ok;
            if ((value & (ReservedHighOutput | ContiguousHint)) != 0) return HypercallAbi.InvalidParameter;
            ulong oa = value & OutputMask;
            if (Descriptor.IsTable(value, level))
                return Owns(oa) && PinnedLevel(oa) == level + 1 ? HypercallAbi.Ok : HypercallAbi.Denied;
            ulong size;
            if (Descriptor.IsPage(value, level)) size = 4096;
            else if (Descriptor.IsBlock(value, level)) size = Descriptor.LevelSize(level);
            else return HypercallAbi.InvalidParameter;                      // reserved encoding
            oa &= ~(size - 1);
            if (IsHostRam(oa) || IsHostRam(oa + size - 1))
            {
                if (size != 4096 || !Owns(oa)) return HypercallAbi.Denied;   // RAM only page by page, only its own
                if (s_pinned[FrameIndex(oa)] != 0 && (value & ReadOnlyBit) == 0) return HypercallAbi.Denied;   // a table, writable
                return HypercallAbi.Ok;
            }
            return HasDeviceIn(oa, size) ? HypercallAbi.Ok : HypercallAbi.Denied;
        }

        private bool HasDeviceIn(ulong oa, ulong size)
        {
            for (int i = 0; i < _vm.DeviceCount; i++)
            {
                MmioDevice d = _vm.Devices[i];
                if (d.Base >= oa && d.Base - oa < size) return true;
            }
            return false;
        }

        // DirectBatch's view of this VM: the counts follow each entry, TLBIs under its VMID.
        public override void Replaced(ulong entry, ulong old, ulong value)
        {
            int level = PinnedLevel(entry);
            Unreference(old, level);
            Reference(value, level);
        }

        public override void InvalidateVa(ulong va) => Tlb.FlushGuestVa(_vm, va);
        public override void InvalidateAll() => Tlb.FlushGuestStage1(_vm);

        // Entries of pinned tables count the frames they name (RAM only).
        private static void Reference(ulong value, int level) => Count(value, level, 1);
        private static void Unreference(ulong value, int level) => Count(value, level, unchecked((uint)-1));

        private static void Count(ulong value, int level, uint delta)
        {
            ulong oa = value & OutputMask;
            if (!Descriptor.IsValid(value) || !IsHostRam(oa)) return;
            if (Descriptor.IsTable(value, level)) s_tableRefs[FrameIndex(oa)] += delta;
            else if (Descriptor.IsPage(value, level) && (value & ReadOnlyBit) == 0) s_writable[FrameIndex(oa)] += delta;
        }

        // ---- translation registers (HCR_EL2.TVM) ----

        // Writes are checked against the state they would make (after the walk
        // rules every shadow and direct VM obeys, WalkRules.cs: endianness,
        // cacheability, the 4 KiB granule): with the MMU on, both halves must
        // walk pinned level-0 tables (or be disabled by EPD), with 48-bit VAs
        // and no hardware table updates.
        // A refused write raises an undefined-instruction exception at the MSR.
        public bool Write(VirtualMachine vm, TrapFrame* frame, TranslationRegister reg, ulong value)
        {
            vm.Counters.RegisterTraps++;
            ulong sctlr = SysReg.ReadSctlrEl1(), tcr = SysReg.ReadTcrEl1();
            ulong ttbr0 = SysReg.ReadTtbr0El1(), ttbr1 = SysReg.ReadTtbr1El1();
            switch (reg)
            {
                case TranslationRegister.Sctlr: sctlr = value; break;
                case TranslationRegister.Tcr: tcr = value; break;
                case TranslationRegister.Ttbr0: ttbr0 = value; break;
                case TranslationRegister.Ttbr1: ttbr1 = value; break;
                default:
                    TranslationRegisters.WriteReal(reg, value);
                    return true;
            }
            bool on = (sctlr & SctlrM) != 0;
            if (on && !SafeToWalk(tcr, ttbr0, ttbr1))
            {
                vm.Counters.DirectRefused++;
                Log.Write("[hv] vm ");
                Log.Write(vm.Name);
                Log.Line(": direct paging refused a translation register write (the MMU would walk an unchecked table)");
                Injection.UndefinedInstruction(vm, frame);
                return false;
            }
            bool wasOn = (SysReg.ReadSctlrEl1() & SctlrM) != 0;
            if (on && !wasOn) vm.UseStage2Root(Identity.Root);
            TranslationRegisters.WriteReal(reg, value);
            if (!on && wasOn) vm.UseStage2Root(vm.Stage2Root);
            return true;
        }

        private bool SafeToWalk(ulong tcr, ulong ttbr0, ulong ttbr1)
        {
            if ((tcr & (TcrHa | TcrHd)) != 0) return false;
            // (The granule was checked by WalkRules before this write got here.)
            if ((tcr & TcrEpd0) == 0 && ((tcr & 0x3f) != 16 || !IsRoot(ttbr0))) return false;
            if ((tcr & TcrEpd1) == 0 && (((tcr >> 16) & 0x3f) != 16 || !IsRoot(ttbr1))) return false;
            return true;
        }

        private bool IsRoot(ulong ttbr)
        {
            ulong root = ttbr & OutputMask;
            return Owns(root) && PinnedLevel(root) == 0;
        }
    }
}
