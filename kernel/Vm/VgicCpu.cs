using System;
using System.Runtime;
using System.Runtime.CompilerServices;
using Hypervisor.Devices;

namespace Hypervisor.Vm
{
    // The other half of the virtual GIC: its CPU interface. The guest talks
    // to it through the ICC_* system registers, which with HCR_EL2.IMO set
    // reach the hardware's *virtual* CPU interface (ICV_*), not the real one.
    // What that interface shows the guest is what the hypervisor writes into
    // the list registers ICH_LR<n>_EL2: up to four interrupts, each
    // pending, active, or both. The guest acknowledges (IAR) and ends (EOIR)
    // them without any exit; the hypervisor notices on the next exit.
    //
    //   exit  -> Sync:  list registers that went back to invalid were
    //                   handled by the guest: the distributor model forgets them
    //   entry -> Fill:  the most urgent deliverable interrupts that are not in
    //                   a list register yet go into the empty ones; if some do
    //                   not fit, ICH_HCR_EL2.UIE asks for a maintenance
    //                   interrupt when the list runs low
    //   switch-> Save/Restore the list registers, ICH_VMCR_EL2 (the guest's
    //                   virtual PMR, BPR, group enables) and all the active
    //                   priorities ICH_AP0R<n>/AP1R<n>; ICH_HCR_EL2 is zero
    //                   while no VM is loaded
    //
    // The distributor/redistributor state (enables, priorities, pending) is in
    // kernel/Devices/VgicState.cs and emulated by VgicDistributor and
    // VgicRedistributor.
    public sealed unsafe class VgicCpu : VgicListener
    {
        private const ulong HcrEn = 1, HcrUie = 1UL << 1;
        private const int StateShift = 62;
        private const ulong StatePending = 1UL << StateShift, StateActive = 2UL << StateShift;
        private const ulong Group1 = 1UL << 60;
        private const ulong EoiMaintenance = 1UL << 41;   // ICH_LR<n>_EL2.EOI: tell EL2 when the guest ends it
        private const int PriorityShift = 48;
        public const int MaxListRegisters = 4;

