using Hypervisor.Tests.Support;
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Text;
using Hypervisor.Boot;
using Xunit;

namespace Hypervisor.Tests.Unit
{
    public class CpioTests
    {
        // Files with every name length modulo 4 and data length modulo 4, and an
        // empty one, so each padding rule is exercised.
        private static readonly (string Name, byte[] Data)[] Files =
        {
            ("vms.conf", Encoding.ASCII.GetBytes("vm a mem=64M image=guest.bin\n")),
            ("guest.bin", Pattern(4099, 1)),
            ("a", Pattern(1, 2)),
            ("ab", Pattern(2, 3)),
            ("abc", Array.Empty<byte>()),
            ("rootfs.cpio.gz", Pattern(70000, 4)),
        };

        private static byte[] Pattern(int length, int seed)
        {
            var data = new byte[length];
            new Random(seed).NextBytes(data);
            return data;
        }

        // The real tool, as scripts/mkbundle runs it.
        private static byte[] ArchiveWithCpioTool()
        {
            string dir = Scratch.NewDirectory("cpio");
            foreach (var (name, data) in Files) File.WriteAllBytes(Path.Combine(dir, name), data);
            string archive = Path.Combine(dir, "..", Path.GetFileName(dir) + ".cpio");
            var psi = new ProcessStartInfo("cpio") { WorkingDirectory = dir, RedirectStandardInput = true, RedirectStandardError = true };
            foreach (var a in new[] { "-o", "-H", "newc", "--quiet", "-O", archive }) psi.ArgumentList.Add(a);
            using var p = Process.Start(psi);
            foreach (var (name, _) in Files) p.StandardInput.Write(name + "\n");
            p.StandardInput.Close();
            string err = p.StandardError.ReadToEnd();
            Assert.True(p.WaitForExit(30000), "cpio hung");
            Assert.True(p.ExitCode == 0, "cpio failed: " + err);
            return File.ReadAllBytes(archive);
        }

        // The same format written here, to control every field.
        private static byte[] ArchiveByHand(IEnumerable<(string Name, byte[] Data)> files, string magic = "070701")
        {
            var output = new MemoryStream();
            void Member(string name, byte[] data, uint mode)
            {
                byte[] nameBytes = Encoding.ASCII.GetBytes(name + "\0");
                string header = magic + string.Concat(Array.ConvertAll(
                    new uint[] { 1, mode, 0, 0, 1, 0, (uint)data.Length, 0, 0, 0, 0, (uint)nameBytes.Length, 0 }, v => v.ToString("X8")));
                output.Write(Encoding.ASCII.GetBytes(header));
                output.Write(nameBytes);
                while (output.Length % 4 != 0) output.WriteByte(0);
                output.Write(data);
                while (output.Length % 4 != 0) output.WriteByte(0);
            }
            foreach (var (name, data) in files) Member(name, data, 0x81a4);
            Member("TRAILER!!!", Array.Empty<byte>(), 0);
            return output.ToArray();
        }

        private static void AssertHoldsAllFiles(byte[] archive)
        {
            foreach (var (name, data) in Files)
            {
                Assert.Equal(CpioStatus.Ok, Cpio.Find(archive, name, out var entry));
                Assert.True(entry.IsRegularFile);
                Assert.Equal(data, Cpio.EntryData(archive, entry).ToArray());
                Assert.Equal(name, Encoding.ASCII.GetString(Cpio.EntryName(archive, entry)));
                Assert.Equal(0, entry.DataOffset % 4);
                Assert.Equal(CpioStatus.Ok, Cpio.Find(archive, Encoding.ASCII.GetBytes(name), out var again));
                Assert.Equal(entry.DataOffset, again.DataOffset);
            }
            Assert.Equal(CpioStatus.NotFound, Cpio.Find(archive, "missing.bin", out _));
            Assert.Equal(CpioStatus.NotFound, Cpio.Find(archive, "vms.con", out _));
            Assert.Equal(CpioStatus.NotFound, Cpio.Find(archive, "TRAILER!!!", out _));
            Assert.Equal(CpioStatus.End, Cpio.Count(archive, out int count));
            Assert.Equal(Files.Length, count);
        }

        [Fact]
        public void FindsEveryFileInAnArchiveFromTheCpioTool() => AssertHoldsAllFiles(ArchiveWithCpioTool());

        [Fact]
        public void FindsEveryFileInAHandMadeArchive() => AssertHoldsAllFiles(ArchiveByHand(Files));

        [Fact]
        public void AcceptsTheChecksumVariantAndDotSlashNames()
        {
            byte[] archive = ArchiveByHand(new[] { ("./guest.bin", new byte[] { 9, 8, 7 }) }, "070702");
            Assert.Equal(CpioStatus.Ok, Cpio.Find(archive, "guest.bin", out var entry));
            Assert.Equal(new byte[] { 9, 8, 7 }, Cpio.EntryData(archive, entry).ToArray());
        }

        [Fact]
        public void IteratesByIndexInArchiveOrder()
        {
            byte[] archive = ArchiveWithCpioTool();
            for (int i = 0; i < Files.Length; i++)
            {
                Assert.Equal(CpioStatus.Ok, Cpio.EntryAt(archive, i, out var entry));
                Assert.Equal(Files[i].Name, Encoding.ASCII.GetString(Cpio.EntryName(archive, entry)));
            }
            Assert.Equal(CpioStatus.End, Cpio.EntryAt(archive, Files.Length, out _));
            Assert.Equal(CpioStatus.End, Cpio.EntryAt(archive, 1000, out _));
        }

