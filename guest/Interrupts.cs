using System.Runtime;
using System.Runtime.CompilerServices;
using Hypervisor.Arch;
using Hypervisor.Trap;

namespace Guest
{
    // The guest's side of its virtual GIC, enough to sleep on its own timer
    // and to leave state behind in the CPU interface on purpose. It never
    // unmasks IRQs: a WFI still ends when an interrupt is pending, and the
    // guest acknowledges it by reading ICC_IAR1_EL1.
    public static unsafe class Interrupts
    {
        [RuntimeImport("*", "read_icc_iar1_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadIar1();
        [RuntimeImport("*", "write_icc_eoir1_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteEoir1(ulong v);
        [RuntimeImport("*", "write_icc_pmr_el1")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void WritePmr(ulong v);
        [RuntimeImport("*", "write_icc_igrpen1_el1")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void WriteIgrpen1(ulong v);
        [RuntimeImport("*", "read_icc_ap1r0_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadAp1r0();
        [RuntimeImport("*", "write_icc_ap1r0_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteAp1r0(ulong v);
        [RuntimeImport("*", "write_cntv_ctl_el0")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void WriteCntvCtl(ulong v);
        [RuntimeImport("*", "write_cntv_cval_el0")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void WriteCntvCval(ulong v);
        [RuntimeImport("*", "read_cntv_ctl_el0")][MethodImpl(MethodImplOptions.InternalCall)] private static extern ulong ReadCntvCtl();
        [RuntimeImport("*", "read_cntp_cval_el0")][MethodImpl(MethodImplOptions.InternalCall)] private static extern ulong ReadCntpCval();
        [RuntimeImport("*", "write_cntp_cval_el0")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void WriteCntpCval(ulong v);
        [RuntimeImport("*", "read_cntp_tval_el0")][MethodImpl(MethodImplOptions.InternalCall)] private static extern ulong ReadCntpTval();
        [RuntimeImport("*", "write_cntp_tval_el0")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void WriteCntpTval(ulong v);
        [RuntimeImport("*", "read_cntpct_el0")][MethodImpl(MethodImplOptions.InternalCall)] private static extern ulong ReadCntpct();
        [RuntimeImport("*", "irq_mask")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void MaskIrqs();
        [RuntimeImport("*", "wait_for_interrupt")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void Wfi();

        public const int TimerIntid = 27, PhysicalTimerIntid = 30;
        private const ulong IspendR0 = SgiBase + 0x200;
        private const ulong TimerEnable = 1, TimerImask = 2, TimerIstatus = 4;
        private const ulong Gicd = Mmu.GicGva, SgiBase = Mmu.GicGva + 0xa0000 + 0x10000;
        private const ulong IgroupR0 = SgiBase + 0x80, IsenableR0 = SgiBase + 0x100, IpriorityR = SgiBase + 0x400;
        private const uint GicdEnableGrp1 = 1u << 1;

        // Group 1, priority 0xa0, enabled, for each INTID < 32 in `mask`; the
        // distributor's and the CPU interface's group 1 on, every priority let through.
        public static void EnablePrivate(uint mask)
        {
            Mmio.Write32(Gicd, GicdEnableGrp1);
            Mmio.Write32(IgroupR0, Mmio.Read32(IgroupR0) | mask);
            for (int i = 0; i < 32; i++)
                if ((mask & (1u << i)) != 0) Mmio.Write8(IpriorityR + (ulong)i, 0xa0);
            Mmio.Write32(IsenableR0, mask);
            WritePmr(0xff);
            WriteIgrpen1(1);
        }

        // Sleeps in WFI until the virtual timer fires `ticks` from now, then
        // takes the interrupt (IAR, EOIR). The wake-up's lateness in counter
        // ticks, or ulong.MaxValue if what arrived was not the timer.
        public static ulong SleepOnTimer(ulong ticks)
        {
            ulong deadline = Cpu.ReadVirtualCount() + ticks;
            WriteCntvCval(deadline);
            WriteCntvCtl(1);                 // enabled, not masked
            ulong intid;
            do
            {
                Wfi();
                intid = ReadIar1() & 0xffffff;
            } while (intid == 1023);         // nothing yet: a spurious wake
            ulong now = Cpu.ReadVirtualCount();
            WriteCntvCtl(0);
            WriteEoir1(intid);
            return intid == TimerIntid && now >= deadline ? now - deadline : ulong.MaxValue;
        }

        // ptimer: the EL1 physical timer works as on hardware (it is emulated:
        // its registers trap). A 10 ms sleep on it ends with INTID 30, no
        // earlier than its compare value against the physical counter;
        // CTL.ISTATUS and GICR_ISPENDR0 bit 30 follow the condition, and
        // masking the timer lowers the line at once; TVAL is CVAL - count.
        public static void PhysicalTimer()
        {
            MaskIrqs();
            EnablePrivate(1u << PhysicalTimerIntid);
            Cpu.WriteCntpCtl(0);
            ulong deadline = ReadCntpct() + Cpu.ReadCounterFrequency() / 100;
            WriteCntpCval(deadline);
            Cpu.WriteCntpCtl(TimerEnable);
            // Armed and not yet due: no ISTATUS, nothing pending. Unless the
            // vCPU was held back past the deadline between these reads (a
            // busy host can do that): then ISTATUS must be set, and the line
            // may or may not have been sampled yet.
            ulong beforeReads = ReadCntpct();
            ulong ctl = Cpu.ReadCntpCtl();
            bool pendingEarly = (Mmio.Read32(IspendR0) & (1u << PhysicalTimerIntid)) != 0;
            ulong afterReads = ReadCntpct();
            bool due = (ctl & TimerIstatus) != 0;
            bool armed = (ctl & ~TimerIstatus) == TimerEnable && ReadCntpCval() == deadline
                         && (afterReads >= deadline || (!due && !pendingEarly))
                         && (beforeReads < deadline || due);
            ulong intid;
            do { Wfi(); intid = ReadIar1() & 0xffffff; } while (intid == 1023);
            ulong now = ReadCntpct();
            bool fired = intid == PhysicalTimerIntid && now >= deadline;
            bool status = Cpu.ReadCntpCtl() == (TimerEnable | TimerIstatus) && (Mmio.Read32(IspendR0) & (1u << PhysicalTimerIntid)) != 0;
            Cpu.WriteCntpCtl(TimerEnable | TimerImask);
            bool lowered = (Mmio.Read32(IspendR0) & (1u << PhysicalTimerIntid)) == 0;
            WriteEoir1(intid);
            // TVAL = CVAL - count: bounded by the counter read before the
            // write and after the read, however long the vCPU waited between
            // (a busy host may hold it back for milliseconds).
            ulong before = ReadCntpct();
            WriteCntpTval(1000000);
            ulong tval = ReadCntpTval();
            ulong after = ReadCntpct(), cval = ReadCntpCval();
            bool tvalOk = tval <= 1000000 && tval + (after - before) >= 1000000 &&
                          cval >= before + 1000000 && cval <= after + 1000000;
            Cpu.WriteCntpCtl(0);
            SelfTests.Verdict("ptimer", armed && fired && status && lowered && tvalOk);
            Console.Write(armed ? "armed=yes" : "armed=NO");
            Console.Write(fired ? " fired=intid30" : " fired=NO");
            Console.Write(" late_ticks=");
            Console.Dec(fired ? now - deadline : 0);
            Console.Write(status ? " istatus=pending" : " istatus=WRONG");
            Console.Write(lowered ? " masked=lowered" : " masked=STILL-PENDING");
            Console.Write(tvalOk ? " tval=ok\n" : " tval=WRONG\n");
        }

        // role=ptimerswitch, beside a VM that spins: the physical timer's
        // deadline passes while this VM waits for its turn (it yields, the
        // spinner keeps the CPU for its whole slice). When it runs again the
        // line must already be high: GICR_ISPENDR0 shows INTID 30 pending at
        // once, and the CPU interface gives it.
        public static void PhysicalTimerAcrossASwitch()
        {
            MaskIrqs();
            EnablePrivate(1u << PhysicalTimerIntid);
            WriteCntpCval(ReadCntpct() + Cpu.ReadCounterFrequency() / 1000);   // 1 ms
            Cpu.WriteCntpCtl(TimerEnable);
            Cpu.Yield();                                                        // the spinner's 10 ms slice
            bool pending = (Mmio.Read32(IspendR0) & (1u << PhysicalTimerIntid)) != 0;
            ulong intid = ReadIar1() & 0xffffff;
            Cpu.WriteCntpCtl(0);
            if (intid != 1023) WriteEoir1(intid);
            SelfTests.Verdict("ptimerswitch", pending && intid == PhysicalTimerIntid);
            Console.Write(pending ? "pending_on_return=yes" : "pending_on_return=NO");
            Console.Write(" taken=");
            Console.Dec(intid);
            Console.Put('\n');
        }

        // timerlevel: the virtual timer's line is a level. Fired and not yet
        // taken (IRQs masked), INTID 27 is pending in GICR_ISPENDR0; masking
        // the timer (CNTV_CTL_EL0.IMASK, which does not exit) lowers it, so the
        // next read shows it not pending and the CPU interface has nothing to
        // give (ICC_IAR1_EL1 reads 1023); unmasked again, it is back.
        public static void VirtualTimerLevel()
        {
            MaskIrqs();
            EnablePrivate(1u << TimerIntid);
            WriteCntvCval(Cpu.ReadVirtualCount());
            WriteCntvCtl(TimerEnable);                                  // the condition holds at once
            Hvc.Call(HypercallAbi.Null);                                // an exit, after which PPI 27 has surely fired
            bool high = (Mmio.Read32(IspendR0) & (1u << TimerIntid)) != 0;
            bool statusBit = (ReadCntvCtl() & TimerIstatus) != 0;
            WriteCntvCtl(TimerEnable | TimerImask);
            bool low = (Mmio.Read32(IspendR0) & (1u << TimerIntid)) == 0;
            bool nothing = (ReadIar1() & 0xffffff) == 1023;
            WriteCntvCtl(TimerEnable);
            Hvc.Call(HypercallAbi.Null);
            bool again = (Mmio.Read32(IspendR0) & (1u << TimerIntid)) != 0;
            ulong intid = ReadIar1() & 0xffffff;
            WriteCntvCtl(0);
            WriteEoir1(intid);
            bool gone = (Mmio.Read32(IspendR0) & (1u << TimerIntid)) == 0;
            SelfTests.Verdict("timerlevel", high && statusBit && low && nothing && again && intid == TimerIntid && gone);
            Console.Write(high ? "fired=pending" : "fired=NOT-PENDING");
            Console.Write(low ? " masked=not-pending" : " masked=STILL-PENDING");
            Console.Write(nothing ? " iar=1023" : " iar=GAVE-ONE");
            Console.Write(again ? " unmasked=pending" : " unmasked=NOT-PENDING");
            Console.Write(" taken=");
            Console.Dec(intid);
            Console.Write(gone ? " stopped=not-pending\n" : " stopped=STILL-PENDING\n");
        }

        // role=sleeper: sleeps on its timer `rounds` times, 20 ms each, and
        // checks at every wake that no other VM's active priority is in its
        // CPU interface. Passes when every sleep ended by its own timer.
        public static void Sleeper()
        {
            MaskIrqs();
            EnablePrivate(1u << TimerIntid);
            ulong tick = Cpu.ReadCounterFrequency() / 50;
            ulong worst = 0, foreignPriorities = 0;
            const int Rounds = 20;
            for (int i = 0; i < Rounds; i++)
            {
                if (ReadAp1r0() != 0) foreignPriorities++;
                ulong late = SleepOnTimer(tick);
                if (late > worst) worst = late;
            }
            bool ok = worst != ulong.MaxValue && foreignPriorities == 0;
            SelfTests.Verdict("sleeper", ok);
            Console.Write("rounds=");
            Console.Dec(Rounds);
            Console.Write(" worst_late_us=");
            Console.Dec(worst == ulong.MaxValue ? worst : worst * 1000000 / Cpu.ReadCounterFrequency());
            Console.Write(" foreign_active_priorities=");
            Console.Dec(foreignPriorities);
            Console.Put('\n');
        }

        // role=gicleftovers: leaves everything it can in the CPU interface and
        // goes. First an active priority of 0 (ICC_AP1R0_EL1 bit 0, which masks
        // every interrupt) with nothing in the list registers, and yields;
        // then eight SGIs to itself with IRQs masked (four fill the list
        // registers, the rest wait: ICH_HCR_EL2.UIE asks for a maintenance
        // interrupt), yields until the VM beside it is asleep, and calls
        // SYSTEM_OFF. Nothing of this may reach the next VM on the CPU, or the
        // CPU once no VM is left runnable.
        public static void Leftovers()
        {
            MaskIrqs();
            EnablePrivate(0xff);
            WriteAp1r0(1);
            bool kept = ReadAp1r0() == 1;
            for (int i = 0; i < 5; i++)
            {
                Cpu.Yield();
                if (ReadAp1r0() != 1) kept = false;      // our own state comes back with us
            }
            for (ulong sgi = 0; sgi < 8; sgi++) Cpu.WriteSgi1r(sgi << 24 | 1);
            Hvc.Call(HypercallAbi.Null);                 // one more exit: the list registers fill
            ulong until = Cpu.ReadVirtualCount() + Cpu.ReadCounterFrequency() / 100;
            while (Cpu.ReadVirtualCount() < until) Cpu.Yield();
            Console.Write("gicleftovers: active priority 0 set, 8 SGIs pending; own state kept across switches: ");
            Console.Line(kept ? "yes" : "NO");
        }
    }
}
