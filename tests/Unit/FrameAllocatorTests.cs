using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using Hypervisor.Mm;
using Xunit;

namespace Hypervisor.Tests.Unit
{
    public unsafe class FrameAllocatorTests : IDisposable
    {
        private const ulong Base = 0x40000000;
        private readonly List<IntPtr> _blocks = new List<IntPtr>();

        private FrameAllocator Make(uint frames)
        {
            var owner = (ushort*)NativeMemory.Alloc(frames * sizeof(ushort));
            var stack = (uint*)NativeMemory.Alloc(frames * sizeof(uint));
            // Garbage in the tables must not matter: the constructor sets them up.
            new Span<byte>(owner, (int)frames * 2).Fill(0xa5);
            _blocks.Add((IntPtr)owner);
            _blocks.Add((IntPtr)stack);
            return new FrameAllocator(Base, frames, owner, stack);
        }

        public void Dispose()
        {
            foreach (var b in _blocks) NativeMemory.Free((void*)b);
        }

        // The identity stage 2 of shadow and direct paging leaves out what is
        // reserved at boot; it asks by range (a 2 MiB block, or one frame).
        [Fact]
        public void BootReservationsAreKnownByRange()
        {
            var a = Make(1024);
            a.Reserve(Base + 4096, Base + 3 * 4096 + 1, FrameOwner.Hypervisor);   // frames 1..3
            a.Reserve(Base + 600 * 4096, Base + 601 * 4096, FrameOwner.Bundle);  // frame 600
            a.Seal();
            Assert.False(a.IsBootReserved(Base, Base + 4096));
            Assert.True(a.IsBootReserved(Base + 3 * 4096, Base + 4 * 4096));
            Assert.False(a.IsBootReserved(Base + 4 * 4096, Base + 512 * 4096));
            Assert.True(a.IsBootReserved(Base + 512 * 4096, Base + 1024 * 4096));
            Assert.False(a.IsBootReserved(Base + 601 * 4096, Base + 602 * 4096));
            ulong p = a.Allocate(FrameOwner.Hypervisor);   // allocated later: not a boot reservation
            Assert.False(a.IsBootReserved(p, p + 4096));
        }

        [Fact]
        public void ReservationsAreNotHandedOut()
        {
            var a = Make(64);
            Assert.Equal(FrameStatus.Ok, a.Reserve(Base, Base + 3 * 4096 + 1, FrameOwner.Hypervisor)); // 4 frames
            Assert.Equal(FrameStatus.Ok, a.Reserve(Base + 10 * 4096, Base + 12 * 4096, FrameOwner.Firmware));
            a.Seal();
            Assert.Equal(64u - 6, a.FreeFrames);
            var seen = new HashSet<ulong>();
            for (ulong p; (p = a.Allocate(FrameOwner.FirstVm)) != 0;)
            {
                Assert.True(seen.Add(p), "frame handed out twice");
                ulong index = (p - Base) / 4096;
                Assert.False(index < 4 || index == 10 || index == 11, $"reserved frame {index} handed out");
                Assert.Equal(FrameOwner.FirstVm, a.OwnerOf(p));
            }
            Assert.Equal(58, seen.Count);
            Assert.Equal(0u, a.FreeFrames);
        }

        // Fault-around's bulk allocation: only the wanted slots get frames,
        // each owned and distinct; when the host runs out the rest stay 0.
        [Fact]
        public void AllocateIntoFillsOnlyTheWantedSlots()
        {
            var a = Make(4);
            a.Seal();
            var frames = new ulong[8];
            a.AllocateInto(frames, 0b1010_0110, FrameOwner.FirstVm);
            Assert.Equal(new[] { 0UL, Base, Base + 4096, 0UL, 0UL, Base + 8192, 0UL, Base + 12288 }, frames);
            Assert.All(new[] { 1, 2, 5, 7 }, i => Assert.Equal(FrameOwner.FirstVm, a.OwnerOf(frames[i])));
            var more = new ulong[4];
            a.AllocateInto(more, 0b1111, FrameOwner.FirstVm);   // nothing left
            Assert.Equal(new ulong[4], more);
        }

