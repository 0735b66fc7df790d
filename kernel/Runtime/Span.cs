using System.Runtime.CompilerServices;
using Internal.Runtime.CompilerHelpers;

namespace System
{
    // A window onto memory: an array, a stack buffer, or a physical range.
    // Indexing is bounds-checked; a bad index is a kernel bug and panics.
    public readonly ref struct Span<T>
    {
        private readonly ref T _reference;
        private readonly int _length;

        public Span(T[] array)
        {
            if (array == null) { this = default; return; }
            _reference = ref Unsafe.As<byte, T>(ref Unsafe.AddByteOffset(ref Unsafe.As<RawArrayData>(array).Data, 0));
            _length = array.Length;
        }

        public unsafe Span(void* pointer, int length)
        {
            if (length < 0) ThrowHelpers.ThrowArgumentOutOfRangeException();
            _reference = ref Unsafe.AsRef<T>(pointer);
            _length = length;
        }

        internal Span(ref T reference, int length) { _reference = ref reference; _length = length; }

        public int Length => _length;
        public bool IsEmpty => _length == 0;

        public ref T this[int index]
        {
            get
            {
                if ((uint)index >= (uint)_length) ThrowHelpers.ThrowIndexOutOfRangeException();
                return ref Unsafe.Add(ref _reference, index);
            }
        }

        public ref T GetPinnableReference() => ref _reference;

        public Span<T> Slice(int start)
        {
            if ((uint)start > (uint)_length) ThrowHelpers.ThrowArgumentOutOfRangeException();
            return new Span<T>(ref Unsafe.Add(ref _reference, start), _length - start);
        }

        public Span<T> Slice(int start, int length)
        {
            if ((ulong)(uint)start + (ulong)(uint)length > (ulong)(uint)_length) ThrowHelpers.ThrowArgumentOutOfRangeException();
            return new Span<T>(ref Unsafe.Add(ref _reference, start), length);
        }

        public void Clear()
        {
            for (int i = 0; i < _length; i++) Unsafe.Add(ref _reference, i) = default;
        }

        public void Fill(T value)
        {
            for (int i = 0; i < _length; i++) Unsafe.Add(ref _reference, i) = value;
        }

        public static implicit operator Span<T>(T[] array) => new Span<T>(array);
        public static implicit operator ReadOnlySpan<T>(Span<T> span) => new ReadOnlySpan<T>(ref span._reference, span._length);
    }

    public readonly ref struct ReadOnlySpan<T>
    {
        private readonly ref T _reference;
        private readonly int _length;

        public ReadOnlySpan(T[] array)
        {
            if (array == null) { this = default; return; }
            _reference = ref Unsafe.As<byte, T>(ref Unsafe.As<RawArrayData>(array).Data);
            _length = array.Length;
        }

        public unsafe ReadOnlySpan(void* pointer, int length)
        {
            if (length < 0) ThrowHelpers.ThrowArgumentOutOfRangeException();
            _reference = ref Unsafe.AsRef<T>(pointer);
            _length = length;
        }

        internal ReadOnlySpan(ref T reference, int length) { _reference = ref reference; _length = length; }

        public int Length => _length;
        public bool IsEmpty => _length == 0;

        public ref readonly T this[int index]
        {
            get
            {
                if ((uint)index >= (uint)_length) ThrowHelpers.ThrowIndexOutOfRangeException();
                return ref Unsafe.Add(ref _reference, index);
            }
        }

        public ref readonly T GetPinnableReference() => ref _reference;

        public ReadOnlySpan<T> Slice(int start)
        {
            if ((uint)start > (uint)_length) ThrowHelpers.ThrowArgumentOutOfRangeException();
            return new ReadOnlySpan<T>(ref Unsafe.Add(ref _reference, start), _length - start);
        }

        public ReadOnlySpan<T> Slice(int start, int length)
        {
            if ((ulong)(uint)start + (ulong)(uint)length > (ulong)(uint)_length) ThrowHelpers.ThrowArgumentOutOfRangeException();
            return new ReadOnlySpan<T>(ref Unsafe.Add(ref _reference, start), length);
        }

        public static implicit operator ReadOnlySpan<T>(T[] array) => new ReadOnlySpan<T>(array);
    }

    // How an array looks behind its object header: the length word, then data.
    internal sealed class RawArrayData
    {
#pragma warning disable 649
        public uint Length;
        public uint Padding;
        public byte Data;
#pragma warning restore 649
    }
}

namespace System.Runtime.CompilerServices
{
    // Bodies are supplied by ILCompiler (it recognises this class by name).
    public static unsafe class Unsafe
    {
        [Intrinsic] public static extern ref T Add<T>(ref T source, int elementOffset);
        [Intrinsic] public static extern ref T AddByteOffset<T>(ref T source, nint byteOffset);
        [Intrinsic] public static extern ref TTo As<TFrom, TTo>(ref TFrom source);
        [Intrinsic] public static extern T As<T>(object o) where T : class;
        [Intrinsic] public static extern ref T AsRef<T>(void* source);
        [Intrinsic] public static extern void* AsPointer<T>(ref T value);
        [Intrinsic] public static extern int SizeOf<T>();
    }
}
