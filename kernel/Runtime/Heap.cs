namespace Hypervisor.Runtime
{
    // The managed heap. There is no garbage collector: objects are bump-allocated
    // and never freed, so the kernel allocates only at boot and at VM creation,
    // never on a trap path. BytesInUse lets the final summary prove that.
    public static unsafe class Heap
    {
        private static byte* s_next;
        private static byte* s_end;
        private static byte* s_start;

        public static void Init(ulong start, ulong end)
        {
            s_start = (byte*)start;
            s_next = (byte*)start;
            s_end = (byte*)end;
        }

        // Rank Heap (kernel/Smp/LockOrder.cs), once several CPUs run: two
        // functions rather than a lock object, because a static of a
        // reference type lives in memory this allocator itself provides.
        private static delegate*<void> s_enter, s_exit;

        public static void UseLock(delegate*<void> enter, delegate*<void> exit)
        {
            s_enter = enter;
            s_exit = exit;
        }

        public static ulong BytesInUse => (ulong)(s_next - s_start);
        public static ulong BytesFree => (ulong)(s_end - s_next);

        // Zeroed, 8-byte aligned memory, or a panic when the heap is exhausted.
        public static byte* Allocate(ulong size)
        {
            size = (size + 7) & ~7UL;
            bool locked = s_enter != null;
            if (locked) s_enter();
            if (s_next == null || size > (ulong)(s_end - s_next))
                Fatal.Stop("managed heap exhausted");
            byte* p = s_next;
            s_next += size;
            if (locked) s_exit();
            Memory.Zero(p, size);
            return p;
        }
    }

    public static unsafe class Memory
    {
        public static void Zero(byte* p, ulong size)
        {
            ulong* q = (ulong*)p;
            while (size >= 8) { *q++ = 0; size -= 8; }
            byte* b = (byte*)q;
            while (size-- > 0) *b++ = 0;
        }

        // memmove semantics. Struct copies the compiler cannot unroll land here
        // (a vCPU's register frame on every VM switch), so whole words are
        // moved when both sides are equally aligned modulo 8 (after the few
        // bytes up to a boundary), else 4-byte words when equally aligned
        // modulo 4 (a driver's array of le32 page numbers: byte by byte,
        // reading Linux's balloon requests cost 20 instructions a page; 4
        // bytes a step, 6). Never an unaligned access: the test guests share this
        // code and may run with their MMU off, where memory is Device memory
        // and an unaligned load faults.
        public static void Copy(byte* dst, byte* src, ulong size)
        {
            if (dst <= src || dst >= src + size)
            {
                ulong i = 0;
                if ((((ulong)dst ^ (ulong)src) & 7) == 0)
                {
                    // Equally aligned: bytes up to an 8-byte boundary, then 8 a step.
                    for (; i < size && (((ulong)dst + i) & 7) != 0; i++) dst[i] = src[i];
                    for (; i + 8 <= size; i += 8) *(ulong*)(dst + i) = *(ulong*)(src + i);
                }
                else if ((((ulong)dst ^ (ulong)src) & 3) == 0)
                {
                    for (; i < size && (((ulong)dst + i) & 3) != 0; i++) dst[i] = src[i];
                    for (; i + 4 <= size; i += 4) *(uint*)(dst + i) = *(uint*)(src + i);
                }
                for (; i < size; i++) dst[i] = src[i];
            }
            else
            {
                for (ulong i = size; i > 0; i--) dst[i - 1] = src[i - 1];
            }
        }

        public static void Fill(byte* p, byte value, ulong size)
        {
            for (ulong i = 0; i < size; i++) p[i] = value;
        }
    }
}
