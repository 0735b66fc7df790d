using Hypervisor.Tests.Support;
using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Text.RegularExpressions;
using Hypervisor.Boot;
using Xunit;

namespace Hypervisor.Tests.Unit
{
    public class GuestImageTests
    {
        private const ulong RamBase = 0x40000000;
        private const ulong RamSize = 64UL << 20;

        private const string Source = @"
    .text
    .globl _start
    .globl later
    mov x1, #2          // the entry is not the first instruction
_start:
    mov x0, #1
later:
    b .
    .data
    .quad 0x1122334455667788
    .bss
    .space 8192
";

        // A tiny guest assembled and linked now. text and data are placed with
        // a linker script (ld.lld otherwise adds a header segment at 0x200000);
        // textAt/loadAt let virtual and physical addresses differ.
        internal static string BuildElf(string textAt = "0x40080000", string loadAt = null)
        {
            string dir = Scratch.NewDirectory("elf");
            File.WriteAllText(Path.Combine(dir, "t.s"), Source);
            string at = loadAt == null ? "" : $"AT({loadAt})";
            File.WriteAllText(Path.Combine(dir, "t.ld"), $@"ENTRY(_start)
SECTIONS {{
  . = {textAt};
  .text : {at} {{ *(.text*) }}
  . = ALIGN(4096);
  .data : {{ *(.data*) }}
  .bss : {{ *(.bss*) }}
}}");
            Run(dir, "aarch64-linux-gnu-as", "-o", "t.o", "t.s");
            Run(dir, "ld.lld", "-T", "t.ld", "-o", "t.elf", "t.o");
            return Path.Combine(dir, "t.elf");
        }

        private static string Run(string dir, string tool, params string[] args)
        {
            var psi = new ProcessStartInfo(tool) { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in args) psi.ArgumentList.Add(a);
            using var p = Process.Start(psi);
            var stdout = p.StandardOutput.ReadToEndAsync();
            string err = p.StandardError.ReadToEnd();
            Assert.True(p.WaitForExit(30000), tool + " hung");
            Assert.True(p.ExitCode == 0, $"{tool} failed: {err}");
            return stdout.Result;
        }

        private static GuestImageStatus Describe(byte[] file, GuestKind kind, out GuestImageInfo info, out GuestSegment[] segments,
                                                 ulong ramBase = RamBase, ulong ramSize = RamSize, int capacity = 8)
        {
            segments = new GuestSegment[capacity];
            return GuestImage.Describe(file, kind, ramBase, ramSize, segments, out info);
        }

        private static ulong Hex(string s) => ulong.Parse(s.Substring(2), NumberStyles.HexNumber);

        [Fact]
        public void ElfSegmentsMatchWhatReadelfSays()
        {
            string path = BuildElf();
            byte[] file = File.ReadAllBytes(path);
            Assert.Equal(GuestKind.Elf, GuestImage.Detect(file));
            Assert.Equal(GuestImageStatus.Ok, Describe(file, GuestKind.Unspecified, out var info, out var segments));
            Assert.Equal(GuestKind.Elf, info.Kind);

            string readelf = Run(Path.GetDirectoryName(path), "aarch64-linux-gnu-readelf", "-lhsW", "t.elf");
            var loads = Regex.Matches(readelf, @"LOAD\s+(0x\w+)\s+(0x\w+)\s+(0x\w+)\s+(0x\w+)\s+(0x\w+)");
            Assert.Equal(loads.Count, info.SegmentCount);
            for (int i = 0; i < loads.Count; i++)
            {
                Assert.Equal(Hex(loads[i].Groups[1].Value), segments[i].FileOffset);
                Assert.Equal(Hex(loads[i].Groups[3].Value), segments[i].PhysicalAddress);
                Assert.Equal(Hex(loads[i].Groups[4].Value), segments[i].FileSize);
                Assert.Equal(Hex(loads[i].Groups[5].Value), segments[i].MemorySize);
            }
            ulong start = Hex("0x" + Regex.Match(readelf, @"([0-9a-f]{16})\s+\d+\s+NOTYPE\s+GLOBAL\s+DEFAULT\s+\d+\s+_start\b").Groups[1].Value);
            Assert.Equal(0x40080004UL, start);
            Assert.Equal(start, info.Entry);
            Assert.Equal(0x40080000UL, info.LoadStart);
            Assert.Equal(segments[1].PhysicalAddress + segments[1].MemorySize, info.LoadEnd);
            Assert.True(segments[1].MemorySize > segments[1].FileSize);        // .bss
            // The data segment's bytes in the file are the .quad.
            Assert.Equal(0x1122334455667788UL, BinaryPrimitives.ReadUInt64LittleEndian(file.AsSpan((int)segments[1].FileOffset)));
        }

        [Fact]
        public void EntryIsTranslatedToItsPhysicalAddress()
        {
            byte[] file = File.ReadAllBytes(BuildElf(textAt: "0xffff000000080000", loadAt: "0x40080000"));
            Assert.Equal(GuestImageStatus.Ok, Describe(file, GuestKind.Elf, out var info, out var segments));
            Assert.Equal(0x40080000UL, segments[0].PhysicalAddress);
            Assert.Equal(0x40080004UL, info.Entry);
        }

        [Fact]
        public void ElfOutsideRamIsRefused()
        {
            byte[] file = File.ReadAllBytes(BuildElf());
            // RAM ends before .bss does.
            Assert.Equal(GuestImageStatus.SegmentOutsideRam, Describe(file, GuestKind.Elf, out _, out _, ramSize: 0x81000 + 0x1000));
            // RAM starts above the image.
            Assert.Equal(GuestImageStatus.SegmentOutsideRam, Describe(file, GuestKind.Elf, out _, out _, ramBase: 0x80000000));
            Assert.Equal(GuestImageStatus.TooManySegments, Describe(file, GuestKind.Elf, out _, out _, capacity: 1));
        }

        // Field patches on a real ELF, each with its own status: (what, where,
        // offset, width in bytes, value, expected). Where is the ELF header, or
        // the first or second program header (text, data + bss); program header
        // fields: 0 p_type, 8 p_offset, 16 p_vaddr, 24 p_paddr, 32 p_filesz, 40 p_memsz.
        public static IEnumerable<object[]> HostileElves()
        {
            const int Header = -1, Text = 0, Data = 1;
            yield return new object[] { "32-bit class", Header, 4, 1, 1UL, GuestImageStatus.NotElf64 };
            yield return new object[] { "big-endian", Header, 5, 1, 2UL, GuestImageStatus.NotLittleEndian };
            yield return new object[] { "x86-64", Header, 18, 2, 62UL, GuestImageStatus.WrongMachine };
            yield return new object[] { "shared object", Header, 16, 2, 3UL, GuestImageStatus.NotExecutable };
            yield return new object[] { "phentsize", Header, 54, 2, 32UL, GuestImageStatus.BadProgramHeaders };
            yield return new object[] { "phoff past end", Header, 32, 8, 0xffffffffffffff00UL, GuestImageStatus.BadProgramHeaders };
            yield return new object[] { "phnum huge", Header, 56, 2, 0xffffUL, GuestImageStatus.BadProgramHeaders };
            yield return new object[] { "entry nowhere", Header, 24, 8, 0x40000000UL, GuestImageStatus.EntryNotLoaded };
            yield return new object[] { "p_offset past end", Text, 8, 8, 0x7fffffffUL, GuestImageStatus.SegmentOutsideFile };
            yield return new object[] { "p_offset wraps", Text, 8, 8, 0xfffffffffffffffcUL, GuestImageStatus.SegmentOutsideFile };
            yield return new object[] { "p_filesz past end", Data, 32, 8, 0x100000UL, GuestImageStatus.SegmentOutsideFile };
            yield return new object[] { "p_filesz > p_memsz", Text, 40, 8, 4UL, GuestImageStatus.BadSegment };
            yield return new object[] { "p_paddr outside RAM", Text, 24, 8, 0x10000000UL, GuestImageStatus.SegmentOutsideRam };
            yield return new object[] { "p_paddr wraps", Data, 24, 8, 0xfffffffffffff000UL, GuestImageStatus.SegmentOutsideRam };
            yield return new object[] { "p_memsz huge", Data, 40, 8, 0xffffffffffffff00UL, GuestImageStatus.SegmentOutsideRam };
            yield return new object[] { "overlap", Data, 24, 8, 0x40080000UL, GuestImageStatus.SegmentsOverlap };
            yield return new object[] { "no PT_LOAD", Header, 0, 0, 0UL, GuestImageStatus.NoLoadableSegments };
        }

        [Theory]
        [MemberData(nameof(HostileElves))]
        public void HostileElfFieldsAreRefused(string what, int where, int offset, int width, ulong value, GuestImageStatus expected)
        {
            byte[] file = File.ReadAllBytes(BuildElf());
            int phoff = (int)BinaryPrimitives.ReadUInt64LittleEndian(file.AsSpan(32));
            int phnum = BinaryPrimitives.ReadUInt16LittleEndian(file.AsSpan(56));
            int at = (where < 0 ? 0 : phoff + where * 56) + offset;
            if (what == "no PT_LOAD")
            {
                for (int i = 0; i < phnum; i++)
                    if (BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(phoff + i * 56)) == 1)
                        BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(phoff + i * 56), 6);   // PT_PHDR
            }
            else if (width == 1) file[at] = (byte)value;
            else if (width == 2) BinaryPrimitives.WriteUInt16LittleEndian(file.AsSpan(at), (ushort)value);
            else BinaryPrimitives.WriteUInt64LittleEndian(file.AsSpan(at), value);
            Assert.Equal(expected, Describe(file, GuestKind.Unspecified, out _, out _));
            Assert.NotEmpty(GuestImage.Message(expected));
        }

