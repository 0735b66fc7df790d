using System.Runtime;
using System.Runtime.CompilerServices;
using Hypervisor.Console;

namespace Hypervisor.Arch
{
    // The physical GICv3, owned by the hypervisor. For now it delivers one
    // interrupt: the EL2 physical timer (CNTHP, PPI 10 = INTID 26) that ends a
    // VM's time slice. With HCR_EL2.IMO set, a physical IRQ that arrives while a
    // guest runs is taken to EL2 whatever the guest's PSTATE.I says, so even a
    // guest spinning with interrupts masked gets preempted.
    //
    // Distributor (GICD) and redistributor (GICR) are memory-mapped; the CPU
    // interface is the ICC_* system registers (boot/gic.s).
    public static class Gic
    {
        public const uint HypTimerIntid = 26;
        public const uint VirtualTimerIntid = 27;   // CNTV: the guest's own timer, PPI 11
        public const uint MaintenanceIntid = 25;    // the virtual CPU interface wants attention, PPI 9
        public const uint SpuriousIntid = 1023;

        private const ulong GicdCtlr = 0x0000;
        private const uint GicdCtlrRwp = 1u << 31;
        private const uint GicdCtlrAreNs = 1u << 4, GicdCtlrEnableGrp1A = 1u << 1;

        private const ulong GicrWaker = 0x0014;
        private const uint WakerProcessorSleep = 1u << 1, WakerChildrenAsleep = 1u << 2;
        private const ulong SgiBase = 0x10000;               // second 64 KiB frame of a redistributor
        private const ulong GicrIgroupr0 = SgiBase + 0x0080;
        private const ulong GicrIsenabler0 = SgiBase + 0x0100;
        private const ulong GicrIcenabler0 = SgiBase + 0x0180;
        private const ulong GicrIpriorityr = SgiBase + 0x0400;