        [Fact]
        public void AllocationIsAscendingAndExhaustionReturnsZero()
        {
            var a = Make(4);
            a.Seal();
            Assert.Equal(Base, a.Allocate(FrameOwner.Hypervisor));
            Assert.Equal(Base + 4096, a.Allocate(FrameOwner.Hypervisor));
            Assert.Equal(Base + 8192, a.Allocate(FrameOwner.Hypervisor));
            Assert.Equal(Base + 12288, a.Allocate(FrameOwner.Hypervisor));
            Assert.Equal(0UL, a.Allocate(FrameOwner.Hypervisor));
            Assert.Equal(0UL, a.Allocate(FrameOwner.Hypervisor));
            Assert.Equal(FrameStatus.Ok, a.Free(Base + 8192, FrameOwner.Hypervisor));
            Assert.Equal(Base + 8192, a.Allocate(FrameOwner.FirstVm));
        }

        [Fact]
        public void DoubleFreeIsDetectedAndCountsStayRight()
        {
            var a = Make(8);
            a.Seal();
            ulong p = a.Allocate(FrameOwner.FirstVm);
            Assert.Equal(FrameStatus.Ok, a.Free(p, FrameOwner.FirstVm));
            Assert.Equal(FrameStatus.AlreadyFree, a.Free(p, FrameOwner.FirstVm));
            Assert.Equal(8u, a.FreeFrames);
            // And the frame is handed out only once afterwards.
            var seen = new HashSet<ulong>();
            for (ulong q; (q = a.Allocate(FrameOwner.FirstVm)) != 0;) Assert.True(seen.Add(q));
            Assert.Equal(8, seen.Count);
        }

        [Fact]
        public void FreeChecksOwnerAlignmentAndRange()
        {
            var a = Make(8);
            a.Seal();
            ulong p = a.Allocate(FrameOwner.FirstVm);
            Assert.Equal(FrameStatus.WrongOwner, a.Free(p, FrameOwner.FirstVm + 1));
            Assert.Equal(FrameStatus.Misaligned, a.Free(p + 8, FrameOwner.FirstVm));
            Assert.Equal(FrameStatus.OutOfRange, a.Free(Base - 4096, FrameOwner.FirstVm));
            Assert.Equal(FrameStatus.OutOfRange, a.Free(Base + 8 * 4096, FrameOwner.FirstVm));
            Assert.Equal(7u, a.FreeFrames);
            Assert.Equal(FrameOwner.FirstVm, a.OwnerOf(p));
        }

        [Fact]
        public void TransferMovesOwnershipWithoutFreeing()
        {
            var a = Make(8);
            a.Seal();
            ulong p = a.Allocate(FrameOwner.FirstVm);
            Assert.Equal(FrameStatus.Ok, a.Transfer(p, FrameOwner.FirstVm, FrameOwner.FirstVm + 1));
            Assert.Equal(FrameOwner.FirstVm + 1, a.OwnerOf(p));
            Assert.Equal(FrameStatus.WrongOwner, a.Transfer(p, FrameOwner.FirstVm, FrameOwner.FirstVm + 2));
            Assert.Equal(FrameStatus.WrongOwner, a.Transfer(p, FrameOwner.FirstVm + 1, FrameOwner.Free));
            Assert.Equal(7u, a.FreeFrames);
        }

        [Fact]
        public void ReserveAfterSealAndFreeBeforeSealAreRefused()
        {
            var a = Make(8);
            Assert.Equal(FrameStatus.NotSealed, a.Free(Base, FrameOwner.Hypervisor));
            a.Seal();
            Assert.Equal(FrameStatus.Sealed, a.Reserve(Base, Base + 4096, FrameOwner.Hypervisor));
            Assert.Equal(8u, a.FreeFrames);
        }