        [RuntimeImport("*", "read_ich_hcr_el2")][MethodImpl(MethodImplOptions.InternalCall)] private static extern ulong ReadHcr();
        [RuntimeImport("*", "write_ich_hcr_el2")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void WriteHcr(ulong v);
        [RuntimeImport("*", "read_ich_vmcr_el2")][MethodImpl(MethodImplOptions.InternalCall)] private static extern ulong ReadVmcr();
        [RuntimeImport("*", "write_ich_vmcr_el2")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void WriteVmcr(ulong v);
        [RuntimeImport("*", "ich_cpu_save")][MethodImpl(MethodImplOptions.InternalCall)] private static extern ulong SaveCpuInterface(ulong* activePriorities, int perGroup);
        [RuntimeImport("*", "ich_cpu_restore")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void RestoreCpuInterface(ulong* activePriorities, int perGroup, ulong vmcr);
        [RuntimeImport("*", "read_ich_lr0_el2")][MethodImpl(MethodImplOptions.InternalCall)] private static extern ulong ReadLr0();
        [RuntimeImport("*", "write_ich_lr0_el2")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void WriteLr0(ulong v);
        [RuntimeImport("*", "read_ich_lr1_el2")][MethodImpl(MethodImplOptions.InternalCall)] private static extern ulong ReadLr1();
        [RuntimeImport("*", "write_ich_lr1_el2")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void WriteLr1(ulong v);
        [RuntimeImport("*", "read_ich_lr2_el2")][MethodImpl(MethodImplOptions.InternalCall)] private static extern ulong ReadLr2();
        [RuntimeImport("*", "write_ich_lr2_el2")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void WriteLr2(ulong v);
        [RuntimeImport("*", "read_ich_lr3_el2")][MethodImpl(MethodImplOptions.InternalCall)] private static extern ulong ReadLr3();
        [RuntimeImport("*", "write_ich_lr3_el2")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void WriteLr3(ulong v);
        [RuntimeImport("*", "read_ich_vtr_el2")][MethodImpl(MethodImplOptions.InternalCall)] private static extern ulong ReadVtr();
        [RuntimeImport("*", "write_icc_sre_el1")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void WriteIccSreEl1(ulong v);

        private static int s_listRegisters;
        private static int s_aprPerGroup;          // ICH_AP0R<n>/AP1R<n> registers: 1, 2 or 4

        public readonly VgicState State;
        private readonly ulong[] _lr = new ulong[MaxListRegisters];
        private readonly int[] _inList = new int[MaxListRegisters];   // INTID in each list register, -1 when empty
        private ulong _vmcr;
        private readonly ulong[] _apr = new ulong[8];   // AP0R0..3, AP1R0..3 (ich_cpu_save's layout)
        private readonly ulong* _aprWords;              // its address, taken once (objects never move)
        public ulong Injected, Completed;

        // Read by the exit path before it calls in (a call costs more than the
        // check): list registers in use, and whether the model changed since
        // the last Fill.
        public int Listed;
        public bool Dirty;

        private readonly Vcpu _vcpu;

        public VgicCpu(Vcpu vcpu)
        {
            _vcpu = vcpu;
            State = vcpu.Gic;
            State.Listener = this;
            for (int i = 0; i < MaxListRegisters; i++) _inList[i] = -1;
            fixed (ulong* words = _apr) _aprWords = words;
        }

        // Something may now be deliverable: Fill looks before the next entry.
        // For a vCPU not on this physical CPU the scheduler makes sure that
        // entry comes (kernel/Vm/Scheduler.cs, Notice).
        public override void Changed()
        {
            Dirty = true;
            if (_vcpu.LoadedIn != Hypervisor.Smp.Cpus.This) Scheduler.Notice(_vcpu);
        }

        // Once, at boot: how many list registers this CPU has, and the guests'
        // ICC_SRE_EL1 (system-register interface on, as every GICv3 guest expects).
        public static void Init()
        {
            ulong vtr = ReadVtr();
            int n = (int)(vtr & 0x1f) + 1;
            s_listRegisters = n < MaxListRegisters ? n : MaxListRegisters;
            int priorityBits = (int)((vtr >> 29) & 7) + 1;
            s_aprPerGroup = priorityBits >= 7 ? 4 : priorityBits == 6 ? 2 : 1;
            InitCpu();
        }

        // Every CPU for itself, as it comes up.
        public static void InitCpu()
        {
            WriteHcr(0);         // no virtual interface, no maintenance interrupt, until a VM is loaded
            WriteIccSreEl1(7);   // SRE, DFB, DIB
        }

        public void Reset()
        {
            for (int i = 0; i < MaxListRegisters; i++) { _lr[i] = 0; _inList[i] = -1; }
            _vmcr = 0;
            for (int i = 0; i < _apr.Length; i++) _apr[i] = 0;
            Listed = 0;
            Dirty = false;
            State.Reset();
        }

        // ---- VM switch ----

        // Between two VMs the CPU interface holds nothing of anyone's: no list
        // register, no active priority, ICH_HCR_EL2 zero. That last one
        // matters when no VM follows: with UIE left set the maintenance
        // interrupt would stay asserted while the CPU idles, and the idle
        // loop would take it forever. The active priorities move every time,
        // whether or not anything is listed: a guest may write ICC_AP1R0_EL1
        // itself, and a bit left there masks the next VM's interrupts.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Restore()
        {
            RestoreCpuInterface(_aprWords, s_aprPerGroup, _vmcr);
            if (Listed != 0)
            {
                for (int i = 0; i < s_listRegisters; i++) if (_inList[i] >= 0) WriteLr(i, _lr[i]);
            }
            WriteHcr(HcrEn);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Save()
        {
            _vmcr = SaveCpuInterface(_aprWords, s_aprPerGroup);   // ICH_HCR_EL2 = 0 first, then VMCR and the active priorities
            if (Listed == 0) return;
            for (int i = 0; i < s_listRegisters; i++)
            {
                if (_inList[i] < 0) continue;
                _lr[i] = ReadLr(i);
                WriteLr(i, 0);
            }
        }

        // ---- every exit and entry ----

        // On exit: which list registers has the guest finished with?
        // Nothing to do (the common case) costs one compare.
        public void Sync()
        {
            if (Listed == 0) return;
            for (int i = 0; i < s_listRegisters; i++)
            {
                int intid = _inList[i];
                if (intid < 0) continue;
                ulong lr = ReadLr(i);
                ulong state = lr & (3UL << StateShift);
                if (state == 0)
                {
                    // Written back to zero: an ended EOI-flagged register would
                    // otherwise keep the maintenance interrupt asserted.
                    if ((lr & EoiMaintenance) != 0) WriteLr(i, 0);
                    _inList[i] = -1;
                    Listed--;
                    Completed++;
                    State.Retired(intid, false, false);
                    // Something may have waited for this list register, or for
                    // this interrupt to finish (raised again while active, or a
                    // level line still high): Fill must look again.
                    Dirty = true;
                }
                else if (state == StatePending && State.IsLevelSensitive(intid) && !State.IsPending(intid))
                {
                    // Not taken yet, and its line went low meanwhile (a timer
                    // stopped, a device's interrupt cleared): as on a real GIC,
                    // it is no longer pending for the guest either.
                    WriteLr(i, 0);
                    _inList[i] = -1;
                    Listed--;
                    Dirty = true;
                }
                else
                {
                    // Still listed (pending, or taken and not yet ended): the
                    // list register keeps carrying it, so only its active
                    // state is recorded. Latching an edge that is still
                    // pending here would deliver it a second time once the
                    // register empties (an SGI taken twice).
                    State.Retired(intid, false, (state & StateActive) != 0);
                }
            }
        }

        // Before entry: fill empty list registers with what is deliverable.
        // The test is inlined into every caller (the exit path, a switch's
        // Load): the refill's prologue and stack cookie alone cost 26
        // instructions, paid for nothing when nothing changed.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Fill()
        {
            if (Dirty) Refill();
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private void Refill()
        {
            Dirty = false;
            Span<int> exclude = stackalloc int[MaxListRegisters];
            int listed = 0;
            for (int i = 0; i < s_listRegisters; i++) if (_inList[i] >= 0) exclude[listed++] = _inList[i];
            bool more = false;
            for (int i = 0; i < s_listRegisters; i++)
            {
                if (_inList[i] >= 0) continue;
                int intid = State.NextDeliverable(exclude.Slice(0, listed));
                if (intid < 0) break;
                // A level-sensitive PPI is a timer, whose line the guest can lower
                // without an exit: its end is worth one, to look at the line.
                ulong eoi = intid >= 16 && intid < 32 && State.IsLevelSensitive(intid) ? EoiMaintenance : 0;
                WriteLr(i, (ulong)(uint)intid | ((ulong)State.Priority(intid) << PriorityShift) | Group1 | StatePending | eoi);
                _inList[i] = intid;
                Listed++;
                State.Delivered(intid);
                exclude[listed++] = intid;
                Injected++;
            }
            if (listed == s_listRegisters) more = State.NextDeliverable(exclude.Slice(0, listed)) >= 0;
            WriteHcr(more ? HcrEn | HcrUie : HcrEn);
            Dirty = false;   // Delivered() above notified us of our own change
        }

        // The guest has something to take (a WFI must not sleep).
        public bool HasWork()
        {
            for (int i = 0; i < s_listRegisters; i++) if (_inList[i] >= 0) return true;
            return State.NextDeliverable(default) >= 0;
        }

        private static ulong ReadLr(int i) => i == 0 ? ReadLr0() : i == 1 ? ReadLr1() : i == 2 ? ReadLr2() : ReadLr3();

        private static void WriteLr(int i, ulong v)
        {
            if (i == 0) WriteLr0(v);
            else if (i == 1) WriteLr1(v);
            else if (i == 2) WriteLr2(v);
            else WriteLr3(v);
        }
    }

    // A VM with several vCPUs: a change to its SPIs (a device line, the
    // distributor's registers) may concern any of them, so each is told.
    public sealed class SpiFanOut : VgicListener
    {
        private readonly VirtualMachine _vm;

        public SpiFanOut(VirtualMachine vm) => _vm = vm;

        public override void Changed()
        {
            Vcpu[] vcpus = _vm.Vcpus;
            for (int i = 0; i < vcpus.Length; i++) vcpus[i].VgicCpu.Changed();
        }
    }
}
