using Hypervisor.Console;
using Hypervisor.Vm;

namespace Hypervisor.Devices
{
    // A PL011 UART as the guest sees it at 0x09000000 (ARM DDI 0183). Output
    // is collected per line and printed as "[name] text" on the real console,
    // so the lines of several VMs never mix mid-line. The transmitter is always
    // ready. Input comes from the serial console when this VM has the focus
    // (kernel/Monitor/Monitor.cs) and waits in a small receive FIFO.
    public sealed class VirtualPl011 : MmioDevice
    {
        public const ulong DefaultBase = 0x09000000;
        private const ulong DataRegister = 0x000, Flags = 0x018, PeriphId0 = 0xfe0;
        private const uint FlagRxEmpty = 1 << 4, FlagTxEmpty = 1 << 7;
        private const int LineMax = 160;

        // Identification registers 0xFE0-0xFFC: PL011 part number and PrimeCell id,
        // which a real driver (Linux's amba-pl011) checks before it binds.
        private static readonly byte[] s_ids = { 0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1 };

        private readonly byte[] _line = new byte[LineMax];
        private int _length;
        private readonly uint[] _registers = new uint[0x50 / 4]; // control registers read back what was written
        private const int RxSize = 64;
        private readonly byte[] _rx = new byte[RxSize];
        private int _rxHead, _rxCount;

        public VirtualPl011(ulong baseAddress) : base(baseAddress, 0x1000) { }

        public override bool Read(VirtualMachine vm, ulong offset, int size, out ulong value)
        {
            value = 0;
            if (size > 4) return false;
            if (offset == Flags) value = FlagTxEmpty | (_rxCount == 0 ? FlagRxEmpty : 0);
            else if (offset == DataRegister) value = Receive();
            else if (offset >= PeriphId0) value = s_ids[(int)((offset - PeriphId0) >> 2) & 7];
            else if (offset < 0x50) value = _registers[offset >> 2];
            return true;
        }

        public override bool Write(VirtualMachine vm, ulong offset, int size, ulong value)
        {
            if (size > 4) return false;
            if (offset == DataRegister) Put(vm, (byte)value);
            else if (offset < 0x50) _registers[offset >> 2] = (uint)value;
            return true;
        }

        // A byte typed on the serial console for this VM; dropped when the FIFO is full.
        public void Deliver(byte b)
        {
            if (_rxCount == RxSize) return;
            _rx[(_rxHead + _rxCount) % RxSize] = b;
            _rxCount++;
        }

        private uint Receive()
        {
            if (_rxCount == 0) return 0;
            byte b = _rx[_rxHead];
            _rxHead = (_rxHead + 1) % RxSize;
            _rxCount--;
            return b;
        }

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
