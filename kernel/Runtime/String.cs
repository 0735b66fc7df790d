using System.Runtime.CompilerServices;

namespace System
{
    // Layout fixed by ILCompiler: length, then UTF-16 characters. Literals are
    // emitted as frozen objects in the image; the kernel never builds strings at
    // run time (no allocation on any path that prints).
    public sealed class String
    {
#pragma warning disable 649
        private readonly int _stringLength;
        private char _firstChar;
#pragma warning restore 649

        public int Length => _stringLength;

        [IndexerName("Chars")]
        public unsafe char this[int index]
        {
            get
            {
                if ((uint)index >= (uint)_stringLength)
                    Internal.Runtime.CompilerHelpers.ThrowHelpers.ThrowIndexOutOfRangeException();
                fixed (char* p = &_firstChar) return p[index];
            }
        }

        public ref readonly char GetPinnableReference() => ref _firstChar;

        public static readonly string Empty = "";
    }
}