        [Fact]
        public void ReservationOutsideRamIsClipped()
        {
            var a = Make(8);
            a.Reserve(Base - 0x10000, Base + 4096, FrameOwner.Firmware);
            a.Reserve(Base + 7 * 4096, Base + 0x100000, FrameOwner.Firmware);
            a.Seal();
            Assert.Equal(6u, a.FreeFrames);
            Assert.Equal(2u, a.CountOwnedBy(FrameOwner.Firmware));
            Assert.Equal(FrameOwner.Hypervisor, a.OwnerOf(Base - 1));
            Assert.Equal(FrameOwner.Hypervisor, a.OwnerOf(Base + 8 * 4096));
        }

        [Fact]
        public void RandomAllocFreeNeverLosesAFrame()
        {
            var a = Make(256);
            a.Seal();
            var rng = new Random(7);
            var held = new List<(ulong addr, ushort owner)>();
            for (int step = 0; step < 20000; step++)
            {
                if (held.Count > 0 && (rng.Next(2) == 0 || a.FreeFrames == 0))
                {
                    int i = rng.Next(held.Count);
                    Assert.Equal(FrameStatus.Ok, a.Free(held[i].addr, held[i].owner));
                    held.RemoveAt(i);
                }
                else
                {
                    ushort owner = (ushort)(FrameOwner.FirstVm + rng.Next(4));
                    ulong p = a.Allocate(owner);
                    Assert.NotEqual(0UL, p);
                    held.Add((p, owner));
                }
                Assert.Equal(256u, a.FreeFrames + (uint)held.Count);
            }
        }
    }
}

namespace Hypervisor.Tests.Unit
{
    public unsafe class FrameAllocatorContiguousTests : IDisposable
    {
        private readonly System.Collections.Generic.List<IntPtr> _blocks = new System.Collections.Generic.List<IntPtr>();

        private FrameAllocator Make(ulong ramBase, uint frames)
        {
            var owner = (ushort*)NativeMemory.Alloc(frames * sizeof(ushort));
            var stack = (uint*)NativeMemory.Alloc(frames * sizeof(uint));
            _blocks.Add((IntPtr)owner);
            _blocks.Add((IntPtr)stack);
            return new FrameAllocator(ramBase, frames, owner, stack);
        }

        public void Dispose()
        {
            foreach (var b in _blocks) NativeMemory.Free((void*)b);
        }

        [Fact]
        public void ContiguousRunIsAlignedOwnedAndNeverHandedOutAgain()
        {
            // RAM starting at an odd frame: alignment is of the physical address.
            var a = Make(0x40001000, 2048);
            a.Reserve(0x40001000, 0x40001000 + 100 * 4096, FrameOwner.Hypervisor);
            a.Seal();
            uint freeBefore = a.FreeFrames;
            ulong block = a.AllocateContiguous(512, 512, FrameOwner.FirstVm);
            Assert.NotEqual(0UL, block);
            Assert.Equal(0UL, block % (2UL << 20));
            Assert.Equal(freeBefore - 512, a.FreeFrames);
            for (ulong p = block; p < block + (2UL << 20); p += 4096) Assert.Equal(FrameOwner.FirstVm, a.OwnerOf(p));
            for (ulong p; (p = a.Allocate(FrameOwner.FirstVm + 1)) != 0;)
                Assert.False(p >= block && p < block + (2UL << 20), "frame of the contiguous run handed out again");
        }

        [Fact]
        public void ContiguousFailsCleanlyWhenFragmented()
        {
            var a = Make(0x40000000, 64);
            a.Seal();
            // Take every other frame: no run of two is left.
            for (int i = 0; i < 32; i++) { a.Allocate(FrameOwner.Hypervisor); a.Allocate(FrameOwner.FirstVm); }
            for (ulong p = 0x40000000; p < 0x40000000 + 64 * 4096; p += 8192) a.Free(p, FrameOwner.Hypervisor);
            Assert.Equal(32u, a.FreeFrames);
            Assert.Equal(0UL, a.AllocateContiguous(2, 2, FrameOwner.FirstVm));
            Assert.Equal(32u, a.FreeFrames);
            ulong one = a.AllocateContiguous(1, 1, FrameOwner.FirstVm);
            Assert.NotEqual(0UL, one);
            Assert.Equal(31u, a.FreeFrames);
        }
    }
}