        [RuntimeImport("*", "read_icc_sre_el2")][MethodImpl(MethodImplOptions.InternalCall)] private static extern ulong ReadIccSreEl2();
        [RuntimeImport("*", "write_icc_sre_el2")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void WriteIccSreEl2(ulong v);
        [RuntimeImport("*", "write_icc_pmr_el1")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void WriteIccPmrEl1(ulong v);
        [RuntimeImport("*", "write_icc_bpr1_el1")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void WriteIccBpr1El1(ulong v);
        [RuntimeImport("*", "write_icc_ctlr_el1")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void WriteIccCtlrEl1(ulong v);
        [RuntimeImport("*", "write_icc_igrpen1_el1")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void WriteIccIgrpen1El1(ulong v);
        [RuntimeImport("*", "read_icc_iar1_el1")][MethodImpl(MethodImplOptions.InternalCall)] private static extern ulong ReadIccIar1El1();
        [RuntimeImport("*", "write_icc_eoir1_el1")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void WriteIccEoir1El1(ulong v);

        [RuntimeImport("*", "write_icc_sgi1r_el1")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void WriteIccSgi1rEl1(ulong v);

        private const ulong GicrTyper = 0x0008;
        private const ulong TyperVlpis = 1UL << 1, TyperLast = 1UL << 4;

        public static bool Present { get; private set; }
        private static ulong s_redistributors;      // the first GICR frame of the region

        // The distributor, once, on the boot CPU; then its own CPU interface.
        public static void Init(ulong distributor, ulong redistributor)
        {
            if (distributor == 0 || redistributor == 0)
            {
                // A GICv2 (GIC-400 boards, QEMU gic-version=2) or none: the
                // guests' interrupts need GICv3's virtual CPU interface
                // (ICH_*_EL2), and the hypervisor's time slices its timer PPI.
                Log.Line("[hv] no GICv3 in the device tree (GICv2 is not supported: guests need GICv3's virtual CPU interface); powering off");
                return;
            }
            // Distributor: affinity routing on, group 1 (non-secure) enabled.
            Mmio.Write32(distributor + GicdCtlr, GicdCtlrAreNs | GicdCtlrEnableGrp1A);
            while ((Mmio.Read32(distributor + GicdCtlr) & GicdCtlrRwp) != 0) { }

            s_redistributors = redistributor;
            Present = InitCpu(Hypervisor.Smp.Cpus.This);
        }

        // Every CPU for itself: its redistributor (found by affinity) woken,
        // with the interrupts the hypervisor takes enabled in group 1 (its
        // own timer, the guests' virtual timer, which the virtual GIC passes
        // on, the maintenance interrupt, and the kick SGI another CPU sends to
        // wake it), and its CPU interface through system registers.
        public static bool InitCpu(Hypervisor.Smp.PhysicalCpu cpu)
        {
            ulong redistributor = FindRedistributor(cpu.Mpidr);
            if (redistributor == 0)
            {
                Log.Line("[hv] no GIC redistributor for this CPU's affinity; it runs no guests");
                return false;
            }
            cpu.Redistributor = redistributor;
            uint waker = Mmio.Read32(redistributor + GicrWaker);
            Mmio.Write32(redistributor + GicrWaker, waker & ~WakerProcessorSleep);
            while ((Mmio.Read32(redistributor + GicrWaker) & WakerChildrenAsleep) != 0) { }
            EnablePpi(redistributor, HypTimerIntid);
            EnablePpi(redistributor, VirtualTimerIntid);
            EnablePpi(redistributor, MaintenanceIntid);
            EnablePpi(redistributor, Hypervisor.Smp.Cpus.KickIntid);

            // CPU interface through system registers (SRE), all priorities
            // unmasked, group 1 on, EOI both drops priority and deactivates.
            WriteIccSreEl2(ReadIccSreEl2() | 1 | (1 << 3));
            WriteIccPmrEl1(0xff);
            WriteIccBpr1El1(0);
            WriteIccCtlrEl1(0);
            WriteIccIgrpen1El1(1);
            cpu.GicUp = true;
            return true;
        }

        // GICR_TYPER.Affinity (bits 63:32, Aff3.Aff2.Aff1.Aff0) names the CPU
        // each redistributor serves; they sit one after another, two 64 KiB
        // frames each (four with virtual LPIs), the last one marked Last.
        private static ulong FindRedistributor(ulong mpidr)
        {
            uint want = (uint)(mpidr & 0xffffff) | (uint)((mpidr >> 32) & 0xff) << 24;
            ulong frame = s_redistributors;
            for (int i = 0; i < 256; i++)
            {
                ulong typer = Mmio.Read32(frame + GicrTyper) | (ulong)Mmio.Read32(frame + GicrTyper + 4) << 32;
                if ((uint)(typer >> 32) == want) return frame;
                if ((typer & TyperLast) != 0) return 0;
                frame += (typer & TyperVlpis) != 0 ? 0x40000UL : 0x20000UL;
            }
            return 0;
        }

        // An SGI to one CPU: ICC_SGI1R_EL1 names it by Aff3.Aff2.Aff1 and a
        // bit for its Aff0 in a 16-wide TargetList (RS selects which 16).
        public static void SendSgi(ulong mpidr, uint intid)
        {
            ulong aff0 = mpidr & 0xff;
            ulong value = (1UL << (int)(aff0 & 15)) | ((mpidr >> 8) & 0xff) << 16 | (ulong)(intid & 15) << 24 |
                          ((mpidr >> 16) & 0xff) << 32 | (aff0 >> 4) << 44 | ((mpidr >> 32) & 0xff) << 48;
            WriteIccSgi1rEl1(value);
        }

        private static void EnablePpi(ulong redistributor, uint intid)
        {
            Mmio.Write32(redistributor + GicrIgroupr0, Mmio.Read32(redistributor + GicrIgroupr0) | (1u << (int)intid));
            uint prio = Mmio.Read32(redistributor + GicrIpriorityr + (intid & ~3u));
            int shift = (int)(intid & 3) * 8;
            prio = (prio & ~(0xffu << shift)) | (0x80u << shift);
            Mmio.Write32(redistributor + GicrIpriorityr + (intid & ~3u), prio);
            Mmio.Write32(redistributor + GicrIsenabler0, 1u << (int)intid);
        }

        // One of this CPU's PPIs on or off at its redistributor (the virtual
        // timer's, while the guest's line is high: kernel/Vm/GuestTimers.cs).
        // No wait for GICR_CTLR.RWP: one more delivery of a disabled PPI is
        // harmless, its handler checks the condition anyway.
        public static void SetPpiEnabled(uint intid, bool on) =>
            Mmio.Write32(Hypervisor.Smp.Cpus.This.Redistributor + (on ? GicrIsenabler0 : GicrIcenabler0), 1u << (int)intid);

        [RuntimeImport("*", "read_icc_hppir1_el1")][MethodImpl(MethodImplOptions.InternalCall)] private static extern ulong ReadIccHppir1El1();

        // A CPU woken from a lock wait by the kick SGI takes it now, so the
        // next WFI sleeps again; any other interrupt stays pending for the
        // code that handles it.
        public static void ConsumeKick()
        {
            if (((uint)ReadIccHppir1El1() & 0xffffff) != Hypervisor.Smp.Cpus.KickIntid) return;
            uint intid = Acknowledge();
            EndOfInterrupt(intid);
        }

        public static uint Acknowledge() => (uint)ReadIccIar1El1() & 0xffffff;
        public static void EndOfInterrupt(uint intid) => WriteIccEoir1El1(intid);
    }

    // The EL2 physical timer (CNTHP): the scheduler's tick.
    public static class HypTimer
    {
        [RuntimeImport("*", "hyp_timer_arm")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void ArmAfter(ulong ticks);
        [RuntimeImport("*", "write_cnthp_ctl_el2")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void WriteCtl(ulong v);

        private const ulong Enable = 1;

        // Fires (INTID 26) after `ticks` of the system counter: CNTHP_TVAL,
        // then CNTHP_CTL enabled, in one call (every scheduling point arms it).
        public static void Arm(ulong ticks) => ArmAfter(ticks);

        public static void Stop() => WriteCtl(0);

        [RuntimeImport("*", "read_cnthp_cval_el2")][MethodImpl(MethodImplOptions.InternalCall)] private static extern ulong ReadCval();
        [RuntimeImport("*", "write_cnthp_cval_el2")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void WriteCval(ulong v);
        [RuntimeImport("*", "read_cnthp_ctl_el2")][MethodImpl(MethodImplOptions.InternalCall)] private static extern ulong ReadCtl();

        // Fires no later than `deadline` (physical counter ticks): brought
        // forward if it was armed for later, left alone if sooner. A guest's
        // emulated timer cannot lengthen the slice this way, only end it early.
        public static void NoLaterThan(ulong deadline)
        {
            if ((ReadCtl() & Enable) != 0 && ReadCval() <= deadline) return;
            WriteCval(deadline);
            WriteCtl(Enable);
        }
    }
}
