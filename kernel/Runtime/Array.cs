namespace System
{
    // Layout fixed by ILCompiler: element count (padded to 8 bytes), then elements.
    public abstract class Array
    {
#pragma warning disable 649, 169
        private int _numComponents;
        private int _padding;
#pragma warning restore 649, 169
        public int Length => _numComponents;
    }

    // ILCompiler gives every T[] this as its base type.
    public class Array<T> : Array { }
}
