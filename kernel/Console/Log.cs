using System;
using Hypervisor.Smp;

namespace Hypervisor.Console
{
    // Serial-line output without allocation: text, decimal and hex pieces that
    // callers put together into lines. Hypervisor lines start with "[hv] ",
    // machine-readable figures with "STAT " (the serial-line contract in README).
    //
    // With several CPUs each one gathers its line in its own buffer
    // (PhysicalCpu.Line) and writes it whole under the console lock at the
    // newline: lines from different CPUs never mix, and the lock is held for
    // one line, not for the time a caller takes to put it together. (A line
    // longer than the buffer goes out in pieces.) A panic writes directly.
    public static class Log
    {
        private static SpinLock s_lock;
        private static bool s_direct;        // a panic: no buffers, no lock

        // Before the second CPU starts (kernel/Smp/Cpus.cs).
        public static void UseLock(SpinLock consoleLock) => s_lock = consoleLock;

        // A CPU panics: what it had gathered goes out at once, and from now on
        // every byte does, whatever locks anyone holds.
        public static void Direct()
        {
            if (!s_direct && SpinLock.Smp)
            {
                PhysicalCpu cpu = Cpus.This;
                for (int i = 0; i < cpu.LineLength; i++) Pl011.Put(cpu.Line[i]);
                cpu.LineLength = 0;
            }
            s_direct = true;
        }

        public static void Write(string text)
        {
            for (int i = 0; i < text.Length; i++) Put(text[i]);
        }

        public static void Write(ReadOnlySpan<byte> ascii)
        {
            for (int i = 0; i < ascii.Length; i++) Put((char)ascii[i]);
        }

        public static void Line(string text)
        {
            Write(text);
            NewLine();
        }

        public static void NewLine() => Emit((byte)'\n');

        public static void Dec(ulong value)
        {
            Span<byte> digits = stackalloc byte[20];
            int n = 0;
            do { digits[n++] = (byte)('0' + value % 10); value /= 10; } while (value != 0);
            while (n > 0) Emit(digits[--n]);
        }

        // 0x followed by `digits` hex digits (16 shows a whole register).
        public static void Hex(ulong value, int digits = 16)
        {
            Write("0x");
            for (int shift = (digits - 1) * 4; shift >= 0; shift -= 4)
            {
                uint nibble = (uint)(value >> shift) & 0xf;
                Emit((byte)(nibble < 10 ? '0' + nibble : 'a' + nibble - 10));
            }
        }

        // A size in whole MiB when it is one, else in KiB.
        public static void Size(ulong bytes)
        {
            if ((bytes & 0xfffff) == 0) { Dec(bytes >> 20); Write("MiB"); }
            else { Dec(bytes >> 10); Write("KiB"); }
        }

        // key=value, with a leading space: for STAT lines.
        public static void Stat(string key, ulong value)
        {
            Put(' ');
            Write(key);
            Put('=');
            Dec(value);
        }

        private static void Put(char c) => Emit(c < 128 ? (byte)c : (byte)'?');

        // One byte of output: straight to the UART with one CPU (or in a
        // panic), else into this CPU's line, which a newline or a full
        // buffer sends.
        public static void Emit(byte b)
        {
            if (!SpinLock.Smp || s_direct)
            {
                Pl011.Put(b);
                return;
            }
            PhysicalCpu cpu = Cpus.This;
            if (cpu.LineLength == cpu.Line.Length) Send(cpu);
            cpu.Line[cpu.LineLength++] = b;
            if (b == '\n') Send(cpu);
        }

        private static void Send(PhysicalCpu cpu)
        {
            s_lock.Acquire(cpu);
            for (int i = 0; i < cpu.LineLength; i++) Pl011.Put(cpu.Line[i]);
            s_lock.Release(cpu);
            cpu.LineLength = 0;
        }
    }
}
