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
