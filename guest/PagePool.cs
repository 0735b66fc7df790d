namespace Guest
{
    // The guest's own page allocator: every 4 KiB page of RAM between its
    // image (first 4 MiB) and the top 4 MiB (used by the demand and bench
    // tests), kept as a stack of page-frame numbers (GPA >> 12). Pages handed
    // to the balloon leave the stack, so the guest stops using them.
    public static unsafe class PagePool
    {
        private static uint[] s_free;
        private static int s_count;
        public static ulong First, End;

        public static void Init()
        {
            First = Program.Fdt.MemoryBase + (4UL << 20);
            End = Program.Fdt.MemoryBase + Program.Fdt.MemorySize - (4UL << 20);
            int pages = End > First ? (int)((End - First) >> 12) : 0;
            s_free = new uint[pages];
            // Highest first, so pages come out in ascending order.
            for (int i = pages - 1; i >= 0; i--) s_free[s_count++] = (uint)((First >> 12) + (ulong)i);
        }

        public static int FreePages => s_count;
        public static int TotalPages => s_free == null ? 0 : s_free.Length;

        public static bool TryTake(out uint pfn)
        {
            pfn = 0;
            if (s_count == 0) return false;
            pfn = s_free[--s_count];
            return true;
        }

        // Up to `max` pages at once (the balloon driver's hot loop).
        public static int TakeMany(uint* into, int max)
        {
            int n = max < s_count ? max : s_count;
            fixed (uint* free = s_free)
                for (int i = 0; i < n; i++) into[i] = free[s_count - 1 - i];
            s_count -= n;
            return n;
        }

        public static void GiveMany(uint* pfns, int n)
        {
            if (n > s_free.Length - s_count) n = s_free.Length - s_count;
            fixed (uint* free = s_free)
                for (int i = 0; i < n; i++) free[s_count + i] = pfns[i];
            s_count += n;
        }

        public static void Give(uint pfn)
        {
            if (s_count < s_free.Length) s_free[s_count++] = pfn;
        }

        public static uint At(int i) => s_free[i];
    }
}
