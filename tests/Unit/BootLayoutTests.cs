using System;
using System.IO;
using Hypervisor.Boot;
using Xunit;

namespace Hypervisor.Tests.Unit
{
    // Where the initrd and the device tree go (kernel/Boot/BootLayout.cs): above
    // the image, the initrd first, as QEMU's loader does for -kernel.
    public class BootLayoutTests
    {
        private const ulong Ram = 0x40000000, Size = 64UL << 20;
        private const ulong Room = 0x10000;          // what VmBuilder keeps for the tree
        private const ulong MiB = 1UL << 20;

        private static BootLayoutStatus Place(ulong imageStart, ulong imageEnd, ulong initrd, out BootLayoutInfo l, ulong ramSize = Size) =>
            BootLayout.Place(Ram, ramSize, imageStart, imageEnd, initrd, Room, out l);

        // What every accepted layout must satisfy, whatever the inputs.
        private static void AssertSound(BootLayoutInfo l, ulong ramSize, ulong initrd)
        {
            ulong ramEnd = Ram + ramSize;
            Assert.True(l.ImageStart >= Ram && l.ImageEnd <= ramEnd, "image outside RAM");
            Assert.Equal(0UL, l.InitrdStart & 0xfff);
            Assert.Equal(initrd, l.InitrdEnd - l.InitrdStart);
            Assert.True(l.InitrdStart >= l.ImageEnd, "initrd not above the image");
            Assert.True(l.InitrdEnd <= ramEnd, "initrd past the end of RAM");
            Assert.Equal(0UL, l.DtbStart & 0xfff);
            Assert.True(l.DtbStart >= l.InitrdEnd, "device tree not above the initrd");
            Assert.True(l.DtbStart >= l.ImageEnd, "device tree not above the image");
            Assert.Equal(Room, l.DtbEnd - l.DtbStart);
            Assert.True(l.DtbEnd <= ramEnd, "device tree past the end of RAM");
        }

        private static GuestImageInfo Describe(byte[] file, GuestKind kind, ulong ramSize = Size)
        {
            var segments = new GuestSegment[8];
            Assert.Equal(GuestImageStatus.Ok, GuestImage.Describe(file, kind, Ram, ramSize, segments, out GuestImageInfo info));
            return info;
        }

        private static byte[] LinuxImage(ulong imageSize)
        {
            var file = new byte[4096];
            BitConverter.GetBytes(imageSize).CopyTo(file, 16);
            file[56] = (byte)'A'; file[57] = (byte)'R'; file[58] = (byte)'M'; file[59] = 0x64;
            return file;
        }

        [Fact]
        public void ArmImageThenInitrdAtHalfOfRamThenTheTreeOnTheNext2MiB()
        {
            GuestImageInfo image = Describe(LinuxImage(10 * MiB), GuestKind.LinuxImage);
            Assert.Equal(Ram + 2 * MiB, image.LoadStart);
            Assert.Equal(BootLayoutStatus.Ok, Place(image.LoadStart, image.LoadEnd, 300 * 1024 + 123, out var l));
            AssertSound(l, Size, 300 * 1024 + 123);
            Assert.Equal(Ram + 32 * MiB, l.InitrdStart);
            Assert.Equal(Ram + 34 * MiB, l.DtbStart);
        }

        [Fact]
        public void RawImageWithoutInitrdHasItsTreeWhereTheInitrdWouldStart()
        {
            GuestImageInfo image = Describe(new byte[100000], GuestKind.Raw);
            Assert.Equal(Ram + 0x80000, image.LoadStart);
            Assert.Equal(BootLayoutStatus.Ok, Place(image.LoadStart, image.LoadEnd, 0, out var l));
            AssertSound(l, Size, 0);
            Assert.Equal(l.InitrdStart, l.InitrdEnd);
            Assert.Equal(Ram + 32 * MiB, l.DtbStart);
        }

