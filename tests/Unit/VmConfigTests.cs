using System.Text;
using Hypervisor.Boot;
using Xunit;

namespace Hypervisor.Tests.Unit
{
    public class VmConfigTests
    {
        private sealed class Parsed
        {
            public byte[] Text;
            public VmSpec[] Vms;
            public VmConfigError[] Errors;
            public VmConfigResult Result;
            public HvSettings Hv;

            public string Str(TextRange r) => Encoding.ASCII.GetString(r.Of(Text));
            public VmConfigError OnlyError()
            {
                Assert.Equal(1, Result.ErrorCount);
                return Errors[0];
            }
        }

        private static Parsed Parse(string config, int vmCapacity = 16, int errorCapacity = 16)
        {
            var p = new Parsed { Text = Encoding.ASCII.GetBytes(config), Vms = new VmSpec[vmCapacity], Errors = new VmConfigError[errorCapacity] };
            p.Result = VmConfig.Parse(p.Text, p.Vms, p.Errors, out p.Hv);
            return p;
        }

        [Fact]
        public void ReadsTheDocumentedExample()
        {
            var p = Parse(
                "# comment; blank lines ignored\n" +
                "\n" +
                "hv  slice_ms=10 vmid_bits=16            # optional hypervisor settings line(s)\n" +
                "vm  a mem=256M image=guest.bin args=\"role=giver tests=all\"\n" +
                "vm  b mem=64M image=guest.elf kind=elf args=\"x\" paging=stage2 balloon=on cpus=1 initrd=rootfs.cpio.gz\n");
            Assert.Equal(0, p.Result.ErrorCount);
            Assert.Equal(2, p.Result.VmCount);
            Assert.Equal(10, p.Hv.SliceMs);
            Assert.Equal(16, p.Hv.VmidBits);

            VmSpec a = p.Vms[0];
            Assert.Equal(4, a.Line);
            Assert.Equal("a", p.Str(a.Name));
            Assert.Equal(256UL << 20, a.MemoryBytes);
            Assert.Equal("guest.bin", p.Str(a.Image));
            Assert.Equal("role=giver tests=all", p.Str(a.Args));
            Assert.Equal(GuestKind.Unspecified, a.Kind);
            Assert.Equal(PagingMode.Stage2, a.Paging);
            Assert.False(a.Balloon);
            Assert.Equal(1, a.Cpus);
            Assert.False(a.HasInitrd);
            Assert.Equal(0UL, a.BootBalloonBytes);
            Assert.Equal(VmConfig.UnlimitedResets, a.MaxResets);

            VmSpec b = p.Vms[1];
            Assert.Equal(5, b.Line);
            Assert.Equal("b", p.Str(b.Name));
            Assert.Equal(64UL << 20, b.MemoryBytes);
            Assert.Equal(GuestKind.Elf, b.Kind);
            Assert.Equal("x", p.Str(b.Args));
            Assert.True(b.Balloon);
            Assert.True(b.HasInitrd);
            Assert.Equal("rootfs.cpio.gz", p.Str(b.Initrd));
        }

        [Fact]
        public void ReadsEveryKeyAndValue()
        {
            var p = Parse("vm big_vm-2 mem=1G image=Image kind=image paging=shadow balloon=off cpus=8 boot_balloon=512M args=quiet\r\n" +
                          "vm r mem=4096 image=r.bin kind=raw paging=direct args=\"\"\t# tabs and CRLF\r\n" +
                          "vm k\tmem=8k image=k initrd=i backing=blocks");
            Assert.Equal(0, p.Result.ErrorCount);
            Assert.Equal(3, p.Result.VmCount);
            Assert.Equal("big_vm-2", p.Str(p.Vms[0].Name));
            Assert.Equal(1UL << 30, p.Vms[0].MemoryBytes);
            Assert.Equal(GuestKind.LinuxImage, p.Vms[0].Kind);
            Assert.Equal(PagingMode.Shadow, p.Vms[0].Paging);
            Assert.Equal(8, p.Vms[0].Cpus);
            Assert.Equal(512UL << 20, p.Vms[0].BootBalloonBytes);
            Assert.Equal("quiet", p.Str(p.Vms[0].Args));
            Assert.Equal(4096UL, p.Vms[1].MemoryBytes);
            Assert.Equal(GuestKind.Raw, p.Vms[1].Kind);
            Assert.Equal(PagingMode.Direct, p.Vms[1].Paging);
            Assert.True(p.Vms[1].Args.IsEmpty);
            Assert.Equal(8192UL, p.Vms[2].MemoryBytes);
            Assert.Equal("i", p.Str(p.Vms[2].Initrd));
            Assert.Equal(RamBacking.Blocks, p.Vms[2].Backing);
            Assert.Equal(RamBacking.Pages, p.Vms[0].Backing);   // the default
            // Defaults when no hv line is given.
            Assert.Equal(VmConfig.DefaultSliceMs, p.Hv.SliceMs);
            Assert.Equal(0, p.Hv.VmidBits);
        }

