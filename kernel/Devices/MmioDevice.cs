using Hypervisor.Vm;

namespace Hypervisor.Devices
{
    // An emulated device: a range of guest-physical addresses that is NOT mapped
    // at stage 2, so every access traps and lands here. `offset` is relative to
    // Base; `size` is 1, 2, 4 or 8 bytes. Returning false means the access is not
    // valid for this device: the guest gets an abort.
    public abstract class MmioDevice
    {
        public readonly ulong Base;
        public readonly ulong Size;

        protected MmioDevice(ulong baseAddress, ulong size)
        {
            Base = baseAddress;
            Size = size;
        }

        public bool Contains(ulong ipa) => ipa >= Base && ipa - Base < Size;

        public abstract bool Read(VirtualMachine vm, ulong offset, int size, out ulong value);
        public abstract bool Write(VirtualMachine vm, ulong offset, int size, ulong value);
    }
}
