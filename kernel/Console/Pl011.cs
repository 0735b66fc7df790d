using Hypervisor.Arch;

namespace Hypervisor.Console
{
    // The physical PL011 UART the hypervisor prints through and reads the
    // serial console from. Polled both ways: output waits while the transmit
    // FIFO is full; input is read when the receive FIFO is not empty.
    public static unsafe class Pl011
    {
        private const ulong DataRegister = 0x000;
        private const ulong FlagRegister = 0x018;
        private const uint TransmitFifoFull = 1 << 5;
        private const uint ReceiveFifoEmpty = 1 << 4;

        // QEMU virt's UART; replaced by the address the device tree gives.
        private static ulong s_base = 0x09000000;

        public static void SetBase(ulong physicalAddress) => s_base = physicalAddress;

        public static void Put(byte b)
        {
            while ((Mmio.Read32(s_base + FlagRegister) & TransmitFifoFull) != 0) { }
            Mmio.Write32(s_base + DataRegister, b);
        }

        // A received byte, or -1 when nothing is waiting.
        public static int TryGet()
        {
            if ((Mmio.Read32(s_base + FlagRegister) & ReceiveFifoEmpty) != 0) return -1;
            return (int)(Mmio.Read32(s_base + DataRegister) & 0xff);
        }
    }
}
