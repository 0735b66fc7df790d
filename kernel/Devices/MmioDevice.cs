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

        // Set by Write when the device did only part of what the store asked
        // (it stops at a per-exit budget, e.g. the balloon's): the caller
        // leaves ELR_EL2 on the store, so the guest executes it again and the
        // device carries on in a fresh exit. Between the two, pending
        // interrupts are taken and the scheduler may run another VM, so no
        // single exit does unbounded work. The caller clears it.
        public bool RepeatAccess;

        public abstract bool Read(VirtualMachine vm, ulong offset, int size, out ulong value);
        public abstract bool Write(VirtualMachine vm, ulong offset, int size, ulong value);
    }
}
