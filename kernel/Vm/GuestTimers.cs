using System.Runtime.CompilerServices;
using Hypervisor.Arch;
using Hypervisor.Trap;

namespace Hypervisor.Vm
{
    // A vCPU's two EL1 timers, as the level-triggered interrupt sources the
    // architecture makes them: a timer's line is high exactly while it is
    // enabled, not masked, and the counter has reached its compare value
    // (CNTx_CTL_EL0: ENABLE, not IMASK, ISTATUS). The guest sees that level in
    // GICR_ISPENDR0, and takes the interrupt again if it ends it without
    // clearing the condition.
    //
    // Virtual timer (CNTV_*, INTID 27): the guest programs the real one, and
    // the CPU raises PPI 27 at EL2 when its condition holds (HCR_EL2.IMO).
    // The hypervisor drives INTID 27 high in the VM's virtual GIC and turns
    // PPI 27 off at its own redistributor, since the level would interrupt it
    // again at once. While the line is high it is sampled again (from
    // CNTV_CTL_EL0) at every exit; when the guest has masked, stopped or
    // reprogrammed the timer it goes low and PPI 27 is on again. A guest's
    // handler does that without any exit, so the list register that presents
    // a timer interrupt asks for a maintenance interrupt when the guest ends
    // it (ICH_LR<n>_EL2.EOI, kernel/Vm/VgicCpu.cs): that exit samples the line.
    //
    // Physical timer (CNTP_*, INTID 30): emulated. CNTHCTL_EL2.EL1PCEN = 0
    // traps its registers; the hypervisor keeps CTL and CVAL, compares CVAL
    // with the physical counter (which the guest reads as it is, so the two
    // agree) and drives INTID 30; the scheduler's EL2 timer is armed for its
    // deadline.
    public sealed class GuestTimers
    {
        public const int VirtualIntid = 27, PhysicalIntid = 30;
        private const ulong Enable = VirtualTimerDeadline.Enable, Imask = VirtualTimerDeadline.Imask, Istatus = VirtualTimerDeadline.Istatus;

        private readonly Hypervisor.Devices.VgicState _gic;   // its vCPU's view (INTIDs 27 and 30 are private)
        public bool VirtualHigh;                 // INTID 27 driven high; PPI 27 off meanwhile
        private ulong _physicalCtl, _physicalCval;
        private bool _physicalHigh;              // INTID 30's line as last driven

        public GuestTimers(Hypervisor.Devices.VgicState gic) => _gic = gic;

        public void Reset()
        {
            VirtualHigh = false;
            _physicalHigh = false;
            _physicalCtl = _physicalCval = 0;
            _gic.SetLevel(VirtualIntid, false);
            _gic.SetLevel(PhysicalIntid, false);
        }

        private static bool Fires(ulong ctl) => (ctl & (Enable | Imask | Istatus)) == (Enable | Istatus);

        // ---- virtual timer (this VM is loaded) ----

        // PPI 27 reached EL2. Only if this VM's timer really fires: the PPI may
        // have been raised by the previous VM's timer just before a switch.
        public void VirtualPpi()
        {
            if (!Fires(SysReg.ReadCntvCtlEl0())) return;
            VirtualHigh = true;
            _gic.SetLevel(VirtualIntid, true);
            SetPpi(false);
        }

        // At an exit, while the line is high: still high?
        public void SampleVirtual()
        {
            if (Fires(SysReg.ReadCntvCtlEl0())) return;
            VirtualHigh = false;
            _gic.SetLevel(VirtualIntid, false);
            SetPpi(true);
        }

        // The VM's registers are now in the CPU: PPI 27 is on unless its line
        // is already high (the condition cannot clear while it was away).
        // The redistributor is written only when that changes (each CPU
        // remembers its own: PhysicalCpu.VirtualPpiOff).

        // Its emulated physical timer may have passed its deadline while the
        // VM waited its turn: its line goes high before the guest runs.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Loaded(Hypervisor.Smp.PhysicalCpu cpu)
        {
            if (VirtualHigh != cpu.VirtualPpiOff) SetPpi(!VirtualHigh);
            if (PhysicalWatched) SamplePhysical(SysReg.ReadCntpctEl0());
        }

        private static void SetPpi(bool on)
        {
            Hypervisor.Smp.Cpus.This.VirtualPpiOff = !on;
            Gic.SetPpiEnabled(Gic.VirtualTimerIntid, on);
        }

        // ---- physical timer (emulated) ----

        // When the line goes high by itself, in physical counter ticks, or
        // ulong.MaxValue if it is off or masked.
        public ulong PhysicalDeadline
        {
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            get => VirtualTimerDeadline.Physical(_physicalCtl, _physicalCval, 0);
        }

        // Enabled and not masked: it has a deadline (PhysicalDeadline may still
        // find it unreachable). The cheap test a scheduling point makes first.
        public bool PhysicalArmed
        {
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            get => (_physicalCtl & (Enable | Imask)) == Enable;
        }

        // Armed, or its line left high: worth sampling at a scheduling point.
        public bool PhysicalWatched
        {
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            get => (_physicalCtl & Enable) != 0 || _physicalHigh;
        }

        public void SamplePhysical(ulong now)
        {
            bool high = PhysicalDeadline <= now;
            if (high == _physicalHigh) return;   // the common case: nothing changed
            _physicalHigh = high;
            _gic.SetLevel(PhysicalIntid, high);
        }

        // CNTP_TVAL_EL0 (op2 0), CNTP_CTL_EL0 (op2 1), CNTP_CVAL_EL0 (op2 2).
        public ulong ReadPhysical(int op2, ulong now)
        {
            if (op2 == 1) return _physicalCtl | ((_physicalCtl & Enable) != 0 && _physicalCval <= now ? Istatus : 0);
            if (op2 == 2) return _physicalCval;
            return (ulong)(long)(int)(uint)(_physicalCval - now);   // TVAL: the low 32 bits of CVAL - count, signed
        }

        public void WritePhysical(int op2, ulong value, ulong now)
        {
            if (op2 == 1) _physicalCtl = value & (Enable | Imask);
            else if (op2 == 2) _physicalCval = value;
            else _physicalCval = now + (ulong)(long)(int)(uint)value;   // TVAL: signed 32 bits from now
            SamplePhysical(now);
            if (PhysicalDeadline != ulong.MaxValue && PhysicalDeadline > now) HypTimer.NoLaterThan(PhysicalDeadline);
        }
    }
}
