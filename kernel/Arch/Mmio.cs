namespace Hypervisor.Arch
{
    // Device register access. C# has no volatile pointers; a volatile field
    // does the same job: the compiler must emit exactly one load or store, in
    // program order. Of exactly that width too, except that once a read is
    // inlined the compiler may narrow it: `Read32(a) & 0xffff` became a 16-bit
    // LDARH, which a device (or the virtual GIC) may refuse. Read32 is
    // therefore never inlined: its one 32-bit load stays a 32-bit load.
    public static unsafe class Mmio
    {
        private struct Register32 { public volatile uint Value; }
        private struct Register8 { public volatile byte Value; }

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
        public static uint Read32(ulong address) => ((Register32*)address)->Value;
        public static void Write32(ulong address, uint value) => ((Register32*)address)->Value = value;
        public static void Write8(ulong address, byte value) => ((Register8*)address)->Value = value;
    }
}
