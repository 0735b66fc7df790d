namespace Hypervisor.Vm
{
    // When a VM's virtual timer fires, on the physical counter the
    // hypervisor's own timer counts in. The guest's timer fires when
    // CNTVCT = CNTPCT - CNTVOFF reaches CNTV_CVAL, i.e. when CNTPCT reaches
    // CVAL + CNTVOFF. The guest picks CVAL freely: near 2^64 that sum wraps
    // and would name a moment long past (the VM woken at once, again and
    // again). A deadline the physical counter can never reach is "never".
    // The emulated physical timer is the same with an offset of 0
    // (GuestTimers.PhysicalDeadline).
    public static class VirtualTimerDeadline
    {
        // CNTV_CTL_EL0 and CNTP_CTL_EL0 (the same layout): ENABLE, IMASK, ISTATUS.
        public const ulong Enable = 1, Imask = 1UL << 1, Istatus = 1UL << 2;
        public const ulong Never = ulong.MaxValue;

        public static ulong Physical(ulong ctl, ulong cval, ulong cntvoff)
        {
            if ((ctl & (Enable | Imask)) != Enable) return Never;
            if (cval > Never - cntvoff) return Never;
            return cval + cntvoff;
        }
    }
}
