using System;
using System.Collections.Generic;
using Hypervisor.Devices;
using Xunit;

namespace Hypervisor.Tests.Unit
{
    public unsafe class BalloonBitmapTests
    {
        private const ulong FirstPfn = 0x40000;   // RAM at 1 GiB, as on QEMU virt

        private static int Run(uint[] list, int from, out uint low)
        {
            fixed (uint* p = list) return BalloonBitmap.RunAt(p + from, p + list.Length, out low);
        }

        [Fact]
        public void RunAtFindsRunsListedUpAndDown()
        {
            Assert.Equal(3, Run(new uint[] { 5, 6, 7, 9 }, 0, out uint low));
            Assert.Equal(5u, low);
            Assert.Equal(4, Run(new uint[] { 8, 7, 6, 5, 6 }, 0, out low));
            Assert.Equal(5u, low);
            Assert.Equal(1, Run(new uint[] { 5, 5, 6 }, 0, out low));
            Assert.Equal(5u, low);
            Assert.Equal(1, Run(new uint[] { 9 }, 0, out low));
            Assert.Equal(9u, low);
            // Stops where the list ends, starts where it is asked to.
            Assert.Equal(2, Run(new uint[] { 1, 2, 3, 4 }, 2, out low));
            Assert.Equal(3u, low);
        }

        [Fact]
        public void RunAtNeverWrapsAroundThePageNumbers()
        {
            Assert.Equal(1, Run(new uint[] { uint.MaxValue, 0, 1 }, 0, out uint low));
            Assert.Equal(uint.MaxValue, low);
            Assert.Equal(2, Run(new uint[] { uint.MaxValue - 1, uint.MaxValue, 0 }, 0, out low));
            Assert.Equal(uint.MaxValue - 1, low);
            Assert.Equal(1, Run(new uint[] { 0, uint.MaxValue }, 0, out low));
            Assert.Equal(0u, low);
            Assert.Equal(2, Run(new uint[] { 1, 0, uint.MaxValue }, 0, out low));
            Assert.Equal(0u, low);
            // Long runs (compared two at a time) stop at the same places.
            var up = new uint[30];
            var down = new uint[30];
            for (int i = 0; i < 30; i++) { up[i] = 0xfffffff0u + (uint)i; down[i] = 15u - (uint)i; }
            Assert.Equal(16, Run(up, 0, out low));
            Assert.Equal(0xfffffff0u, low);
            Assert.Equal(16, Run(down, 0, out low));
            Assert.Equal(0u, low);
            for (int odd = 1; odd < 7; odd++)
            {
                var run = new uint[odd + 3];
                for (int i = 0; i < odd; i++) run[i] = 100u + (uint)i;
                run[odd] = 7; run[odd + 1] = 100u + (uint)odd + 1; run[odd + 2] = 100u + (uint)odd + 2;
                Assert.Equal(odd, Run(run, 0, out low));   // a break at any position, odd or even
            }
        }

        [Fact]
        public void FlipRunChangesExactlyTheRunAcrossWords()
        {
            var map = new BalloonBitmap(FirstPfn, 300);
            Assert.True(map.FlipRun(FirstPfn + 60, 70, toSet: true));   // words 0, 1 and 2
            for (ulong i = 0; i < 300; i++)
                Assert.Equal(i >= 60 && i < 130, map.IsSet(FirstPfn + i));
            Assert.True(map.FlipRun(FirstPfn + 64, 64, toSet: false));  // word 1, whole
            for (ulong i = 0; i < 300; i++)
                Assert.Equal((i >= 60 && i < 64) || (i >= 128 && i < 130), map.IsSet(FirstPfn + i));
            Assert.True(map.FlipRun(FirstPfn + 299, 1, toSet: true));   // the last page
            Assert.True(map.IsSet(FirstPfn + 299));
        }

        [Fact]
        public void FlipRunIsAllOrNothing()
        {
            var map = new BalloonBitmap(FirstPfn, 300);
            Assert.True(map.FlipRun(FirstPfn + 100, 1, toSet: true));
            // One page of the run is in the balloon already: nothing changes.
            Assert.False(map.FlipRun(FirstPfn + 90, 20, toSet: true));
            // One page of the run is not in the balloon: nothing changes.
            Assert.False(map.FlipRun(FirstPfn + 99, 2, toSet: false));
            // Below RAM, past its end, straddling either edge, empty.
            Assert.False(map.FlipRun(FirstPfn - 1, 1, toSet: true));
            Assert.False(map.FlipRun(FirstPfn - 2, 4, toSet: true));
            Assert.False(map.FlipRun(FirstPfn + 299, 2, toSet: true));
            Assert.False(map.FlipRun(FirstPfn + 300, 1, toSet: true));
            Assert.False(map.FlipRun(FirstPfn, 0, toSet: true));
            Assert.False(map.FlipRun(uint.MaxValue, 3, toSet: true));
            for (ulong i = 0; i < 300; i++) Assert.Equal(i == 100, map.IsSet(FirstPfn + i));
        }

