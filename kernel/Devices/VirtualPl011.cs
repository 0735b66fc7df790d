using Hypervisor.Console;
using Hypervisor.Vm;

namespace Hypervisor.Devices
{
    // A PL011 UART as the guest sees it at 0x09000000 (ARM DDI 0183): the
    // registers and interrupts are Pl011Registers; this adds the console.
    // Output is collected per line and printed as "[name] text" on the real
    // console, so the lines of several VMs never mix mid-line. Input comes
    // from the serial console when this VM has the focus
    // (kernel/Monitor/Monitor.cs) and waits in the receive FIFO.
    public sealed class VirtualPl011 : MmioDevice
    {
        public const ulong DefaultBase = 0x09000000;
        private const int LineMax = 160;

        private readonly byte[] _line = new byte[LineMax];
        private int _length;
        private readonly Pl011Registers _registers = new Pl011Registers();

        public VirtualPl011(ulong baseAddress) : base(baseAddress, 0x1000) { }

        // UARTINTR; null (the default) leaves the UART without an interrupt.
        public const int IntId = 33;   // SPI 1, as on QEMU virt

        public InterruptLine Irq
        {
            get => _registers.Irq;
            set => _registers.Irq = value;
        }

        public Pl011Registers Registers => _registers;

        public override bool Read(VirtualMachine vm, ulong offset, int size, out ulong value)
        {
            value = 0;
            if (size > 4) return false;
            value = _registers.Read(offset);
            return true;
        }

        public override bool Write(VirtualMachine vm, ulong offset, int size, ulong value)
        {
            if (size > 4) return false;
            if (_registers.Write(offset, (uint)value, out byte transmit)) Put(vm, transmit);
            return true;
        }

        // A byte typed on the serial console for this VM; dropped when the FIFO is full.
        public void Deliver(byte b) => _registers.Deliver(b);

        // SYSTEM_RESET: the registers as out of reset; a half-printed line stays
        // buffered and ends up in the next line.
        public void Reset() => _registers.Reset();

        private void Put(VirtualMachine vm, byte b)
        {
            if (b == '\r') return;
            if (b != '\n') _line[_length++] = b;
            if (b == '\n' || _length == LineMax) Flush(vm);
        }

        // Prints what is buffered as one console line.
        public void Flush(VirtualMachine vm)
        {
            if (_length == 0) return;
            Log.Write("[");
            Log.Write(vm.Name);
            Log.Write("] ");
            Log.Write(new System.ReadOnlySpan<byte>(_line).Slice(0, _length));
            Log.NewLine();
            _length = 0;
        }
    }
}
