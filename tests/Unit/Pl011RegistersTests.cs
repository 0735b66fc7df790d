using System.Collections.Generic;
using Hypervisor.Devices;
using Xunit;

namespace Hypervisor.Tests.Unit
{
    public class Pl011RegistersTests
    {
        private sealed class RecordingLine : InterruptLine
        {
            public readonly List<bool> Levels = new List<bool>();
            public bool High => Levels.Count > 0 && Levels[Levels.Count - 1];
            public override void Set(bool high) => Levels.Add(high);
        }

        private const uint RxRt = Pl011Registers.IntRx | Pl011Registers.IntRt;

        private static (Pl011Registers uart, RecordingLine line) Make()
        {
            var uart = new Pl011Registers();
            var line = new RecordingLine();
            uart.Irq = line;
            return (uart, line);
        }

        private static void Write(Pl011Registers uart, ulong offset, uint value) => uart.Write(offset, value, out _);

        [Fact]
        public void ResetValues()
        {
            var uart = new Pl011Registers();
            Assert.Equal(0x300u, uart.Read(Pl011Registers.CR));
            Assert.Equal(0x12u, uart.Read(Pl011Registers.IFLS));
            Assert.Equal(0u, uart.Read(Pl011Registers.IMSC));
            Assert.Equal(0u, uart.Read(Pl011Registers.RIS));
            Assert.Equal(0u, uart.Read(Pl011Registers.MIS));
            Assert.Equal(Pl011Registers.FlagTxEmpty | Pl011Registers.FlagRxEmpty, uart.Read(Pl011Registers.FR));
            Assert.False(uart.Level);
        }

        [Fact]
        public void ControlRegistersReadBackWithinTheirWidth()
        {
            var uart = new Pl011Registers();
            Write(uart, Pl011Registers.IBRD, 0x12345);
            Write(uart, Pl011Registers.FBRD, 0xff);
            Write(uart, Pl011Registers.LCR_H, 0x170);
            Write(uart, Pl011Registers.CR, 0x10301);
            Write(uart, Pl011Registers.IFLS, 0xff);
            Write(uart, Pl011Registers.DMACR, 0xff);
            Write(uart, Pl011Registers.ILPR, 0x1ff);
            Assert.Equal(0x2345u, uart.Read(Pl011Registers.IBRD));
            Assert.Equal(0x3fu, uart.Read(Pl011Registers.FBRD));
            Assert.Equal(0x70u, uart.Read(Pl011Registers.LCR_H));
            Assert.Equal(0x0301u, uart.Read(Pl011Registers.CR));
            Assert.Equal(0x3fu, uart.Read(Pl011Registers.IFLS));
            Assert.Equal(0x7u, uart.Read(Pl011Registers.DMACR));
            Assert.Equal(0xffu, uart.Read(Pl011Registers.ILPR));
            // ICR is write-only, RIS/MIS read-only, reserved space reads 0.
            Assert.Equal(0u, uart.Read(Pl011Registers.ICR));
            Write(uart, Pl011Registers.RIS, 0x7ff);
            Assert.Equal(0u, uart.Read(Pl011Registers.RIS));
            Assert.Equal(0u, uart.Read(0x800));
            // 16-bit access to the upper half sees the addressed bytes.
            Assert.Equal(0x0u, uart.Read(Pl011Registers.CR + 2));
            Assert.Equal(0x03u, uart.Read(Pl011Registers.CR + 1));
        }

