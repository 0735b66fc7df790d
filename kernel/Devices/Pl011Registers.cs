namespace Hypervisor.Devices
{
    // The register file of a PL011 UART (ARM DDI 0183), without the console
    // behind it: VirtualPl011 sends the bytes the guest transmits and feeds in
    // what is typed. Pure logic, so the host tests drive it directly.
    //
    // Interrupts, as Linux's amba-pl011 driver uses them (it unmasks RXIM and
    // RTIM, and TXIM only while it has more to send than it could write):
    // - RX (bit 4) and RT (bit 6, receive timeout) are a level: raised while the
    //   receive FIFO holds data, dropped once it is read empty. Real hardware
    //   raises RX at the FIFO trigger level and RT after 32 idle bit periods;
    //   with bytes that arrive whole and a guest that always drains the FIFO,
    //   "data is waiting" is what both mean. ICR cannot clear them while data
    //   waits, so an RX interrupt is never lost (QEMU's edge-like RX can be).
    // - TX (bit 5): the transmitter is always ready, bytes leave at once. As
    //   in QEMU's model, each byte written to DR sets TX (the FIFO went through
    //   its trigger level on the way back to empty); ICR clears it. Not set out
    //   of reset: a driver writes first and then unmasks TXIM.
    // The interrupt output (UARTINTR) is high while RIS & IMSC is not zero; it
    // is driven after every access and every delivered byte.
    public sealed class Pl011Registers
    {
        public const ulong DR = 0x000, RSR = 0x004, FR = 0x018, ILPR = 0x020, IBRD = 0x024, FBRD = 0x028;
        public const ulong LCR_H = 0x02c, CR = 0x030, IFLS = 0x034, IMSC = 0x038, RIS = 0x03c, MIS = 0x040;
        public const ulong ICR = 0x044, DMACR = 0x048, PeriphId0 = 0xfe0;

        // RIS / MIS / IMSC / ICR bits (DDI 0183 3.3.10-3.3.13).
        public const uint IntRx = 1u << 4, IntTx = 1u << 5, IntRt = 1u << 6;
        public const uint InterruptMask = 0x7ff;
        // FR bits: no modem lines, never busy, the transmit FIFO never fills.
        public const uint FlagRxEmpty = 1u << 4, FlagRxFull = 1u << 6, FlagTxEmpty = 1u << 7;
        // Reset values: CR TXE | RXE (UART itself disabled), IFLS half-full both ways.
        public const uint CrReset = 0x300, IflsReset = 0x12;
        public const int RxSize = 64;

        // Identification registers 0xFE0-0xFFC: PL011 part number and PrimeCell
        // id, which Linux's AMBA bus checks before it binds the driver.
        private static readonly byte[] s_ids = { 0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1 };

        private readonly byte[] _rx = new byte[RxSize];
        private int _rxHead, _rxCount;
        private uint _ilpr, _ibrd, _fbrd, _lcrH, _cr, _ifls, _imsc, _dmacr;
        private uint _latched;          // interrupt bits set by events and cleared by ICR (TX)

        // Where UARTINTR goes; null: nowhere (a guest that polls).
        public InterruptLine Irq;

        public Pl011Registers() { Reset(); }

        // As out of reset (a VM's SYSTEM_RESET reuses the object: no allocation).
        public void Reset()
        {
            _driven = false;
            _rxHead = _rxCount = 0;
            _ilpr = _ibrd = _fbrd = _lcrH = _imsc = _dmacr = _latched = 0;
            _cr = CrReset;
            _ifls = IflsReset;
            if (Irq != null) Irq.Set(false);
        }

        public uint RawStatus
        {
            [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
            get => _latched | (_rxCount > 0 ? IntRx | IntRt : 0);
        }
        public uint MaskedStatus => RawStatus & _imsc;
        public bool Level => MaskedStatus != 0;
        public int RxCount => _rxCount;

        // A register read at offset; a narrow read at an unaligned offset sees
        // the addressed bytes. Reading DR takes a byte from the FIFO.
        public uint Read(ulong offset)
        {
            int shift = (int)(offset & 3) * 8;
            ulong register = offset & ~3UL;
            uint value;
            if (register == DR) value = shift == 0 ? Receive() : 0;
            else if (register >= PeriphId0 && register < 0x1000) value = s_ids[(int)((register - PeriphId0) >> 2)];
            else value = Peek(register);
            Drive();
            return value >> shift;
        }

        // A register write. True when the guest transmitted a byte (DR): the
        // caller sends it on.
        public bool Write(ulong offset, uint value, out byte transmit)
        {
            transmit = 0;
            bool sent = false;
            // Only whole registers: a partial write of a control register is
            // not something drivers do, and is ignored.
            switch (offset)   // a misaligned offset matches no case
            {
                case DR:
                    transmit = (byte)value;
                    sent = true;
                    _latched |= IntTx;
                    break;
                case ILPR: _ilpr = value & 0xff; break;
                case IBRD: _ibrd = value & 0xffff; break;
                case FBRD: _fbrd = value & 0x3f; break;
                case LCR_H: _lcrH = value & 0xff; break;
                case CR: _cr = value & 0xffff; break;
                case IFLS: _ifls = value & 0x3f; break;
                case IMSC: _imsc = value & InterruptMask; break;
                case ICR: _latched &= ~value; break;
                case DMACR: _dmacr = value & 0x7; break;
                // RSR/ECR: a write clears the error flags, of which there are none.
            }
            Drive();
            return sent;
        }

        // A byte from the console; false when the FIFO is full and it is dropped.
        public bool Deliver(byte b)
        {
            if (_rxCount == RxSize) return false;
            _rx[(_rxHead + _rxCount) % RxSize] = b;
            _rxCount++;
            Drive();
            return true;
        }

        // The value of a register other than DR, without side effects.
        private uint Peek(ulong register)
        {
            if (register == FR) return FlagTxEmpty | (_rxCount == 0 ? FlagRxEmpty : 0) | (_rxCount == RxSize ? FlagRxFull : 0);
            if (register == ILPR) return _ilpr;
            if (register == IBRD) return _ibrd;
            if (register == FBRD) return _fbrd;
            if (register == LCR_H) return _lcrH;
            if (register == CR) return _cr;
            if (register == IFLS) return _ifls;
            if (register == IMSC) return _imsc;
            if (register == RIS) return RawStatus;
            if (register == MIS) return MaskedStatus;
            if (register == DMACR) return _dmacr;
            return 0;       // RSR (no errors), ICR (write-only), reserved and test registers
        }

        private uint Receive()
        {
            if (_rxCount == 0) return 0;
            byte b = _rx[_rxHead];
            _rxHead = (_rxHead + 1) % RxSize;
            _rxCount--;
            return b;
        }

        // Only on a change: this runs on every register access, which is the
        // UART's exit path. Reset() forgets the level (the VM's GIC is reset
        // with it, so both ends start low).
        // Inlined: after most register writes the line stays where it was.
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        private void Drive()
        {
            bool level = Level;
            if (level != _driven) DriveChanged(level);
        }

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
        private void DriveChanged(bool level)
        {
            _driven = level;
            InterruptLine irq = Irq;
            if (irq != null) irq.Set(level);
        }

        private bool _driven;
    }
}