        [Fact]
        public void ElfGoesAboveItsHighestSegment()
        {
            byte[] elf = File.ReadAllBytes(GuestImageTests.BuildElf());
            GuestImageInfo image = Describe(elf, GuestKind.Elf);
            Assert.Equal(BootLayoutStatus.Ok, Place(image.LoadStart, image.LoadEnd, 5000, out var l));
            AssertSound(l, Size, 5000);
            Assert.Equal(Ram + 32 * MiB, l.InitrdStart);

            // Linked near the top of RAM: the initrd and the tree follow it.
            elf = File.ReadAllBytes(GuestImageTests.BuildElf(textAt: "0x43000000"));
            image = Describe(elf, GuestKind.Elf);
            Assert.Equal(BootLayoutStatus.Ok, Place(image.LoadStart, image.LoadEnd, 5000, out l));
            AssertSound(l, Size, 5000);
            Assert.Equal((image.LoadEnd + 0xfff) & ~0xfffUL, l.InitrdStart);
            Assert.True(l.DtbStart >= l.InitrdEnd && l.DtbStart - l.InitrdEnd < 2 * MiB);
        }

        [Fact]
        public void LargeRamPutsTheInitrdAt128MiB()
        {
            Assert.Equal(BootLayoutStatus.Ok, Place(Ram + 2 * MiB, Ram + 40 * MiB, 20 * MiB, out var l, ramSize: 512 * MiB));
            AssertSound(l, 512 * MiB, 20 * MiB);
            Assert.Equal(Ram + 128 * MiB, l.InitrdStart);
            Assert.Equal(Ram + 148 * MiB, l.DtbStart);
            // An image reaching past 128 MiB pushes it up to its first free page.
            Assert.Equal(BootLayoutStatus.Ok, Place(Ram + 2 * MiB, Ram + 200 * MiB + 1, 20 * MiB, out l, ramSize: 512 * MiB));
            Assert.Equal(Ram + 200 * MiB + 0x1000, l.InitrdStart);
        }

        [Fact]
        public void AnInitrdTooBigForHalfOfRamMovesDownToTheImage()
        {
            ulong imageEnd = Ram + 3 * MiB + 5;
            ulong initrd = Size - 3 * MiB - 0x1000 - Room;          // exactly what is left
            Assert.Equal(BootLayoutStatus.Ok, Place(Ram + 0x80000, imageEnd, initrd, out var l));
            AssertSound(l, Size, initrd);
            Assert.Equal(Ram + 3 * MiB + 0x1000, l.InitrdStart);
            Assert.Equal(Ram + Size - Room, l.DtbStart);              // no 2 MiB boundary had room
            Assert.Equal(BootLayoutStatus.DtbDoesNotFit, Place(Ram + 0x80000, imageEnd, initrd + 1, out l));
            Assert.Equal(0UL, l.DtbStart);
            ulong room = Size - 3 * MiB - 0x1000;
            Assert.Equal(BootLayoutStatus.DtbDoesNotFit, Place(Ram + 0x80000, imageEnd, room, out _));
            Assert.Equal(BootLayoutStatus.InitrdDoesNotFit, Place(Ram + 0x80000, imageEnd, room + 1, out _));
        }

        [Fact]
        public void AnImageFillingRamLeavesNoRoomForTheTree()
        {
            Assert.Equal(BootLayoutStatus.Ok, Place(Ram, Ram + Size - Room, 0, out var l));
            Assert.Equal(Ram + Size - Room, l.DtbStart);
            Assert.Equal(BootLayoutStatus.DtbDoesNotFit, Place(Ram, Ram + Size - Room + 1, 0, out _));
            Assert.Equal(BootLayoutStatus.DtbDoesNotFit, Place(Ram, Ram + Size, 0, out _));
            Assert.Equal(BootLayoutStatus.InitrdDoesNotFit, Place(Ram, Ram + Size, 1, out _));
        }

