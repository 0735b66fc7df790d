using System;

namespace Hypervisor.Devices
{
    // The ONE way device code touches a guest's memory. Addresses are
    // guest-physical (GPA, the guest's "physical" address = our IPA); the
    // kernel's implementation translates them through the VM's stage-2 tables
    // to host frames, host unit tests pass a byte array. Keeping every access
    // behind this seam means a device model can never follow a guest-supplied
    // pointer into hypervisor memory by accident: the guest only ever names
    // GPAs, and only this class turns them into real memory.
    //
    // Nothing here throws: every call says with its bool whether it worked.
    // (An abstract class rather than an interface: the kernel's runtime has no
    // interface dispatch; virtual calls need nothing from it.)
    public abstract class GuestMemoryView
    {
        // Copies destination.Length bytes starting at `gpa`. False, with
        // `destination` in an unspecified state, when any byte is not RAM or
        // cannot be reached.
        public abstract bool Read(ulong gpa, Span<byte> destination);

        // Copies `source` to guest memory at `gpa`; false when any byte is not
        // RAM or cannot be reached (then nothing, or a prefix, was written).
        public abstract bool Write(ulong gpa, ReadOnlySpan<byte> source);

        // True when every byte of [gpa, gpa + length) lies inside the VM's RAM.
        // False when gpa + length overflows 2^64, when any byte is MMIO or
        // unmapped address space, and for length 0 (a range of no bytes is
        // not "RAM": callers that forgot a length are refused, not waved on).
        public abstract bool IsRam(ulong gpa, ulong length);

        // Little-endian helpers: virtio 1.x rings and registers are always
        // little-endian, whatever the guest's data endianness is. Built from
        // bytes explicitly so the code says what the wire format is.

        public bool ReadU16(ulong gpa, out ushort value)
        {
            Span<byte> b = stackalloc byte[2];
            value = 0;
            if (!Read(gpa, b)) return false;
            value = (ushort)(b[0] | (b[1] << 8));
            return true;
        }

        public bool ReadU32(ulong gpa, out uint value)
        {
            Span<byte> b = stackalloc byte[4];
            value = 0;
            if (!Read(gpa, b)) return false;
            value = LoadU32(b, 0);
            return true;
        }

        public bool ReadU64(ulong gpa, out ulong value)
        {
            Span<byte> b = stackalloc byte[8];
            value = 0;
            if (!Read(gpa, b)) return false;
            value = LoadU32(b, 0) | ((ulong)LoadU32(b, 4) << 32);
            return true;
        }

        public bool WriteU16(ulong gpa, ushort value)
        {
            Span<byte> b = stackalloc byte[2];
            b[0] = (byte)value;
            b[1] = (byte)(value >> 8);
            return Write(gpa, b);
        }

        public bool WriteU32(ulong gpa, uint value)
        {
            Span<byte> b = stackalloc byte[4];
            StoreU32(b, 0, value);
            return Write(gpa, b);
        }

        public bool WriteU64(ulong gpa, ulong value)
        {
            Span<byte> b = stackalloc byte[8];
            StoreU32(b, 0, (uint)value);
            StoreU32(b, 4, (uint)(value >> 32));
            return Write(gpa, b);
        }

        // Byte-order helpers over a span, shared with the virtqueue code that
        // reads a whole 16-byte descriptor at once and then picks it apart.
        public static ushort LoadU16(ReadOnlySpan<byte> b, int at) => (ushort)(b[at] | (b[at + 1] << 8));

        public static uint LoadU32(ReadOnlySpan<byte> b, int at) =>
            (uint)b[at] | ((uint)b[at + 1] << 8) | ((uint)b[at + 2] << 16) | ((uint)b[at + 3] << 24);

        public static ulong LoadU64(ReadOnlySpan<byte> b, int at) => LoadU32(b, at) | ((ulong)LoadU32(b, at + 4) << 32);

        public static void StoreU32(Span<byte> b, int at, uint value)
        {
            b[at] = (byte)value;
            b[at + 1] = (byte)(value >> 8);
            b[at + 2] = (byte)(value >> 16);
            b[at + 3] = (byte)(value >> 24);
        }
    }
}
