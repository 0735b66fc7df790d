using System;
using System.Runtime.InteropServices;
using Hypervisor.Mm;
using Xunit;

namespace Hypervisor.Tests.Unit
{
    // The coherency rule's helpers (kernel/Mm/Coherency.cs) against the cache
    // model: what they write reaches DRAM once the caller's barrier follows,
    // every byte of it, wherever it starts and ends within a line.
    public unsafe class CoherencyTests : IDisposable
    {
        private const int BufferBytes = 3 * 4096;
        private readonly byte* _buffer;

        public CoherencyTests()
        {
            _buffer = (byte*)NativeMemory.AlignedAlloc(BufferBytes, 4096);
            for (int i = 0; i < BufferBytes; i++) _buffer[i] = (byte)(0xa0 + i % 7);   // the previous owner's data
        }

        public void Dispose() => NativeMemory.AlignedFree(_buffer);

        [Theory]
        [InlineData(0x8444_c004u, 64)]     // cortex-a72: DminLine 4, 16 words
        [InlineData(0x0002_0000u, 16)]
        [InlineData(0x0009_0000u, 2048)]
        public void LineSizeIsDminLineWordsOfFourBytes(uint ctr, int bytes)
        {
            Assert.Equal((ulong)bytes, Coherency.LineSize(ctr));
        }

        [Theory]
        [InlineData(0, 4096)]
        [InlineData(1, 1)]
        [InlineData(63, 2)]                // straddles a line boundary
        [InlineData(100, 5000)]            // starts and ends inside lines, crosses a frame
        [InlineData(4095, 4098)]
        [InlineData(64, 0)]
        public void CopiedBytesAreInDramAfterTheBarrier(int offset, int length)
        {
            var cache = CacheModel.OverHostMemory();
            ulong start = (ulong)_buffer;
            cache.Seed(start, BufferBytes);
            byte[] data = new byte[length];
            new Random(offset).NextBytes(data);

            Coherency.CopyOut(cache, start + (ulong)offset, data);
            cache.Barrier();

            for (int i = 0; i < length; i++) Assert.Equal(data[i], _buffer[offset + i]);
            cache.AssertInDram(start, BufferBytes, $"copy of {length} bytes at +{offset}");
        }

        // A file in the guest bundle is only 4-byte aligned (cpio), the frame
        // it goes to is page aligned: the copy moves eight bytes a step from
        // an unaligned source, and must still copy exactly its bytes, the
        // tail included, and nothing past them.
        [Theory]
        [InlineData(4, 4096)]
        [InlineData(4, 13)]
        [InlineData(1, 4095)]
        [InlineData(7, 7)]
        public void AnUnalignedSourceIsCopiedExactly(int sourceOffset, int length)
        {
            var cache = CacheModel.OverHostMemory();
            ulong start = (ulong)_buffer;
            cache.Seed(start, BufferBytes);
            byte[] file = new byte[sourceOffset + length + 8];
            new Random(length).NextBytes(file);

            Coherency.CopyOut(cache, start + 4096, new ReadOnlySpan<byte>(file, sourceOffset, length));
            cache.Barrier();

            for (int i = 0; i < length; i++) Assert.Equal(file[sourceOffset + i], _buffer[4096 + i]);
            Assert.Equal((byte)(0xa0 + 4095 % 7), _buffer[4095]);
            Assert.Equal((byte)(0xa0 + (4096 + length) % 7), _buffer[4096 + length]);
            cache.AssertInDram(start, BufferBytes, $"copy of {length} bytes from +{sourceOffset}");
        }

        [Fact]
        public void WithoutTheBarrierTheCopyIsNotInDramYet()
        {
            var cache = CacheModel.OverHostMemory();
            ulong start = (ulong)_buffer;
            cache.Seed(start, BufferBytes);
            Coherency.CopyOut(cache, start + 8, new byte[] { 1, 2, 3 });
            Assert.NotEqual(*(ulong*)(start + 8), cache.Dram(start + 8));
            cache.Barrier();
            Assert.Equal(*(ulong*)(start + 8), cache.Dram(start + 8));
        }

        // The model itself must see a write nobody cleaned, or the other
        // tests would prove nothing.
        [Fact]
        public void TheModelCatchesAWriteThatWasNotCleaned()
        {
            var cache = CacheModel.OverHostMemory();
            ulong start = (ulong)_buffer;
            cache.Seed(start, BufferBytes);
            *(ulong*)(start + 128) = 0x1234;
            cache.CleanEntry(start);              // a different line
            cache.Barrier();
            Assert.ThrowsAny<Xunit.Sdk.XunitException>(() => cache.AssertInDram(start, BufferBytes, "uncleaned write"));
        }

        [Fact]
        public void ACleanBeforeTheWriteDoesNotCount()
        {
            var cache = CacheModel.OverHostMemory();
            ulong start = (ulong)_buffer;
            cache.Seed(start, BufferBytes);
            cache.CleanEntry(start + 256);
            *(ulong*)(start + 256) = 0x5678;
            cache.Barrier();
            Assert.ThrowsAny<Xunit.Sdk.XunitException>(() => cache.AssertInDram(start + 256, 8, "clean before write"));
        }

        [Fact]
        public void WriteEntryStoresThenCleansItsLine()
        {
            var cache = CacheModel.OverHostMemory();
            ulong start = (ulong)_buffer;
            cache.Seed(start, BufferBytes);
            Coherency.WriteEntry(cache, start + 4096 + 8 * 77, 0x4000_1003);
            Assert.Equal(0x4000_1003UL, *(ulong*)(start + 4096 + 8 * 77));
            Assert.Equal(new[] { $"clean {start + 4096 + 8 * 77:x}" }, cache.Operations);
            cache.Barrier();
            cache.AssertInDram(start, BufferBytes, "entry write");
        }

        [Fact]
        public void ZeroFrameZeroesAndCleansExactlyThatFrame()
        {
            var cache = new CacheModel(a => 0);
            Coherency.ZeroFrame(cache, 0x4123_4000);
            Assert.Empty(cache.FramesZeroInDram);          // not before the barrier
            cache.Barrier();
            Assert.Equal(new[] { 0x4123_4000UL }, cache.FramesZeroInDram);
        }
    }
}
