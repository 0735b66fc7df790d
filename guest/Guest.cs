using System.Runtime;

namespace Guest
{
    // Placeholder for the C# EL1 test guest (see README: what works today).
    public static unsafe class Program
    {
        [RuntimeExport("guest_main")]
        private static void Main(ulong dtb) { }

        [RuntimeExport("rt_fatal")]
        private static void RuntimeFatal(char* message, int length) { while (true) { } }
    }
}