        [Fact]
        public void EmptyAndCommentOnlyConfigsHaveNoVms()
        {
            foreach (string text in new[] { "", "\n\n", "# only a comment", "   \t  \r\n  # indented comment\n" })
            {
                var p = Parse(text);
                Assert.Equal(0, p.Result.VmCount);
                Assert.Equal(0, p.Result.ErrorCount);
            }
        }

        [Theory]
        [InlineData("vm a mem=64M image=g foo=1", VmConfigErrorKind.UnknownKey, "foo")]
        [InlineData("hv slice_ms=5 foo=1", VmConfigErrorKind.UnknownKey, "foo")]
        [InlineData("vm a image=g", VmConfigErrorKind.MissingMem, "")]
        [InlineData("vm a mem=64M", VmConfigErrorKind.MissingImage, "")]
        [InlineData("vm a mem=64X image=g", VmConfigErrorKind.BadSize, "64X")]
        [InlineData("vm a mem=0 image=g", VmConfigErrorKind.BadSize, "0")]
        [InlineData("vm a mem=1000 image=g", VmConfigErrorKind.BadSize, "1000")]
        [InlineData("vm a mem=M image=g", VmConfigErrorKind.BadSize, "M")]
        [InlineData("vm a mem=64MB image=g", VmConfigErrorKind.BadSize, "64MB")]
        [InlineData("vm a mem=99999999999999999999 image=g", VmConfigErrorKind.BadSize, "99999999999999999999")]
        [InlineData("vm a mem=17179869184G image=g", VmConfigErrorKind.BadSize, "17179869184G")]
        [InlineData("vm a mem=64M image=g args=\"x y", VmConfigErrorKind.UnterminatedQuote, "\"x y")]
        [InlineData("vm a mem=64M image=g args=\"x\"y", VmConfigErrorKind.TrailingGarbage, "y")]
        [InlineData("vm a mem=64M image=g args=x\"y", VmConfigErrorKind.StrayQuote, "x\"y")]
        [InlineData("vm a mem=64M image=g stray", VmConfigErrorKind.ExpectedKeyValue, "stray")]
        [InlineData("vm a mem=64M image=g =x", VmConfigErrorKind.ExpectedKeyValue, "=x")]
        [InlineData("vm a mem=64M image=", VmConfigErrorKind.EmptyValue, "image")]
        [InlineData("vm a mem=64M image=\"\"", VmConfigErrorKind.EmptyValue, "image")]
        [InlineData("vm a mem=64M image=g image=h", VmConfigErrorKind.DuplicateKey, "image")]
        [InlineData("vm", VmConfigErrorKind.MissingName, "")]
        [InlineData("vm   # no name", VmConfigErrorKind.MissingName, "")]
        [InlineData("vm mem=64M image=g", VmConfigErrorKind.MissingName, "mem=64M")]
        [InlineData("vm Big mem=64M image=g", VmConfigErrorKind.BadName, "Big")]
        [InlineData("vm abcdefghijklmnop mem=64M image=g", VmConfigErrorKind.BadName, "abcdefghijklmnop")]
        [InlineData("vm a.b mem=64M image=g", VmConfigErrorKind.BadName, "a.b")]
        [InlineData("vm a mem=64M image=g kind=exe", VmConfigErrorKind.BadChoice, "exe")]
        [InlineData("vm a mem=64M image=g paging=nested", VmConfigErrorKind.BadChoice, "nested")]
        [InlineData("vm a mem=64M image=g balloon=yes", VmConfigErrorKind.BadChoice, "yes")]
        [InlineData("vm a mem=64M image=g cpus=0", VmConfigErrorKind.BadNumber, "0")]
        [InlineData("vm a mem=64M image=g cpus=9", VmConfigErrorKind.BadNumber, "9")]
        [InlineData("vm a mem=64M image=g cpus=two", VmConfigErrorKind.BadNumber, "two")]
        [InlineData("vm a mem=64M image=g boot_balloon=64M", VmConfigErrorKind.BootBalloonTooLarge, "64M")]
        [InlineData("vm a mem=64M image=g boot_balloon=3", VmConfigErrorKind.BadSize, "3")]
        [InlineData("vm a mem=64M image=g resets=-1", VmConfigErrorKind.BadNumber, "-1")]
        [InlineData("vm a mem=64M image=g resets=1000001", VmConfigErrorKind.BadNumber, "1000001")]
        [InlineData("vm a mem=64M image=g resets=9999999999", VmConfigErrorKind.BadNumber, "9999999999")]
        [InlineData("vm a mem=64M image=g resets=many", VmConfigErrorKind.BadNumber, "many")]
        [InlineData("vm a mem=64M image=g resets=3x", VmConfigErrorKind.BadNumber, "3x")]
        [InlineData("vm a mem=64M image=g resets=", VmConfigErrorKind.EmptyValue, "resets")]
        [InlineData("vm a mem=64M image=g resets=1 resets=2", VmConfigErrorKind.DuplicateKey, "resets")]
        [InlineData("hv resets=1", VmConfigErrorKind.UnknownKey, "resets")]
        [InlineData("vm a mem=64M image=g fault_around=0", VmConfigErrorKind.BadNumber, "0")]
        [InlineData("vm a mem=64M image=g fault_around=3", VmConfigErrorKind.BadNumber, "3")]    // windows are powers of two
        [InlineData("vm a mem=64M image=g fault_around=128", VmConfigErrorKind.BadNumber, "128")]
        [InlineData("vm a mem=64M image=g fault_around=1 fault_around=2", VmConfigErrorKind.DuplicateKey, "fault_around")]
        [InlineData("vm a mem=64M image=g backing=huge", VmConfigErrorKind.BadChoice, "huge")]
        [InlineData("vm a mem=64M image=g backing=pages backing=blocks", VmConfigErrorKind.DuplicateKey, "backing")]
        [InlineData("hv vmid_bits=17", VmConfigErrorKind.BadNumber, "17")]
        [InlineData("hv slice_ms=0", VmConfigErrorKind.BadNumber, "0")]
        [InlineData("hv slice_ms=1 slice_ms=2", VmConfigErrorKind.DuplicateKey, "slice_ms")]
        [InlineData("vms a mem=64M image=g", VmConfigErrorKind.UnknownLineKind, "vms")]
        public void ReportsEachErrorWithLineAndToken(string line, VmConfigErrorKind kind, string token)
        {
            // The bad line is line 3; a good VM before and after it still counts.
            var p = Parse("# header\nvm first mem=64M image=g\n" + line + "\nvm last mem=64M image=g\n");
            VmConfigError error = p.OnlyError();
            Assert.Equal(3, error.Line);
            Assert.Equal(kind, error.Kind);
            Assert.Equal(token, p.Str(error.Token));
            Assert.NotEmpty(VmConfig.Message(kind));
            Assert.Equal(2, p.Result.VmCount);
            Assert.Equal("first", p.Str(p.Vms[0].Name));
            Assert.Equal("last", p.Str(p.Vms[1].Name));
            Assert.Equal(4, p.Vms[1].Line);
        }