namespace Hypervisor.Tests.Unit
{
    public unsafe class FrameAllocatorFreeManyTests
    {
        [Fact]
        public void FreeManySkipsWhatFreeWouldRefuse()
        {
            const ulong Base = 0x40000000;
            var owner = (ushort*)NativeMemory.Alloc(16 * sizeof(ushort));
            var stack = (uint*)NativeMemory.Alloc(16 * sizeof(uint));
            try
            {
                var a = new FrameAllocator(Base, 16, owner, stack);
                a.Seal();
                ulong p = a.Allocate(FrameOwner.FirstVm), q = a.Allocate(FrameOwner.FirstVm), r = a.Allocate(FrameOwner.FirstVm + 1);
                var batch = new[] { p, p + 8, Base - 4096, Base + 16 * 4096, r, q, q };
                Assert.Equal(2, a.FreeMany(batch, FrameOwner.FirstVm));   // p and q once; misaligned, outside, other owner, twice: skipped
                Assert.Equal(15u, a.FreeFrames);
                Assert.Equal(FrameOwner.Free, a.OwnerOf(p));
                Assert.Equal(FrameOwner.FirstVm + 1, a.OwnerOf(r));
            }
            finally
            {
                NativeMemory.Free(owner);
                NativeMemory.Free(stack);
            }
        }
    }

    // The rule that keeps VMs apart: every frame is scrubbed after its last
    // owner freed it and before anyone gets it again, once. A model follows
    // each frame (clean or dirty) through random frees, allocations, idle
    // scrubbing and contiguous allocations; the recording scrubber checks
    // that only free, dirty frames are scrubbed. The cache model
    // (CacheModel.cs) checks that "zeroed" holds in DRAM: each frame handed
    // out was zeroed and cleaned with a barrier after it, since its last free,
    // and the instruction caches were invalidated after that.
    public unsafe class FrameAllocatorScrubTests
    {
        private const ulong Base = 0x40000000;
        [ThreadStatic] private static HashSet<ulong> s_dirty;      // free frames not yet scrubbed
        [ThreadStatic] private static HashSet<ulong> s_free;
        [ThreadStatic] private static int s_scrubs;

        private static void Record(ulong pa)
        {
            Assert.True(s_free.Contains(pa), $"scrubbed {pa:x}, which is not free");
            Assert.True(s_dirty.Remove(pa), $"scrubbed {pa:x} twice");
            s_scrubs++;
        }

        private static void HandedOut(CacheModel cache, ulong pa)
        {
            Assert.DoesNotContain(pa, s_dirty);
            Assert.True(cache.FramesZeroInDram.Contains(pa), $"{pa:x} handed out before its zeroes reached DRAM");
            Assert.True(cache.FramesWithoutOldInstructions.Contains(pa), $"{pa:x} handed out with its old owner's instructions still cached");
            s_free.Remove(pa);
        }