        [Fact]
        public void TruncatedElfIsRefusedAtEveryLength()
        {
            byte[] file = File.ReadAllBytes(BuildElf());
            Assert.Equal(GuestImageStatus.Truncated, Describe(file[..40], GuestKind.Unspecified, out _, out _));
            Assert.Equal(GuestImageStatus.Truncated, Describe(file[..3], GuestKind.Elf, out _, out _));
            Assert.Equal(GuestImageStatus.Empty, Describe(Array.Empty<byte>(), GuestKind.Elf, out _, out _));
            for (int length = 1; length < file.Length; length += length < 300 ? 1 : 509)
            {
                var status = Describe(file[..length], GuestKind.Elf, out var info, out var segments);
                if (status == GuestImageStatus.Ok)
                    for (int i = 0; i < info.SegmentCount; i++)
                        Assert.True(segments[i].FileOffset + segments[i].FileSize <= (ulong)length);
            }
        }

        [Fact]
        public void RandomCorruptionNeverReadsOutsideTheFile()
        {
            byte[] original = File.ReadAllBytes(BuildElf());
            int phoff = (int)BinaryPrimitives.ReadUInt64LittleEndian(original.AsSpan(32));
            var rng = new Random(77);
            for (int round = 0; round < 20000; round++)
            {
                var file = (byte[])original.Clone();
                for (int f = 0; f < 1 + rng.Next(4); f++)
                    file[rng.Next(phoff + 2 * 56)] = (byte)rng.Next(256);    // ELF header and program headers
                Describe(file, GuestKind.Unspecified, out _, out _, capacity: 1 + rng.Next(3));
            }
        }

