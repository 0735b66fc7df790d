namespace System
{
    // ILCompiler routes struct copies that contain object references here.
    public static unsafe class Buffer
    {
        internal static void BulkMoveWithWriteBarrier(ref byte destination, ref byte source, nuint byteCount)
        {
            fixed (byte* d = &destination)
            fixed (byte* s = &source)
                Hypervisor.Runtime.Memory.Copy(d, s, byteCount);
        }

    }
}

namespace System
{
    internal static unsafe class SpanHelpers
    {
        internal static void Memmove(ref byte destination, ref byte source, nuint byteCount)
        {
            fixed (byte* d = &destination)
            fixed (byte* s = &source)
                Hypervisor.Runtime.Memory.Copy(d, s, byteCount);
        }

        internal static void Fill(ref byte destination, byte value, nuint byteCount)
        {
            fixed (byte* d = &destination) Hypervisor.Runtime.Memory.Fill(d, value, byteCount);
        }

        internal static void ClearWithoutReferences(ref byte destination, nuint byteCount)
        {
            fixed (byte* d = &destination) Hypervisor.Runtime.Memory.Zero(d, byteCount);
        }

        internal static void ClearWithReferences(ref IntPtr ip, nuint pointerSizeLength)
        {
            fixed (IntPtr* p = &ip) Hypervisor.Runtime.Memory.Zero((byte*)p, pointerSizeLength * 8);
        }
    }
}

namespace System
{
    public static class Math
    {
        public static int Min(int a, int b) => a < b ? a : b;
        public static int Max(int a, int b) => a > b ? a : b;
        public static ulong Min(ulong a, ulong b) => a < b ? a : b;
        public static ulong Max(ulong a, ulong b) => a > b ? a : b;

        // Checked and unchecked floating-point conversions the code generator
        // calls by name. The kernel does not compute in floating point; these
        // exist so the compiler's helper table is complete.
        private static int ConvertToInt32Checked(double v) { if (v <= -2147483649.0 || v >= 2147483648.0) Overflow(); return (int)v; }
        private static uint ConvertToUInt32Checked(double v) { if (v <= -1.0 || v >= 4294967296.0) Overflow(); return (uint)v; }
        private static long ConvertToInt64Checked(double v) { if (v <= -9223372036854777856.0 || v >= 9223372036854775808.0) Overflow(); return (long)v; }
        private static ulong ConvertToUInt64Checked(double v) { if (v <= -1.0 || v >= 18446744073709551616.0) Overflow(); return (ulong)v; }
        private static void Overflow() => Internal.Runtime.CompilerHelpers.ThrowHelpers.ThrowOverflowException();
    }
}
