using Hypervisor.Arch;

namespace Hypervisor.Console
{
    // The physical PL011 UART the hypervisor prints through. Polled output only:
    // wait while the transmit FIFO is full, then write the data register.
    public static unsafe class Pl011
    {
        private const ulong DataRegister = 0x000;
        private const ulong FlagRegister = 0x018;
        private const uint TransmitFifoFull = 1 << 5;

        // QEMU virt's UART; replaced by the address the device tree gives.
        private static ulong s_base = 0x09000000;

        public static void SetBase(ulong physicalAddress) => s_base = physicalAddress;

        public static void Put(byte b)
        {
            while ((Mmio.Read32(s_base + FlagRegister) & TransmitFifoFull) != 0) { }
            Mmio.Write32(s_base + DataRegister, b);
        }
    }
}
