using Hypervisor.Boot;
using Xunit;

namespace Hypervisor.Tests.Unit
{
    public class InitrdPlacementTests
    {
        private const ulong Ram = 0x40000000, Size = 64UL << 20;
        // A Linux Image as GuestImage describes it: 2 MiB above RAM, image_size 30 MiB.
        private const ulong ImageStart = Ram + 0x200000, ImageEnd = ImageStart + (30UL << 20);
        private const ulong DtbEnd = Ram + 0x10000;

        private static InitrdPlacementStatus Place(ulong length, out ulong start, ulong imageEnd = ImageEnd, ulong ramSize = Size) =>
            InitrdPlacement.Place(Ram, ramSize, length, ImageStart, imageEnd, Ram, DtbEnd, out start);

        [Theory]
        [InlineData(0x1000UL)]
        [InlineData(0x1234UL)]
        [InlineData(5UL << 20)]
        [InlineData(1UL)]
        public void GoesToTheTopOfRamPageAligned(ulong length)
        {
            Assert.Equal(InitrdPlacementStatus.Ok, Place(length, out ulong start));
            Assert.Equal(0UL, start & 0xfff);
            Assert.True(start + length <= Ram + Size);
            Assert.True(Ram + Size - (start + length) < 0x1000, "more than a page left above it");
            Assert.True(start >= ImageEnd);
        }

        [Fact]
        public void ExactlyTheRoomAboveTheImageFits()
        {
            ulong room = Ram + Size - ImageEnd;
            Assert.Equal(InitrdPlacementStatus.Ok, Place(room, out ulong start));
            Assert.Equal(ImageEnd, start);
            Assert.Equal(InitrdPlacementStatus.OverlapsImage, Place(room + 1, out start));
            Assert.Equal(0UL, start);
        }

        [Fact]
        public void LargerThanRamIsRefused()
        {
            Assert.Equal(InitrdPlacementStatus.LargerThanRam, Place(Size + 1, out _));
            Assert.Equal(InitrdPlacementStatus.LargerThanRam, Place(ulong.MaxValue, out _));
        }

        [Fact]
        public void TheDeviceTreeIsKeptClearToo()
        {
            // An image placed high (an ELF) leaves only the device tree below.
            var status = InitrdPlacement.Place(Ram, Size, Size - 0x8000, Ram + Size - 0x1000, Ram + Size - 0x1000, Ram, DtbEnd, out _);
            Assert.Equal(InitrdPlacementStatus.OverlapsDtb, status);
        }

        [Fact]
        public void SameAnswerEveryTime()
        {
            Place(0x123456, out ulong first);
            Place(0x123456, out ulong again);
            Assert.Equal(first, again);
        }
    }
}