        private static byte[] LinuxImage(ulong textOffset, ulong imageSize, ulong flags, int length = 4096)
        {
            var file = new byte[length];
            BinaryPrimitives.WriteUInt32LittleEndian(file, 0x14000010);        // b +64: code0 jumps over the header
            BinaryPrimitives.WriteUInt64LittleEndian(file.AsSpan(8), textOffset);
            BinaryPrimitives.WriteUInt64LittleEndian(file.AsSpan(16), imageSize);
            BinaryPrimitives.WriteUInt64LittleEndian(file.AsSpan(24), flags);
            file[56] = (byte)'A'; file[57] = (byte)'R'; file[58] = (byte)'M'; file[59] = 0x64;
            return file;
        }

        [Fact]
        public void LinuxImageLoadsAtTextOffsetIntoRamOrTwoMegabytesUpWhenItIsBelowAPage()
        {
            byte[] file = LinuxImage(0, 0x20000, 0xa);
            Assert.Equal(GuestKind.LinuxImage, GuestImage.Detect(file));
            Assert.Equal(GuestImageStatus.Ok, Describe(file, GuestKind.Unspecified, out var info, out var segments));
            Assert.Equal(GuestKind.LinuxImage, info.Kind);
            Assert.Equal(1, info.SegmentCount);
            Assert.Equal(0x40200000UL, info.Entry);
            Assert.Equal(0x40200000UL, segments[0].PhysicalAddress);
            Assert.Equal(4096UL, segments[0].FileSize);
            Assert.Equal(0x20000UL, segments[0].MemorySize);                   // image_size covers .bss
            Assert.Equal(0x40220000UL, info.LoadEnd);

            // text_offset is honoured from the start of RAM, as QEMU does;
            // below a page it goes 2 MiB up; RAM not 2 MiB aligned is rounded up first.
            Describe(LinuxImage(0x80000, 0x20000, 0xa), GuestKind.LinuxImage, out info, out _);
            Assert.Equal(0x40080000UL, info.Entry);
            Describe(LinuxImage(0xfff, 0x20000, 0xa), GuestKind.LinuxImage, out info, out _);
            Assert.Equal(0x40200fffUL, info.Entry);
            Describe(LinuxImage(0x1000, 0x20000, 0xa), GuestKind.LinuxImage, out info, out _);
            Assert.Equal(0x40001000UL, info.Entry);
            Describe(file, GuestKind.LinuxImage, out info, out _, ramBase: 0x40100000);
            Assert.Equal(0x40400000UL, info.Entry);
            Describe(LinuxImage(0x80000, 0x20000, 0xa), GuestKind.LinuxImage, out info, out _, ramBase: 0x40100000);
            Assert.Equal(0x40280000UL, info.Entry);
            // image_size 0: an old kernel, text_offset 0x80000 whatever the field says.
            Describe(LinuxImage(0x1234, 0, 0), GuestKind.LinuxImage, out info, out segments);
            Assert.Equal(0x40080000UL, info.Entry);
            Assert.Equal(4096UL, segments[0].MemorySize);
        }

