namespace Guest
{
    // role=timerprobe: how late this VM's virtual timer wakes it while other
    // VMs run. Each round arms CNTV_CVAL_EL0 one period ahead, waits in WFI
    // (IRQs stay masked at EL1: the pending interrupt ends the WFI, then it is
    // acknowledged by hand) and measures CNTVCT_EL0 - deadline. The worst
    // lateness is what a hostile neighbour's long exits cost this VM.
    public static unsafe class TimerProbe
    {
        private const int TimerIntid = 27;
        private const ulong Gicd = Mmu.GicGva, SgiFrame = Mmu.GicGva + 0xa0000 + 0x10000;
        private const ulong CntvEnable = 1;

        public static void Run(int rounds, ulong periodUs)
        {
            EnableTimerInterrupt();
            ulong frequency = 62_500_000;                       // CNTFRQ on QEMU virt
            ulong period = periodUs * (frequency / 1_000_000);
            ulong worst = 0, total = 0;
            for (int i = 0; i < rounds; i++)
            {
                ulong deadline = Cpu.ReadVirtualCount() + period;
                Cpu.WriteCntvCval(deadline);
                Cpu.WriteCntvCtl(CntvEnable);
                ulong now;
                while ((now = Cpu.ReadVirtualCount()) < deadline) Cpu.WaitForInterrupt();
                Cpu.WriteCntvCtl(0);
                ulong intid = Cpu.ReadIccIar1() & 0xffffff;
                if (intid == TimerIntid) Cpu.WriteIccEoir1(intid);
                ulong late = now - deadline;
                total += late;
                if (late > worst) worst = late;
            }
            ulong ticksPerUs = frequency / 1_000_000;
            SelfTests.Verdict("timer-lateness", rounds > 0);
            Console.Write("rounds=");
            Console.Dec((ulong)rounds);
            Console.Write(" worst_us=");
            Console.Dec(worst / ticksPerUs);
            Console.Write(" mean_us=");
            Console.Dec(rounds > 0 ? total / (ulong)rounds / ticksPerUs : 0);
            Console.Put('\n');
        }

        // INTID 27 in group 1, enabled, priority 0x80; the distributor's group
        // 1 on; the virtual CPU interface takes every priority.
        private static void EnableTimerInterrupt()
        {
            Hypervisor.Arch.Mmio.Write32(SgiFrame + 0x080, 1u << TimerIntid);              // GICR_IGROUPR0
            Hypervisor.Arch.Mmio.Write8(SgiFrame + 0x400 + TimerIntid, 0x80);              // GICR_IPRIORITYR
            Hypervisor.Arch.Mmio.Write32(SgiFrame + 0x100, 1u << TimerIntid);              // GICR_ISENABLER0
            Hypervisor.Arch.Mmio.Write32(Gicd, Hypervisor.Arch.Mmio.Read32(Gicd) | 2);     // GICD_CTLR.EnableGrp1
            Cpu.WriteIccPmr(0xff);
            Cpu.WriteIccIgrpen1(1);
        }
    }
}
