using Hypervisor.Console;

namespace Hypervisor.Arch
{
    // PSCI (Arm DEN 0022): the firmware interface for powering CPUs and the
    // system. With virtualization=on, QEMU's PSCI firmware sits at EL3 and the
    // hypervisor reaches it with SMC.
    public static class Psci
    {
        public const uint Version = 0x84000000;
        public const uint CpuOff = 0x84000002;
        public const uint SystemOff = 0x84000008;
        public const uint SystemReset = 0x84000009;

        // Powers the machine off; QEMU exits with status 0. Never returns.
        public static void PowerOff()
        {
            Cpu.SmcCall(SystemOff, 0, 0, 0);
            // Only reached if the firmware refused: nothing else to do.
            Log.Line("[hv] PSCI SYSTEM_OFF failed; halting");
            while (true) Cpu.WaitForEvent();
        }
    }
}
