using System.Runtime;
using Hypervisor.Console;
using Hypervisor.Trap;

namespace Hypervisor
{
    // The hypervisor's side of the runtime seam (kernel/Runtime/Fatal.cs).
    internal static unsafe class RuntimeHooks
    {
        [RuntimeExport("rt_fatal")]
        private static void RuntimeFatal(char* message, int length)
        {
            Log.Direct();
            Log.Write("[hv] PANIC: runtime: ");
            for (int i = 0; i < length; i++) Log.Emit((byte)message[i]);
            Log.NewLine();
            Panic.Message("runtime failure");
        }
    }
}