        [Theory]
        [InlineData("resets=0", 0)]              // the first SYSTEM_RESET already stops the VM
        [InlineData("resets=1", 1)]
        [InlineData("resets=007", 7)]
        [InlineData("resets=1000000", 1000000)]
        [InlineData("", -1)]                     // absent: unlimited
        public void ReadsTheResetsLimit(string key, int expected)
        {
            var p = Parse("vm a mem=64M image=g " + key + " args=x\nvm b mem=64M image=g\n");
            Assert.Equal(0, p.Result.ErrorCount);
            Assert.Equal(2, p.Result.VmCount);
            Assert.Equal(expected, p.Vms[0].MaxResets);
            Assert.Equal(VmConfig.UnlimitedResets, p.Vms[1].MaxResets);
        }

        [Theory]
        [InlineData("fault_around=1", 1)]
        [InlineData("fault_around=16", 16)]
        [InlineData("fault_around=64", 64)]
        [InlineData("", 1)]                      // absent: one page per fault
        public void ReadsTheFaultAroundWindow(string key, int expected)
        {
            var p = Parse("vm a mem=64M image=g " + key + "\nvm b mem=64M image=g\n");
            Assert.Equal(0, p.Result.ErrorCount);
            Assert.Equal(expected, p.Vms[0].FaultAround);
            Assert.Equal(1, p.Vms[1].FaultAround);
        }

