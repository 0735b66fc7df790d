using System;
using System.Collections.Generic;
using Hypervisor.Vm;
using Xunit;

namespace Hypervisor.Tests.Unit
{
    public class VmidAllocatorTests
    {
        private static ushort Assign(VmidAllocator a, ref ulong tag, bool expectFlush = false)
        {
            ushort vmid = a.Assign(ref tag, out bool flush);
            Assert.Equal(expectFlush, flush);
            Assert.NotEqual(0, vmid);
            Assert.True(a.IsCurrent(tag));
            Assert.Equal(vmid, VmidAllocator.VmidOf(tag));
            Assert.Equal(a.Generation, VmidAllocator.GenerationOf(tag));
            return vmid;
        }

        [Theory]
        [InlineData(1, 1)]
        [InlineData(2, 3)]
        [InlineData(8, 255)]
        [InlineData(16, 65535)]
        public void CapacityLeavesOutVmidZero(int bits, int capacity)
        {
            var a = new VmidAllocator(bits);
            Assert.Equal(bits, a.Width);
            Assert.Equal(capacity, a.Capacity);
            Assert.Equal(1UL, a.Generation);
            Assert.Equal(0UL, a.Rollovers);
            Assert.Equal(0, a.VmidsInUse);
        }

        [Theory]
        [InlineData(0, 1)]
        [InlineData(-5, 1)]
        [InlineData(17, 16)]
        [InlineData(64, 16)]
        public void WidthOutOfRangeIsClamped(int bits, int width)
        {
            Assert.Equal(width, new VmidAllocator(bits).Width);
        }

        [Theory]
        [InlineData(2)]
        [InlineData(4)]
        [InlineData(8)]
        public void HandsOutOneToCapacityInOrderThenRollsOverOnce(int bits)
        {
            var a = new VmidAllocator(bits);
            var tags = new ulong[a.Capacity + 1];
            for (int i = 0; i < a.Capacity; i++) Assert.Equal(i + 1, Assign(a, ref tags[i]));
            Assert.Equal(a.Capacity, a.VmidsInUse);
            for (int i = 0; i < a.Capacity; i++) Assert.True(a.IsCurrent(tags[i]));

            // Entering the same VMs again changes nothing.
            for (int i = 0; i < a.Capacity; i++) Assert.Equal(i + 1, Assign(a, ref tags[i]));
            Assert.Equal(0UL, a.Rollovers);

            // One VM too many: a new generation, flushed exactly once.
            Assert.Equal(1, Assign(a, ref tags[a.Capacity], expectFlush: true));
            Assert.Equal(2UL, a.Generation);
            Assert.Equal(1UL, a.Rollovers);
            Assert.Equal(1, a.VmidsInUse);

            // Every old tag is stale now and gets a fresh VMID without another flush.
            for (int i = 0; i < a.Capacity; i++) Assert.False(a.IsCurrent(tags[i]));
            var seen = new HashSet<int> { 1 };
            for (int i = 0; i < a.Capacity - 1; i++) Assert.True(seen.Add(Assign(a, ref tags[i])));
            Assert.Equal(1UL, a.Rollovers);
            Assert.Equal(a.Capacity, a.VmidsInUse);
            // The last old VM no longer fits into generation 2.
            Assign(a, ref tags[a.Capacity - 1], expectFlush: true);
            Assert.Equal(2UL, a.Rollovers);
        }

        [Fact]
        public void NeverAssignedAndZeroTagsAreNotCurrent()
        {
            var a = new VmidAllocator(8);
            Assert.False(a.IsCurrent(0));
            Assert.False(a.IsCurrent(1UL << VmidAllocator.TagShift));   // generation 1, VMID 0
            Assert.False(a.IsCurrent((2UL << VmidAllocator.TagShift) | 1));  // a future generation
            ulong tag = 0;
            Assign(a, ref tag);
            Assert.Equal((1UL << 16) | 1, tag);
        }

        [Fact]
        public void ReleaseMakesTheVmidReusableInTheSameGeneration()
        {
            var a = new VmidAllocator(2);   // VMIDs 1, 2, 3
            ulong x = 0, y = 0, z = 0, w = 0;
            Assign(a, ref x);
            Assert.Equal(2, Assign(a, ref y));
            Assign(a, ref z);

            a.Release(ref y);
            Assert.Equal(0UL, y);
            Assert.Equal(2, a.VmidsInUse);
            a.Release(ref y);                 // a second release does nothing
            Assert.Equal(2, a.VmidsInUse);

            Assert.Equal(2, Assign(a, ref w));   // no rollover: VMID 2 was free again
            Assert.Equal(1UL, a.Generation);
            Assert.Equal(0UL, a.Rollovers);
            Assert.True(a.IsCurrent(x) && a.IsCurrent(z) && a.IsCurrent(w));
        }

