namespace Hypervisor.Devices
{
    // Which pages of a VM's RAM are in its balloon: one bit per 4 KiB page,
    // bit i of word i / 64 for the page i pages above the start of RAM.
    //
    // A driver lists pages in runs (Linux's page allocator hands them out
    // from the top of a free block, so its lists count down; this project's
    // guest driver counts up or down), and the balloon moves a run at a time:
    // RunAt finds the run that starts a list, and FlipRun checks and changes
    // its bits a 64-bit word at a time instead of a page at a time (about 8
    // instructions a page less for the device's loop; docs/performance.md).
    // A run with any page outside RAM, or any page already in the state it is
    // moved to, is left unchanged and goes page by page (TrySet, TryClear),
    // so every bad page number is counted exactly as it was listed.
    public sealed unsafe class BalloonBitmap
    {
        private readonly ulong[] _words;
        private readonly ulong _firstPfn, _pageCount;

        public BalloonBitmap(ulong firstPfn, ulong pageCount)
        {
            _firstPfn = firstPfn;
            _pageCount = pageCount;
            _words = new ulong[(pageCount + 63) / 64];
        }

        public ulong PageCount => _pageCount;

        public bool IsSet(ulong pfn)
        {
            ulong i = pfn - _firstPfn;                         // wraps for pages below RAM
            if (i >= _pageCount) return false;
            return (_words[i >> 6] & (1UL << (int)(i & 63))) != 0;
        }

        // Bit k for page pfn + k, for `count` pages that lie in one word
        // (count <= 64, not crossing a 64-page boundary of RAM); 0 otherwise.
        public ulong MaskAt(ulong pfn, int count)
        {
            ulong i = pfn - _firstPfn;
            if (i >= _pageCount || count <= 0 || count > 64 || (i & 63) + (ulong)count > 64) return 0;
            ulong word = _words[i >> 6] >> (int)(i & 63);
            return count == 64 ? word : word & ((1UL << count) - 1);
        }

        public enum Change { Done, OutsideRam, AlreadyThat }

        // One page into the balloon (toSet) or out of it.
        public Change Flip(ulong pfn, bool toSet)
        {
            ulong i = pfn - _firstPfn;
            if (i >= _pageCount) return Change.OutsideRam;
            ulong bit = 1UL << (int)(i & 63);
            ref ulong word = ref _words[i >> 6];
            if (((word & bit) != 0) == toSet) return Change.AlreadyThat;
            word ^= bit;
            return Change.Done;
        }

        // Pages [low, low + length) into the balloon (toSet) or out of it,
        // all or none: true when every page was in RAM and in the other
        // state, and now is in this one. First a pass that only looks, then
        // one that flips: every bit of the run is known to be the opposite
        // of the wanted state, so XOR sets (or clears) exactly the run.
        public bool FlipRun(ulong low, int length, bool toSet)
        {
            ulong i = low - _firstPfn;
            if (length <= 0 || i >= _pageCount || _pageCount - i < (ulong)length) return false;
            ulong end = i + (ulong)length;
            ulong lastWord = (end - 1) >> 6;
            fixed (ulong* words = _words)
            {
                if (lastWord == i >> 6 && length < 64)
                {
                    // Within one word (most of Linux's runs): one mask.
                    ulong mask = ((1UL << length) - 1) << (int)(i & 63);
                    ulong bits = words[lastWord] & mask;
                    if (toSet ? bits != 0 : bits != mask) return false;
                    words[lastWord] ^= mask;
                    return true;
                }
                for (ulong w = i >> 6; w <= lastWord; w++)
                {
                    ulong mask = RunMask(w, i, end);
                    ulong bits = words[w] & mask;
                    if (toSet ? bits != 0 : bits != mask) return false;
                }
                for (ulong w = i >> 6; w <= lastWord; w++) words[w] ^= RunMask(w, i, end);
            }
            return true;
        }

        // The bits of word w that pages [start, end) (indices into RAM) cover.
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        private static ulong RunMask(ulong w, ulong start, ulong end)
        {
            ulong wordStart = w << 6;
            int from = start > wordStart ? (int)(start - wordStart) : 0;
            int to = end < wordStart + 64 ? (int)(end - wordStart) : 64;
            ulong upTo = to == 64 ? ~0UL : (1UL << to) - 1;
            return upTo & ~((1UL << from) - 1);
        }

        // The run of consecutive page numbers that begins the list [at, end):
        // pages listed one up (5, 6, 7) or one down (7, 6, 5). Returns its
        // length (at least 1) and its lowest page. A run that would wrap
        // around the 32-bit page numbers ends before it does.
        public static int RunAt(uint* at, uint* end, out uint low)
        {
            uint first = *at;
            low = first;
            long listed = end - at;
            if (listed < 2) return 1;
            long length = 1;
            if (at[1] == first + 1)
            {
                long most = (long)(uint.MaxValue - first) + 1;   // up to page 0xffffffff
                if (most > listed) most = listed;
                // Two page numbers a step, as one 64-bit compare with the pair
                // the run expects next (little-endian: the lower one first;
                // SCTLR_EL2.A is 0, so the load may be 4-byte aligned), then
                // the odd one. Linux's runs average 11 pages, this project's
                // guest lists hundreds.
                ulong pair = (ulong)(first + 1) | (ulong)(first + 2) << 32;
                while (length + 2 <= most && *(ulong*)(at + length) == pair) { length += 2; pair += 0x0000_0002_0000_0002; }
                while (length < most && at[length] == first + (uint)length) length++;
            }
            else if (at[1] == first - 1)
            {
                long most = (long)first + 1;                      // down to page 0
                if (most > listed) most = listed;
                ulong pair = (ulong)(first - 1) | (ulong)(first - 2) << 32;
                while (length + 2 <= most && *(ulong*)(at + length) == pair) { length += 2; pair -= 0x0000_0002_0000_0002; }
                while (length < most && at[length] == first - (uint)length) length++;
                low = first - (uint)(length - 1);
            }
            return (int)length;
        }

        // Where a request's moved runs go: for an inflate, the device takes
        // their frames back (VirtioBalloon); a deflate needs nothing.
        public abstract class MovedRuns
        {
            public abstract void Moved(uint low, int length);
        }

        // Page numbers refused, by reason.
        public struct Refused
        {
            public ulong OutsideRam, AlreadyThat;
        }

        // Moves the pages a request lists into the balloon (toSet) or out of
        // it, a run at a time; a run that cannot move whole goes page by page
        // (each bad page number counted in `refused`, each good page its own
        // run). Every moved run is handed to `runs` (if given) after its bits
        // changed. Returns how many pages moved.
        public ulong Apply(uint* list, int count, bool toSet, MovedRuns runs, ref Refused refused)
        {
            ulong moved = 0;
            uint* end = list + count;
            for (uint* at = list; at < end;)
            {
                int length = RunAt(at, end, out uint low);
                if (FlipRun(low, length, toSet))
                {
                    runs?.Moved(low, length);
                    moved += (ulong)length;
                }
                else
                {
                    for (int k = 0; k < length; k++)
                    {
                        Change change = Flip(at[k], toSet);
                        if (change == Change.OutsideRam) refused.OutsideRam++;
                        else if (change == Change.AlreadyThat) refused.AlreadyThat++;   // also a page listed twice
                        else
                        {
                            runs?.Moved(at[k], 1);
                            moved++;
                        }
                    }
                }
                at += length;
            }
            return moved;
        }

        // Every page out of the balloon (device or VM reset).
        public void Clear()
        {
            for (int i = 0; i < _words.Length; i++) _words[i] = 0;
        }
    }
}
