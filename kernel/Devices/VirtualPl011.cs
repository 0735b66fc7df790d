using Hypervisor.Console;
using Hypervisor.Vm;

namespace Hypervisor.Devices
{
    // A PL011 UART as the guest sees it at 0x09000000 (ARM DDI 0183). Output
    // is collected per line and printed as "[name] text" on the real console,
    // so the lines of several VMs never mix mid-line. The transmitter is always
    // ready; there is no console input yet (it arrives with the monitor).
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

        public VirtualPl011(ulong baseAddress) : base(baseAddress, 0x1000) { }

        public override bool Read(VirtualMachine vm, ulong offset, int size, out ulong value)
        {
            value = 0;
            if (size > 4) return false;
            if (offset == Flags) value = FlagTxEmpty | FlagRxEmpty;
            else if (offset == DataRegister) value = 0;
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
