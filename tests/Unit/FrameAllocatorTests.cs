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

    // The rule that keeps VMs apart: a free frame is always zero. The
    // allocator calls its scrubber for every frame that becomes free (at Seal,
    // Free and FreeMany), once, and never for a refused free.
    public unsafe class FrameAllocatorScrubTests
    {
        [ThreadStatic] private static List<ulong> s_scrubbed;
        private static void Record(ulong baseAddress, uint* frames, int count)
        {
            for (int i = 0; i < count; i++) s_scrubbed.Add(baseAddress + ((ulong)frames[i] << 12));
        }

        [Fact]
        public void EveryFrameThatBecomesFreeIsScrubbedOnce()
        {
            const ulong Base = 0x40000000;
            s_scrubbed = new List<ulong>();
            var owner = (ushort*)NativeMemory.Alloc(8 * sizeof(ushort));
            var stack = (uint*)NativeMemory.Alloc(8 * sizeof(uint));
            try
            {
                var a = new FrameAllocator(Base, 8, owner, stack, &Record);
                a.Reserve(Base, Base + 4096, FrameOwner.Hypervisor);
                a.Seal();
                Assert.Equal(7, s_scrubbed.Count);                      // the boot scrub: every free frame, not the reserved one
                Assert.DoesNotContain(Base, s_scrubbed);
                s_scrubbed.Clear();

                ulong p = a.Allocate(FrameOwner.FirstVm), q = a.Allocate(FrameOwner.FirstVm), r = a.Allocate(FrameOwner.FirstVm);
                Assert.Empty(s_scrubbed);                               // allocation never clears: the frame already is zero
                Assert.Equal(FrameStatus.WrongOwner, a.Free(p, FrameOwner.FirstVm + 1));
                Assert.Equal(FrameStatus.Ok, a.Free(p, FrameOwner.FirstVm));
                Assert.Equal(FrameStatus.AlreadyFree, a.Free(p, FrameOwner.FirstVm));
                Assert.Equal(new[] { p }, s_scrubbed);
                s_scrubbed.Clear();

                Assert.Equal(2, a.FreeMany(new[] { q, q, r, Base }, FrameOwner.FirstVm));
                Assert.Equal(new[] { q, r }, s_scrubbed);
            }
            finally
            {
                NativeMemory.Free(owner);
                NativeMemory.Free(stack);
            }
        }
    }
}