        [Fact]
        public void EveryFrameIsScrubbedOnceBetweenOwners()
        {
            const uint Frames = 256;
            s_dirty = new HashSet<ulong>();
            s_free = new HashSet<ulong>();
            s_scrubs = 0;
            var owner = (ushort*)NativeMemory.Alloc(Frames * sizeof(ushort));
            var stack = (uint*)NativeMemory.Alloc(Frames * sizeof(uint));
            try
            {
                var cache = new CacheModel(_ => 0) { OnZeroFrame = Record };
                var a = new FrameAllocator(Base, Frames, owner, stack, cache);
                a.Reserve(Base, Base + 4096, FrameOwner.Hypervisor);
                for (uint i = 1; i < Frames; i++) { s_free.Add(Base + i * 4096); s_dirty.Add(Base + i * 4096); }
                a.Seal();
                Assert.Empty(s_dirty);                                   // the boot scrub: all free RAM
                Assert.True(s_free.SetEquals(cache.FramesZeroInDram));   // and in DRAM
                Assert.True(s_free.SetEquals(cache.FramesWithoutOldInstructions));
                Assert.Equal(0u, a.DirtyFrames);

                var held = new List<ulong>();
                var random = new Random(7);
                for (int step = 0; step < 4000; step++)
                {
                    int op = random.Next(10);
                    if (op < 2)
                    {
                        ulong p = a.Allocate(FrameOwner.FirstVm);
                        if (p == 0) { Assert.Empty(s_free); continue; }
                        HandedOut(cache, p);                             // handed out clean
                        held.Add(p);
                    }
                    else if (op < 4)
                    {
                        // Fault-around's bulk allocation: clean frames first,
                        // then dirty ones scrubbed on the way out.
                        var slots = new ulong[8];
                        ulong want = (ulong)random.Next(1, 256);
                        int freeBefore = s_free.Count;
                        a.AllocateInto(slots, want, FrameOwner.FirstVm);
                        int got = 0;
                        for (int i = 0; i < slots.Length; i++)
                        {
                            if (slots[i] == 0) continue;
                            Assert.True((want & (1UL << i)) != 0, $"slot {i} got a frame it did not want");
                            Assert.Equal(FrameOwner.FirstVm, a.OwnerOf(slots[i]));
                            HandedOut(cache, slots[i]);
                            held.Add(slots[i]);
                            got++;
                        }
                        int wanted = System.Numerics.BitOperations.PopCount(want);
                        Assert.Equal(Math.Min(wanted, freeBefore), got);
                        // Fault-around gives back the frames of pages another
                        // exit had mapped: never used, so they return clean.
                        ulong keep = (ulong)random.Next(256);
                        int back = 0;
                        for (int i = 0; i < slots.Length; i++)
                            if (slots[i] != 0 && (keep & (1UL << i)) == 0) { held.Remove(slots[i]); s_free.Add(slots[i]); back++; }
                        Assert.Equal(back, a.ReturnUnused(slots, keep, FrameOwner.FirstVm));
                        Assert.Equal(0, a.ReturnUnused(slots, keep, FrameOwner.FirstVm));   // not theirs any more
                    }
                    else if (op < 7 && held.Count > 0)
                    {
                        int n = random.Next(1, Math.Min(held.Count, 8) + 1);
                        var batch = held.GetRange(held.Count - n, n);
                        held.RemoveRange(held.Count - n, n);
                        foreach (ulong p in batch) { s_free.Add(p); s_dirty.Add(p); cache.Dirty(p); }
                        if (n == 1) Assert.Equal(FrameStatus.Ok, a.Free(batch[0], FrameOwner.FirstVm));
                        else Assert.Equal(n, a.FreeMany(batch.ToArray(), FrameOwner.FirstVm));
                    }
                    else if (op < 9)
                    {
                        int before = s_dirty.Count;
                        uint n = a.ScrubSome((uint)random.Next(1, 6));
                        Assert.Equal(before - (int)n, s_dirty.Count);
                    }
                    else
                    {
                        ulong p = a.AllocateContiguous(2, 2, FrameOwner.FirstVm);
                        if (p == 0) continue;
                        foreach (ulong q in new[] { p, p + 4096 })
                        {
                            HandedOut(cache, q);
                            held.Add(q);
                        }
                    }
                    Assert.Equal((uint)s_dirty.Count, a.DirtyFrames);
                    Assert.Equal((uint)s_free.Count, a.FreeFrames);
                }
                Assert.Equal((ulong)(s_scrubs - (Frames - 1)), a.ScrubbedIdle + a.ScrubbedOnAllocation);
                Assert.True(a.ScrubbedIdle > 0 && a.ScrubbedOnAllocation > 0);
            }
            finally
            {
                NativeMemory.Free(owner);
                NativeMemory.Free(stack);
            }
        }