        [Fact]
        public void IdentificationRegistersNameAPl011PrimeCell()
        {
            var uart = new Pl011Registers();
            uint[] expected = { 0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1 };
            for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], uart.Read(0xfe0 + (ulong)i * 4));
        }

        [Fact]
        public void ReceivedDataRaisesRxAndRtUntilTheFifoIsEmpty()
        {
            var (uart, line) = Make();
            Write(uart, Pl011Registers.IMSC, RxRt);       // what Linux unmasks
            Assert.False(line.High);
            uart.Deliver((byte)'a');
            uart.Deliver((byte)'b');
            Assert.True(line.High);
            Assert.Equal(RxRt, uart.Read(Pl011Registers.RIS));
            Assert.Equal(RxRt, uart.Read(Pl011Registers.MIS));
            Assert.Equal(0u, uart.Read(Pl011Registers.FR) & Pl011Registers.FlagRxEmpty);

            // Clearing RX/RT while data waits does not lose the interrupt.
            Write(uart, Pl011Registers.ICR, RxRt);
            Assert.True(line.High);

            Assert.Equal((uint)'a', uart.Read(Pl011Registers.DR));
            Assert.True(line.High);
            Assert.Equal((uint)'b', uart.Read(Pl011Registers.DR));
            Assert.False(line.High);
            Assert.Equal(0u, uart.Read(Pl011Registers.RIS));
            Assert.NotEqual(0u, uart.Read(Pl011Registers.FR) & Pl011Registers.FlagRxEmpty);
            Assert.Equal(0u, uart.Read(Pl011Registers.DR));   // empty FIFO reads 0
        }

        [Fact]
        public void MaskedInterruptsDoNotDriveTheLine()
        {
            var (uart, line) = Make();
            uart.Deliver(1);
            Assert.Equal(RxRt, uart.Read(Pl011Registers.RIS));
            Assert.Equal(0u, uart.Read(Pl011Registers.MIS));
            Assert.False(line.High);
            Write(uart, Pl011Registers.IMSC, Pl011Registers.IntRt);
            Assert.True(line.High);
            Assert.Equal(Pl011Registers.IntRt, uart.Read(Pl011Registers.MIS));
            Write(uart, Pl011Registers.IMSC, 0);
            Assert.False(line.High);
        }

        [Fact]
        public void TransmitSetsTxUntilCleared()
        {
            var (uart, line) = Make();
            Assert.True(uart.Write(Pl011Registers.DR, 0x141, out byte sent));
            Assert.Equal(0x41, sent);
            Assert.Equal(Pl011Registers.IntTx, uart.Read(Pl011Registers.RIS));
            Assert.False(line.High);                       // TXIM still masked

            Write(uart, Pl011Registers.IMSC, Pl011Registers.IntTx | RxRt);
            Assert.True(line.High);
            Write(uart, Pl011Registers.ICR, Pl011Registers.IntTx);
            Assert.False(line.High);
            Assert.Equal(0u, uart.Read(Pl011Registers.RIS));

            // The next byte written sets it again; the FIFO never fills.
            uart.Write(Pl011Registers.DR, (uint)'x', out _);
            Assert.True(line.High);
            Assert.Equal(0u, uart.Read(Pl011Registers.FR) & (1u << 5));
            Assert.False(uart.Write(Pl011Registers.IMSC, 0, out _));   // only DR transmits
        }

        [Fact]
        public void FullFifoDropsAndReportsFull()
        {
            var uart = new Pl011Registers();
            for (int i = 0; i < Pl011Registers.RxSize; i++) Assert.True(uart.Deliver((byte)i));
            Assert.False(uart.Deliver(0xff));
            Assert.NotEqual(0u, uart.Read(Pl011Registers.FR) & Pl011Registers.FlagRxFull);
            for (int i = 0; i < Pl011Registers.RxSize; i++) Assert.Equal((uint)i, uart.Read(Pl011Registers.DR));
            Assert.Equal(0, uart.RxCount);
        }

        [Fact]
        public void ResetDropsEverythingAndLowersTheLine()
        {
            var (uart, line) = Make();
            Write(uart, Pl011Registers.IMSC, 0x7ff);
            Write(uart, Pl011Registers.CR, 0x301);
            uart.Deliver(7);
            uart.Write(Pl011Registers.DR, 1, out _);
            Assert.True(line.High);
            uart.Reset();
            Assert.False(line.High);
            Assert.Equal(0, uart.RxCount);
            Assert.Equal(0u, uart.Read(Pl011Registers.IMSC));
            Assert.Equal(0x300u, uart.Read(Pl011Registers.CR));
        }

        [Fact]
        public void OnlyChangesOfTheLevelAreDriven()
        {
            // Register accesses are the UART's exit path: the line is told
            // only when its level changes.
            var (uart, line) = Make();
            int before = line.Levels.Count;
            uart.Read(Pl011Registers.FR);
            Write(uart, Pl011Registers.CR, 0x301);
            Assert.Equal(before, line.Levels.Count);
            Write(uart, Pl011Registers.IMSC, Pl011Registers.IntRx);
            uart.Deliver(3);                       // RX asserts: high
            uart.Deliver(4);                       // still high: nothing new
            Assert.Equal(before + 1, line.Levels.Count);
            Assert.True(line.High);
            uart.Read(Pl011Registers.DR);
            uart.Read(Pl011Registers.DR);          // FIFO empty: low
            Assert.Equal(before + 2, line.Levels.Count);
            Assert.False(line.High);
        }
    }
}