        [Fact]
        public void FlipSaysWhatIsWrong()
        {
            var map = new BalloonBitmap(FirstPfn, 10);
            Assert.Equal(BalloonBitmap.Change.OutsideRam, map.Flip(FirstPfn - 1, toSet: true));
            Assert.Equal(BalloonBitmap.Change.OutsideRam, map.Flip(FirstPfn + 10, toSet: true));
            Assert.Equal(BalloonBitmap.Change.Done, map.Flip(FirstPfn + 3, toSet: true));
            Assert.Equal(BalloonBitmap.Change.AlreadyThat, map.Flip(FirstPfn + 3, toSet: true));
            Assert.Equal(BalloonBitmap.Change.AlreadyThat, map.Flip(FirstPfn + 4, toSet: false));
            Assert.Equal(BalloonBitmap.Change.Done, map.Flip(FirstPfn + 3, toSet: false));
            Assert.False(map.IsSet(FirstPfn + 3));
        }

        [Fact]
        public void MaskAtReadsOneWord()
        {
            var map = new BalloonBitmap(FirstPfn, 256);
            map.FlipRun(FirstPfn + 66, 3, toSet: true);
            Assert.Equal(0b111UL << 2, map.MaskAt(FirstPfn + 64, 8));
            Assert.Equal(0UL, map.MaskAt(FirstPfn + 60, 8));   // crosses a word boundary: refused
        }

        // Apply (runs first, page by page only for a run with a bad page in
        // it) against the plain one-page-at-a-time rule, over
        // random lists full of duplicates, runs both ways and bad numbers:
        // the same pages end up in the balloon, every page number is counted
        // once as moved, outside RAM or already there, and the moved runs
        // cover exactly the moved pages.
        [Fact]
        public void RunsGiveTheSameAnswerAsPageByPage()
        {
            var random = new Random(17);
            const int pages = 700;
            for (int round = 0; round < 300; round++)
            {
                var map = new BalloonBitmap(FirstPfn, pages);
                var model = new HashSet<uint>();
                for (int request = 0; request < 6; request++)
                {
                    bool inflate = random.Next(3) != 0;
                    uint[] list = RandomList(random, pages);
                    var moved = new List<uint>();
                    (int outside, int already) = Apply(map, list, inflate, moved);
                    int modelOutside = 0, modelAlready = 0;
                    var modelMoved = new List<uint>();
                    foreach (uint pfn in list)
                    {
                        if (pfn < FirstPfn || pfn >= FirstPfn + pages) modelOutside++;
                        else if (model.Contains(pfn) == inflate) modelAlready++;
                        else
                        {
                            if (inflate) model.Add(pfn); else model.Remove(pfn);
                            modelMoved.Add(pfn);
                        }
                    }
                    Assert.Equal(modelOutside, outside);
                    Assert.Equal(modelAlready, already);
                    moved.Sort();
                    modelMoved.Sort();
                    Assert.Equal(modelMoved, moved);
                    for (uint i = 0; i < pages; i++)
                        Assert.Equal(model.Contains((uint)FirstPfn + i), map.IsSet(FirstPfn + i));
                }
            }
        }

        private sealed class Recorder : BalloonBitmap.MovedRuns
        {
            public readonly List<uint> Pages = new List<uint>();
            public BalloonBitmap Map;
            public bool Inflate;

            public override void Moved(uint low, int length)
            {
                for (uint k = 0; k < length; k++)
                {
                    Pages.Add(low + k);
                    // The bits have changed before the run is handed on.
                    Assert.Equal(Inflate, Map.IsSet(low + k));
                }
            }
        }

        private static (int outside, int already) Apply(BalloonBitmap map, uint[] list, bool inflate, List<uint> moved)
        {
            var runs = new Recorder { Map = map, Inflate = inflate };
            var refused = new BalloonBitmap.Refused();
            ulong count;
            fixed (uint* p = list) count = map.Apply(p, list.Length, inflate, runs, ref refused);
            Assert.Equal((ulong)runs.Pages.Count, count);
            moved.AddRange(runs.Pages);
            return ((int)refused.OutsideRam, (int)refused.AlreadyThat);
        }

        private static uint[] RandomList(Random random, int pages)
        {
            var list = new List<uint>();
            int pieces = random.Next(1, 12);
            for (int i = 0; i < pieces; i++)
            {
                uint start = (uint)(FirstPfn + (ulong)random.Next(-20, pages + 20));
                int length = random.Next(1, 150);
                int step = random.Next(3) - 1;   // down, the same page again, up
                for (int k = 0; k < length; k++) list.Add(start + (uint)(k * step));
                if (random.Next(8) == 0) list.Add(random.Next(2) == 0 ? uint.MaxValue : 0);
            }
            return list.ToArray();
        }
    }
}
