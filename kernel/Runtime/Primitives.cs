namespace System
{
    public struct Boolean { }
    public struct Char { }
    public struct SByte { }
    public struct Byte { }
    public struct Int16 { }
    public struct UInt16 { }
    public struct Int32 { public const int MaxValue = 0x7fffffff; public const int MinValue = unchecked((int)0x80000000); }
    public struct UInt32 { public const uint MaxValue = 0xffffffff; }
    public struct Int64 { public const long MaxValue = 0x7fffffffffffffff; }
    public struct UInt64 { public const ulong MaxValue = 0xffffffffffffffff; }
    public struct Single { }
    public struct Double { }

    public unsafe struct IntPtr
    {
#pragma warning disable 169
        private void* _value;
#pragma warning restore 169
        public static readonly IntPtr Zero;
    }

    public unsafe struct UIntPtr
    {
#pragma warning disable 169
        private void* _value;
#pragma warning restore 169
    }
}