        [Fact]
        public void ReleasingAStaleTagFreesNothing()
        {
            var a = new VmidAllocator(1);
            ulong x = 0, y = 0;
            Assign(a, ref x);
            Assign(a, ref y, expectFlush: true);   // x is stale now, y holds VMID 1
            a.Release(ref x);
            Assert.Equal(0UL, x);
            Assert.Equal(1, a.VmidsInUse);
            Assert.True(a.IsCurrent(y));
            ulong z = 0;
            Assign(a, ref z, expectFlush: true);   // VMID 1 is still y's
        }

        [Fact]
        public void WidthOneRollsOverOnEverySwitchBetweenTwoVms()
        {
            var a = new VmidAllocator(1);
            ulong x = 0, y = 0;
            Assert.Equal(1, Assign(a, ref x));
            Assert.Equal(1, Assign(a, ref x));   // the same VM again: no rollover
            for (int i = 1; i <= 10; i++)
            {
                ref ulong next = ref (i % 2 == 1 ? ref y : ref x);
                Assert.Equal(1, Assign(a, ref next, expectFlush: true));
                Assert.Equal((ulong)i, a.Rollovers);
                Assert.False(a.IsCurrent(i % 2 == 1 ? x : y));
            }
        }

        [Fact]
        public void WidthSixteenHandsOutAll65535()
        {
            var a = new VmidAllocator(16);
            var tags = new ulong[65536];
            for (int i = 0; i < 65535; i++) Assert.Equal(i + 1, Assign(a, ref tags[i]));
            Assert.Equal(65535, a.VmidsInUse);

            // Free a few scattered VMIDs, below the cursor (which has wrapped to 1
            // after VMID 65535): they are found again, lowest first, without a rollover.
            a.Release(ref tags[40000]);   // VMID 40001
            a.Release(ref tags[63]);      // VMID 64, the second bitmap word
            a.Release(ref tags[65534]);   // VMID 65535, the very last
            ulong p = 0, q = 0, r = 0;
            Assert.Equal(64, Assign(a, ref p));
            Assert.Equal(40001, Assign(a, ref q));
            Assert.Equal(65535, Assign(a, ref r));
            Assert.Equal(0UL, a.Rollovers);

            Assert.Equal(1, Assign(a, ref tags[65535], expectFlush: true));
            Assert.Equal(1UL, a.Rollovers);
            Assert.Equal(1, a.VmidsInUse);
        }

        [Fact]
        public void CursorWrapsToReleasedVmidsBeforeRollingOver()
        {
            var a = new VmidAllocator(8);
            var tags = new ulong[255];
            for (int i = 0; i < 200; i++) Assign(a, ref tags[i]);
            a.Release(ref tags[9]);                      // VMID 10, behind the cursor
            ulong t = 0;
            Assert.Equal(201, Assign(a, ref t));         // the cursor goes on first
            for (int i = 200; i < 254; i++) Assign(a, ref tags[i]);   // 202..255
            ulong u = 0;
            Assert.Equal(10, Assign(a, ref u));          // then wraps to the freed one
            Assert.Equal(0UL, a.Rollovers);
            Assert.Equal(255, a.VmidsInUse);
        }

        // More VMs than VMIDs, entering in random order: at no time may two VMs
        // hold current tags with the same VMID, since the TLB would mix them up.
        [Theory]
        [InlineData(2, 8, 1)]
        [InlineData(2, 8, 2)]
        [InlineData(3, 12, 3)]
        [InlineData(1, 3, 4)]
        public void ExhaustionNeverSharesAVmidWithinAGeneration(int bits, int vmCount, int seed)
        {
            var a = new VmidAllocator(bits);
            var rng = new Random(seed);
            var tags = new ulong[vmCount];
            ulong flushes = 0;
            var holder = new int[a.Capacity + 1];
            for (int round = 0; round < 10000; round++)
            {
                int vm = rng.Next(vmCount);
                if (rng.Next(50) == 0) { a.Release(ref tags[vm]); continue; }   // now and then a VM is destroyed and recreated
                ushort vmid = a.Assign(ref tags[vm], out bool flush);
                if (flush) flushes++;
                Assert.InRange(vmid, 1, a.Capacity);

                Array.Clear(holder);
                int current = 0;
                for (int i = 0; i < vmCount; i++)
                {
                    if (!a.IsCurrent(tags[i])) continue;
                    int v = VmidAllocator.VmidOf(tags[i]);
                    Assert.True(holder[v] == 0, $"round {round}: VMs {holder[v] - 1} and {i} both hold VMID {v}");
                    holder[v] = i + 1;
                    current++;
                }
                Assert.Equal(current, a.VmidsInUse);
                Assert.True(a.IsCurrent(tags[vm]));
            }
            Assert.Equal(flushes, a.Rollovers);
            Assert.Equal(a.Rollovers + 1, a.Generation);
            Assert.True(a.Rollovers > 100, $"only {a.Rollovers} rollovers");
        }
    }
}
