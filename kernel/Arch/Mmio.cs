namespace Hypervisor.Arch
{
    // Device register access. C# has no volatile pointers; a volatile field
    // does the same job: the compiler must emit exactly one load or store of
    // exactly that width, in program order.
    public static unsafe class Mmio
    {
        private struct Register32 { public volatile uint Value; }
        private struct Register8 { public volatile byte Value; }

        public static uint Read32(ulong address) => ((Register32*)address)->Value;
        public static void Write32(ulong address, uint value) => ((Register32*)address)->Value = value;
        public static void Write8(ulong address, byte value) => ((Register8*)address)->Value = value;
    }
}