        // With several CPUs demand faults, balloon frees and the idle scrub
        // meet in the allocator, under its lock (kernel/Smp/LockOrder.cs,
        // rank Frames). Three host threads play those CPUs with a real lock
        // as the Guard: no frame is ever handed to two owners at once, and
        // every frame is back at the end. (Without the Guard the free stack
        // loses and duplicates frames within a few thousand operations.)
        private sealed class ThreadLock : Hypervisor.Smp.Guard
        {
            private readonly object _lock = new object();
            public int Held;
            public override void Enter() { System.Threading.Monitor.Enter(_lock); Held++; }
            public override void Exit() { Held--; System.Threading.Monitor.Exit(_lock); }
        }

        [Fact]
        public void CpusSharingTheAllocatorThroughItsGuardNeverShareAFrame()
        {
            const uint Frames = 256;
            var owners = (ushort*)NativeMemory.Alloc(Frames * sizeof(ushort));
            var stack = (uint*)NativeMemory.Alloc(Frames * sizeof(uint));
            var a = new FrameAllocator(Base, Frames, owners, stack);
            a.Seal();
            var guard = new ThreadLock();
            a.Guard = guard;
            var claimed = new int[Frames];
            int doubles = 0, wrongFrees = 0, crashes = 0;
            void Cpu(ushort owner, int seed)
            {
                var held = new ulong[8];
                var random = new Random(seed);
                for (int op = 0; op < 60_000; op++)
                {
                    int slot = random.Next(held.Length);
                    if (held[slot] == 0)
                    {
                        ulong p = a.Allocate(owner);
                        if (p == 0) continue;
                        if (System.Threading.Interlocked.Exchange(ref claimed[(p - Base) / 4096], 1) != 0) System.Threading.Interlocked.Increment(ref doubles);
                        held[slot] = p;
                    }
                    else
                    {
                        System.Threading.Volatile.Write(ref claimed[(held[slot] - Base) / 4096], 0);
                        FrameStatus status = random.Next(2) == 0
                            ? a.Free(held[slot], owner)
                            : (a.FreeMany(new[] { held[slot] }, owner) == 1 ? FrameStatus.Ok : FrameStatus.WrongOwner);
                        if (status != FrameStatus.Ok) System.Threading.Interlocked.Increment(ref wrongFrees);
                        held[slot] = 0;
                    }
                    if (op % 64 == 0) a.ScrubSome(4);
                }
                foreach (ulong p in held)
                    if (p != 0)
                    {
                        System.Threading.Volatile.Write(ref claimed[(p - Base) / 4096], 0);
                        a.Free(p, owner);
                    }
            }
            var threads = new System.Threading.Thread[3];
            for (int t = 0; t < threads.Length; t++)
            {
                ushort owner = (ushort)(FrameOwner.FirstVm + t);
                int seed = t + 1;
                threads[t] = new System.Threading.Thread(() =>
                {
                    // A corrupted free stack may index outside its table: a failure, not a crashed test host.
                    try { Cpu(owner, seed); }
                    catch (Exception) { System.Threading.Interlocked.Increment(ref crashes); }
                });
            }
            foreach (var t in threads) t.Start();
            foreach (var t in threads) t.Join();
            Assert.Equal(0, crashes);
            Assert.Equal(0, doubles);
            Assert.Equal(0, wrongFrees);
            Assert.Equal(0, guard.Held);
            Assert.Equal(Frames, a.FreeFrames);
            for (ushort t = 0; t < threads.Length; t++) Assert.Equal(0u, a.CountOwnedBy((ushort)(FrameOwner.FirstVm + t)));
            NativeMemory.Free(owners);
            NativeMemory.Free(stack);
        }
    }
}