        [Fact]
        public void EmptyArchiveHasOnlyTheTrailer()
        {
            byte[] archive = ArchiveByHand(Array.Empty<(string, byte[])>());
            Assert.Equal(CpioStatus.End, Cpio.Count(archive, out int count));
            Assert.Equal(0, count);
            Assert.Equal(CpioStatus.NotFound, Cpio.Find(archive, "vms.conf", out _));
        }

        [Fact]
        public void DamagedHeadersGiveTheirStatus()
        {
            byte[] good = ArchiveByHand(new[] { ("vms.conf", new byte[] { 1, 2, 3, 4, 5 }) });

            var badMagic = (byte[])good.Clone();
            badMagic[5] = (byte)'7';                                          // "070707": the old binary-ish odc format
            Assert.Equal(CpioStatus.BadMagic, Cpio.Find(badMagic, "vms.conf", out _));

            var nonHex = (byte[])good.Clone();
            nonHex[6 + 6 * 8 + 3] = (byte)'g';                                // inside filesize
            Assert.Equal(CpioStatus.BadHex, Cpio.Find(nonHex, "vms.conf", out _));
            nonHex = (byte[])good.Clone();
            nonHex[6 + 12 * 8 + 7] = (byte)' ';                               // inside check, an unused field
            Assert.Equal(CpioStatus.BadHex, Cpio.Find(nonHex, "vms.conf", out _));

            var noNul = (byte[])good.Clone();
            noNul[Cpio.HeaderSize + 8] = (byte)'x';                           // the name's NUL
            Assert.Equal(CpioStatus.BadName, Cpio.Find(noNul, "vms.conf", out _));

            var zeroName = (byte[])good.Clone();
            Encoding.ASCII.GetBytes("00000000").CopyTo(zeroName, 6 + 11 * 8);
            Assert.Equal(CpioStatus.BadName, Cpio.Find(zeroName, "vms.conf", out _));

            var hugeData = (byte[])good.Clone();
            Encoding.ASCII.GetBytes("FFFFFFFF").CopyTo(hugeData, 6 + 6 * 8);
            Assert.Equal(CpioStatus.Truncated, Cpio.Find(hugeData, "vms.conf", out _));

            var hugeName = (byte[])good.Clone();
            Encoding.ASCII.GetBytes("FFFFFFFF").CopyTo(hugeName, 6 + 11 * 8);
            Assert.Equal(CpioStatus.Truncated, Cpio.Find(hugeName, "vms.conf", out _));

            Assert.Equal(CpioStatus.Truncated, Cpio.Find(ReadOnlySpan<byte>.Empty, "vms.conf", out _));
            Assert.Equal(CpioStatus.Truncated, Cpio.ReadEntry(good, -1, out _));
            Assert.Equal(CpioStatus.Truncated, Cpio.ReadEntry(good, good.Length + 1, out _));
        }

        [Fact]
        public void EveryTruncationFailsCleanly()
        {
            byte[] archive = ArchiveWithCpioTool();
            // The tool pads the archive to 512-byte blocks; the trailer member
            // itself ends at the first 4-byte boundary after its name.
            Assert.Equal(CpioStatus.End, Cpio.EntryAt(archive, Files.Length, out var trailer));
            int trailerEnd = trailer.DataOffset;
            for (int length = 0; length < archive.Length; length += length < 2048 ? 1 : 37)
            {
                ReadOnlySpan<byte> prefix = archive.AsSpan(0, length);
                CpioStatus count = Cpio.Count(prefix, out _);
                Assert.Equal(length >= trailerEnd ? CpioStatus.End : CpioStatus.Truncated, count);
                CpioStatus find = Cpio.Find(prefix, "rootfs.cpio.gz", out var entry);
                if (find == CpioStatus.Ok) Assert.True(entry.DataOffset + entry.DataLength <= length);
            }
        }

        [Fact]
        public void RandomCorruptionNeverReadsOutsideTheArchive()
        {
            byte[] archive = ArchiveByHand(Files);
            var rng = new Random(4321);
            for (int round = 0; round < 20000; round++)
            {
                var copy = (byte[])archive.Clone();
                int flips = 1 + rng.Next(4);
                for (int f = 0; f < flips; f++)
                {
                    // Mostly in the headers, where damage matters.
                    int at = rng.Next(3) == 0 ? rng.Next(copy.Length) : HeaderByte(copy, rng);
                    copy[at] = rng.Next(2) == 0 ? (byte)rng.Next(256) : (byte)"0123456789abcdefF"[rng.Next(17)];
                }
                int length = rng.Next(4) == 0 ? rng.Next(copy.Length + 1) : copy.Length;
                ReadOnlySpan<byte> span = copy.AsSpan(0, length);
                // Any status is fine; an exception (out-of-range index) fails the test.
                Cpio.Count(span, out _);
                if (Cpio.Find(span, "guest.bin", out var entry) == CpioStatus.Ok)
                    Assert.True(entry.DataOffset >= 0 && entry.DataOffset + entry.DataLength <= length);
                for (int i = 0; i < 8; i++)
                    if (Cpio.EntryAt(span, i, out var e) == CpioStatus.Ok)
                        Assert.True(e.NameOffset + e.NameLength <= length && e.NextOffset <= length);
            }
        }

        // A byte inside one of the first few headers.
        private static int HeaderByte(byte[] archive, Random rng)
        {
            int offset = 0;
            int skip = rng.Next(Files.Length);
            for (int i = 0; i < skip; i++)
            {
                if (Cpio.ReadEntry(archive, offset, out var entry) != CpioStatus.Ok) break;
                offset = entry.NextOffset;
            }
            return Math.Min(archive.Length - 1, offset + rng.Next(Cpio.HeaderSize));
        }
    }
}
