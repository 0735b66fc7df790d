using System;
using Hypervisor.Mm;
using Hypervisor.Vm;

namespace Hypervisor.Devices
{
    // Guest memory as devices see it: guest-physical addresses translated
    // through the VM's stage 2, checked against its RAM. RAM the guest never
    // touched reads as zeros (that is what it would get); a write there maps
    // a page first. A page the guest gave to the balloon is not its memory any
    // more: reads and writes there fail like any address outside RAM.
    public sealed unsafe class VmMemoryView : GuestMemoryView
    {
        private readonly VirtualMachine _vm;

        public VmMemoryView(VirtualMachine vm) { _vm = vm; }

        public override bool IsRam(ulong gpa, ulong length)
        {
            if (length == 0 || gpa + length < gpa) return false;
            if (!_vm.IsRam(gpa) || !_vm.IsRam(gpa + length - 1)) return false;
            if (_vm.Balloon == null) return true;
            for (ulong page = gpa & ~0xfffUL; page < gpa + length; page += 4096)
                if (_vm.Balloon.IsBallooned(page)) return false;
            return true;
        }

        public override bool Read(ulong gpa, Span<byte> destination)
        {
            if (!IsRam(gpa, (ulong)destination.Length)) return false;
            for (int done = 0; done < destination.Length;)
            {
                ulong at = gpa + (ulong)done;
                int chunk = Chunk(at, destination.Length - done);
                ulong hpa = GuestMemory.HostAddressOf(_vm, at);
                fixed (byte* d = destination)
                {
                    if (hpa == 0) Hypervisor.Runtime.Memory.Zero(d + done, (ulong)chunk);
                    else Hypervisor.Runtime.Memory.Copy(d + done, (byte*)hpa, (ulong)chunk);
                }
                done += chunk;
            }
            return true;
        }

        public override bool Write(ulong gpa, ReadOnlySpan<byte> source)
        {
            if (!IsRam(gpa, (ulong)source.Length)) return false;
            for (int done = 0; done < source.Length;)
            {
                ulong at = gpa + (ulong)done;
                int chunk = Chunk(at, source.Length - done);
                ulong hpa = GuestMemory.HostAddressOf(_vm, at);
                if (hpa == 0)
                {
                    if (!GuestMemory.MapOnDemand(_vm, at)) return false;
                    hpa = GuestMemory.HostAddressOf(_vm, at);
                }
                fixed (byte* s = source) Hypervisor.Runtime.Memory.Copy((byte*)hpa, s + done, (ulong)chunk);
                done += chunk;
            }
            return true;
        }

        private static int Chunk(ulong at, int remaining) => (int)Math.Min((ulong)remaining, 4096 - (at & 0xfff));
    }
}