        [Fact]
        public void TooSmallRamAndBadInputsAreRefused()
        {
            Assert.Equal(BootLayoutStatus.InitrdLargerThanRam, Place(Ram, Ram + 0x1000, Size + 1, out _));
            Assert.Equal(BootLayoutStatus.InitrdLargerThanRam, Place(Ram, Ram + 0x1000, ulong.MaxValue, out _));
            Assert.Equal(BootLayoutStatus.DtbDoesNotFit, Place(Ram, Ram + 0x1000, 0, out _, ramSize: Room));
            Assert.Equal(BootLayoutStatus.DtbDoesNotFit, Place(Ram, Ram, 0, out _, ramSize: Room - 1));
            Assert.Equal(BootLayoutStatus.Ok, Place(Ram, Ram, 0, out var l, ramSize: Room));
            Assert.Equal(Ram, l.DtbStart);
            Assert.Equal(BootLayoutStatus.ImageOutsideRam, Place(Ram - 1, Ram + 0x1000, 0, out _));
            Assert.Equal(BootLayoutStatus.ImageOutsideRam, Place(Ram, Ram + Size + 1, 0, out _));
            Assert.Equal(BootLayoutStatus.ImageOutsideRam, Place(Ram + 0x2000, Ram + 0x1000, 0, out _));
            Assert.Equal(BootLayoutStatus.ImageOutsideRam, Place(Ram, Ram + 0x1000, 0, out _, ramSize: ulong.MaxValue));
            // The largest RAM that does not wrap: no sum overflows.
            ulong huge = ulong.MaxValue - Ram;
            Assert.Equal(BootLayoutStatus.Ok, BootLayout.Place(Ram, huge, Ram, Ram + (huge & ~0xfffUL) - 0x20000, 3, Room, out l));
            Assert.True(l.DtbEnd <= Ram + huge && l.DtbStart >= l.InitrdEnd);
            Assert.Equal(BootLayoutStatus.InitrdDoesNotFit, BootLayout.Place(Ram, huge, Ram, ulong.MaxValue, 3, Room, out _));
        }

        // Accepted exactly when the tightest packing fits (image, its page
        // rounding, the initrd, a page rounding, the tree's room); every
        // accepted layout sound.
        [Fact]
        public void RandomLayoutsAreSoundAndRefusedOnlyWhenNothingFits()
        {
            var random = new Random(14);
            for (int i = 0; i < 20000; i++)
            {
                ulong ramSize = (ulong)random.Next(1, 600) * 0x1000 * (ulong)random.Next(1, 300);
                ulong start = Ram + (ulong)(random.NextDouble() * ramSize);
                ulong end = start + (ulong)(random.NextDouble() * (Ram + ramSize - start));
                ulong initrd = random.Next(4) == 0 ? 0 : (ulong)(random.NextDouble() * ramSize);
                BootLayoutStatus status = BootLayout.Place(Ram, ramSize, start, end, initrd, Room, out var l);
                ulong tight = Up(Up(end - Ram) + initrd) + Room;
                if (status == BootLayoutStatus.Ok)
                {
                    AssertSound(l, ramSize, initrd);
                    Assert.True(tight <= ramSize);
                }
                else
                {
                    Assert.True(tight > ramSize, $"refused ({status}) though it fits: ram={ramSize:x} image={start:x}-{end:x} initrd={initrd:x}");
                }
                Assert.Equal(status, BootLayout.Place(Ram, ramSize, start, end, initrd, Room, out var again));
                Assert.Equal(l, again);                              // the same answer at every reset
            }
        }

        private static ulong Up(ulong v) => (v + 0xfff) & ~0xfffUL;

        [Fact]
        public void MessagesNameTheProblem()
        {
            Assert.Equal("initrd does not fit in RAM above the image: ", BootLayout.Message(BootLayoutStatus.InitrdDoesNotFit));
            Assert.Equal("initrd larger than the VM's RAM: ", BootLayout.Message(BootLayoutStatus.InitrdLargerThanRam));
            Assert.Contains("device tree", BootLayout.Message(BootLayoutStatus.DtbDoesNotFit));
        }
    }
}
