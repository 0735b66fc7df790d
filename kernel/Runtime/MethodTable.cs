namespace Internal.Runtime
{
    // The head of ILCompiler's type descriptor; the allocator needs only sizes.
    // Low 16 bits of the flags word hold the element size of arrays and strings.
    internal struct MethodTable
    {
        public ushort ComponentSize;
        public ushort Flags;
        public uint BaseSize;
    }
}