        [Fact]
        public void HostileLinuxImagesAreRefused()
        {
            Assert.Equal(GuestImageStatus.BigEndianImage, Describe(LinuxImage(0, 0x20000, 1), GuestKind.Unspecified, out _, out _));
            Assert.Equal(GuestImageStatus.SegmentOutsideRam, Describe(LinuxImage(0, RamSize, 0), GuestKind.Unspecified, out _, out _));
            Assert.Equal(GuestImageStatus.SegmentOutsideRam, Describe(LinuxImage(0xfffffffffff00000, 0x1000, 0), GuestKind.Unspecified, out _, out _));
            Assert.Equal(GuestImageStatus.SegmentOutsideRam, Describe(LinuxImage(0, 0xffffffffffffff00, 0), GuestKind.Unspecified, out _, out _));
            Assert.Equal(GuestImageStatus.Truncated, Describe(LinuxImage(0, 0x1000, 0)[..60], GuestKind.LinuxImage, out _, out _));
            Assert.Equal(GuestImageStatus.NotLinuxImage, Describe(new byte[4096], GuestKind.LinuxImage, out _, out _));
            // A truncated header is not recognised, so it is taken for raw data.
            Assert.Equal(GuestKind.Raw, GuestImage.Detect(LinuxImage(0, 0x1000, 0)[..60]));
        }

        [Fact]
        public void RawDataLoadsAtHalfAMegabyte()
        {
            var file = new byte[1000];
            file[0] = 0x7f;                                                    // half an ELF magic is still raw
            Assert.Equal(GuestKind.Raw, GuestImage.Detect(file));
            Assert.Equal(GuestImageStatus.Ok, Describe(file, GuestKind.Unspecified, out var info, out var segments));
            Assert.Equal(GuestKind.Raw, info.Kind);
            Assert.Equal(0x40080000UL, info.Entry);
            Assert.Equal(0UL, segments[0].FileOffset);
            Assert.Equal(1000UL, segments[0].FileSize);
            Assert.Equal(1000UL, segments[0].MemorySize);
            Assert.Equal(GuestImageStatus.SegmentOutsideRam, Describe(file, GuestKind.Raw, out _, out _, ramSize: 0x80000 + 999));
            Assert.Equal(GuestImageStatus.Ok, Describe(file, GuestKind.Raw, out _, out _, ramSize: 0x80000 + 1000));
            // kind=raw wins over detection: an ELF file loaded as plain bytes.
            byte[] elf = File.ReadAllBytes(BuildElf());
            Assert.Equal(GuestImageStatus.Ok, Describe(elf, GuestKind.Raw, out info, out _));
            Assert.Equal(GuestKind.Raw, info.Kind);
            Assert.Equal(GuestImageStatus.NotElf, Describe(file, GuestKind.Elf, out _, out _));
        }
    }
}