        [Fact]
        public void BadHvLineChangesNoSetting()
        {
            var p = Parse("hv slice_ms=20\nhv slice_ms=30 vmid_bits=99\n");
            Assert.Equal(2, p.OnlyError().Line);
            Assert.Equal(20, p.Hv.SliceMs);
            Assert.Equal(0, p.Hv.VmidBits);
        }

        [Fact]
        public void SecondVmWithTheSameNameIsRejected()
        {
            var p = Parse("vm a mem=64M image=one\nvm b mem=64M image=two\nvm a mem=128M image=three\n");
            VmConfigError error = p.OnlyError();
            Assert.Equal(VmConfigErrorKind.DuplicateName, error.Kind);
            Assert.Equal(3, error.Line);
            Assert.Equal("a", p.Str(error.Token));
            Assert.Equal(2, p.Result.VmCount);
            Assert.Equal("one", p.Str(p.Vms[0].Image));
        }

        [Fact]
        public void VmsBeyondTheCapacityAreReported()
        {
            var text = new StringBuilder();
            for (int i = 0; i < VmConfig.MaxVms + 3; i++) text.Append($"vm v{i} mem=4K image=g\n");
            var p = Parse(text.ToString(), vmCapacity: 100, errorCapacity: 2);
            Assert.Equal(VmConfig.MaxVms, p.Result.VmCount);
            Assert.Equal(3, p.Result.ErrorCount);                 // counted even where not stored
            Assert.Equal(VmConfigErrorKind.TooManyVms, p.Errors[0].Kind);
            Assert.Equal(VmConfig.MaxVms + 1, p.Errors[0].Line);
            Assert.Equal(VmConfig.MaxVms + 2, p.Errors[1].Line);

            // A smaller span is a smaller cap.
            p = Parse("vm a mem=4K image=g\nvm b mem=4K image=g\n", vmCapacity: 1);
            Assert.Equal(1, p.Result.VmCount);
            Assert.Equal(VmConfigErrorKind.TooManyVms, p.OnlyError().Kind);
        }

        [Fact]
        public void QuotedArgsKeepHashAndEqualsSigns()
        {
            var p = Parse("vm a mem=64M image=g args=\"x=1 #not-a-comment\" # a comment\n");
            Assert.Equal(0, p.Result.ErrorCount);
            Assert.Equal("x=1 #not-a-comment", p.Str(p.Vms[0].Args));
        }

        [Fact]
        public void ManyErrorsOnManyLinesAreAllReported()
        {
            var p = Parse("vm a mem=1 image=g\nbogus\nvm ok mem=4K image=g\nhv x=1\nvm b\n");
            Assert.Equal(4, p.Result.ErrorCount);
            Assert.Equal(new[] { 1, 2, 4, 5 }, new[] { p.Errors[0].Line, p.Errors[1].Line, p.Errors[2].Line, p.Errors[3].Line });
            Assert.Equal(1, p.Result.VmCount);
            Assert.Equal(3, p.Vms[0].Line);
        }

        [Fact]
        public void RandomGarbageNeverReadsOutsideTheText()
        {
            var rng = new System.Random(99);
            const string alphabet = "vmh =\"#\n\r\tab0129KMGmemimageargskindcpus_-";
            for (int round = 0; round < 5000; round++)
            {
                var chars = new char[rng.Next(80)];
                for (int i = 0; i < chars.Length; i++) chars[i] = alphabet[rng.Next(alphabet.Length)];
                var p = Parse(new string(chars), vmCapacity: 4, errorCapacity: 4);
                for (int i = 0; i < p.Result.VmCount; i++) { p.Str(p.Vms[i].Name); p.Str(p.Vms[i].Image); p.Str(p.Vms[i].Args); }
                for (int i = 0; i < System.Math.Min(4, p.Result.ErrorCount); i++) p.Str(p.Errors[i].Token);
            }
        }
    }
}
