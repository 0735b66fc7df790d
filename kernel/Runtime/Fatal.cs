using System.Runtime;
using System.Runtime.CompilerServices;

namespace Hypervisor.Runtime
{
    // The one way out when the runtime itself cannot go on. Each image (the
    // hypervisor, a guest) exports "rt_fatal" to print the reason its own way.
    public static unsafe class Fatal
    {
        [RuntimeImport("*", "rt_fatal")]
        [MethodImpl(MethodImplOptions.InternalCall)]
        private static extern void PlatformFatal(char* message, int length);

        public static void Stop(string reason)
        {
            fixed (char* p = reason) PlatformFatal(p, reason.Length);
        }
    }
}
