using System.Diagnostics;
using System.Linq;
using System.Text.RegularExpressions;
using Hypervisor.Tests.Support;
using Xunit;

namespace Hypervisor.Tests.Unit
{
    // scripts/draw-walk draws the two-dimensional walk from a console log
    // (`make pictures`): every access of the walk is one numbered cell, in
    // its column (the guest read it serves) and row (its stage-2 level, or
    // the guest's own read).
    public class WalkPictureTests
    {
        // Runs scripts/<script> with the log on its standard input.
        private static string Draw(string script, string log)
        {
            var psi = new ProcessStartInfo(Repo.Path("scripts", script)) { RedirectStandardInput = true, RedirectStandardOutput = true };
            using var p = Process.Start(psi);
            p.StandardInput.Write(log);
            p.StandardInput.Close();
            string svg = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            Assert.Equal(0, p.ExitCode);
            return svg;
        }

        // The self-test's walk: a 4-level guest whose tables sit in a 2 MiB
        // stage-2 block (2 stage-2 reads each), data behind a 4 KiB page (3).
        private const string Log = @"[hv] walk vm=g gva=0x0000008000005128
[hv]     stage-2 L1 table hpa=0x0000000040b02000 [1] read at hpa=0x0000000040b02008 -> 0x0000000040b04003
[hv]     stage-2 L2 table hpa=0x0000000040b04000 [0] read at hpa=0x0000000040b04000 -> 0x0000000040c007fd
[hv]   stage-1 L0 table gpa=0x00000000400de000 [1] read at hpa=0x0000000040cde008 -> 0x00000000400e1003
[hv]     stage-2 L1 table hpa=0x0000000040b02000 [1] read at hpa=0x0000000040b02008 -> 0x0000000040b04003
[hv]     stage-2 L2 table hpa=0x0000000040b04000 [0] read at hpa=0x0000000040b04000 -> 0x0000000040c007fd
[hv]   stage-1 L1 table gpa=0x00000000400e1000 [0] read at hpa=0x0000000040ce1000 -> 0x00000000400e2003
[hv]     stage-2 L1 table hpa=0x0000000040b02000 [1] read at hpa=0x0000000040b02008 -> 0x0000000040b04003
[hv]     stage-2 L2 table hpa=0x0000000040b04000 [0] read at hpa=0x0000000040b04000 -> 0x0000000040c007fd
[hv]   stage-1 L2 table gpa=0x00000000400e2000 [0] read at hpa=0x0000000040ce2000 -> 0x00000000400e3003
[hv]     stage-2 L1 table hpa=0x0000000040b02000 [1] read at hpa=0x0000000040b02008 -> 0x0000000040b04003
[hv]     stage-2 L2 table hpa=0x0000000040b04000 [0] read at hpa=0x0000000040b04000 -> 0x0000000040c007fd
[hv]   stage-1 L3 table gpa=0x00000000400e3000 [5] read at hpa=0x0000000040ce3028 -> 0x0000000041005707
[hv]     stage-2 L1 table hpa=0x0000000040b02000 [1] read at hpa=0x0000000040b02008 -> 0x0000000040b04003
[hv]     stage-2 L2 table hpa=0x0000000040b04000 [8] read at hpa=0x0000000040b04040 -> 0x0000000040f98003
[hv]     stage-2 L3 table hpa=0x0000000040f98000 [5] read at hpa=0x0000000040f98028 -> 0x0000000040f9a7ff
[hv] walk result: gva 0x0000008000005128 -> gpa 0x0000000041005128 -> hpa 0x0000000040f9a128, 15 memory accesses
";

        [Fact]
        public void EveryAccessIsACellInItsColumnAndRow()
        {
            string svg = Draw("draw-walk", Log);
            Assert.StartsWith("<!DOCTYPE html>", svg);
            Assert.Contains("<svg ", svg);
            Assert.Contains("15 memory accesses", svg);
            // Cells: x = 150 + 130 * column, y = 70 + 60 * row.
            var cells = Regex.Matches(svg, @"<rect x=""(\d+)"" y=""(\d+)"" width=""120""")
                .Select(m => ((int.Parse(m.Groups[1].Value) - 150) / 130, (int.Parse(m.Groups[2].Value) - 70) / 60)).ToList();
            Assert.Equal(15, cells.Count);
            Assert.Equal(new[] { 0, 1, 2, 3 }, cells.Where(c => c.Item2 == 4).Select(c => c.Item1));   // the guest reads, one per column
            Assert.Equal(3, cells.Count(c => c.Item1 == 4));                                           // the data: L1, L2, L3
            Assert.DoesNotContain(cells, c => c.Item2 == 3 && c.Item1 < 4);                            // tables inside a block: no L3
            Assert.DoesNotContain(cells, c => c.Item2 == 0);                                           // a 40-bit IPA starts at L1
            Assert.Equal(Enumerable.Range(1, 15), Regex.Matches(svg, @"font-weight=""bold"" text-anchor=""middle"">(\d+)<").Select(m => int.Parse(m.Groups[1].Value)));
        }

        // scripts/draw-balloon: one bar per step of the demo, its height the
        // host's free frames then (the pool fills as a inflates, empties as
        // b takes the frames).
        [Fact]
        public void TheBalloonDemoIsOneBarPerStep()
        {
            const string log = "[hv] balloon_move: asking vm a 32768 pages (128MiB); host frames free 60000 (+0)\n" +
                               "[b] something else\n" +
                               "[hv] balloon_move: received from vm a 32768 pages (128MiB); host frames free 92768 (+32768)\n" +
                               "[hv] balloon_move: handed to vm b 32768 pages (128MiB); host frames free 92768 (+32768)\n" +
                               "[hv] balloon_move: in use by vm b 32768 pages (128MiB); host frames free 60100 (+100)\n";
            string svg = Draw("draw-balloon", log);
            var heights = Regex.Matches(svg, @"class=""step"" x=""\d+"" y=""\d+"" width=""120"" height=""(\d+)""")
                .Select(m => int.Parse(m.Groups[1].Value)).ToList();
            Assert.Equal(4, heights.Count);
            Assert.True(heights[1] > heights[0] && heights[1] == heights[2] && heights[3] < heights[2], string.Join(",", heights));
            Assert.Contains(">received from vm a<", svg);
            Assert.Contains(">92768<", svg);
        }

        // scripts/draw-shadow: the guest's walk of a GVA beside the MMU's walk
        // through the shadow of the same tables, level by level, the guest
        // ending at a GPA and the shadow at the HPA.
        [Fact]
        public void TheShadowTreeStandsBesideTheGuestsTree()
        {
            string log = string.Join("\n",
                "[hv] walk vm=p gva=0x0000010000005000",
                "[hv]     stage-2 L1 table hpa=0x0000000040b02000 [1] read at hpa=0x0000000040b02008 -> 0x0000000040b04003",
                "[hv]   stage-1 L0 table gpa=0x00000000400e4000 [2] read at hpa=0x0000000040ce4010 -> 0x00000000400e5003",
                "[hv]   stage-1 L1 table gpa=0x00000000400e5000 [0] read at hpa=0x0000000040ce5000 -> 0x00000000400e6003",
                "[hv]   stage-1 L2 table gpa=0x00000000400e6000 [0] read at hpa=0x0000000040ce6000 -> 0x00000000400e7003",
                "[hv]   stage-1 L3 table gpa=0x00000000400e7000 [5] read at hpa=0x0000000040ce7028 -> 0x0000000042105f07",
                "[hv] walk result: gva 0x0000010000005000 -> gpa 0x0000000042105000 -> hpa 0x0000000040fba000, 15 memory accesses",
                "[hv] hardware walk vm=p gva=0x0000010000005000",
                "[hv]   stage-1 L0 table gpa=0x0000000040fa2000 [2] read at hpa=0x0000000040fa2010 -> 0x0000000040fb2003",
                "[hv]   stage-1 L1 table gpa=0x0000000040fb2000 [0] read at hpa=0x0000000040fb2000 -> 0x0000000040fb3003",
                "[hv]   stage-1 L2 table gpa=0x0000000040fb3000 [0] read at hpa=0x0000000040fb3000 -> 0x0000000040fb4003",
                "[hv]   stage-1 L3 table gpa=0x0000000040fb4000 [5] read at hpa=0x0000000040fb4028 -> 0x0000000040fbaf07",
                "[hv] hardware walk result: gva 0x0000010000005000 -> gpa 0x0000000040fba000 -> hpa 0x0000000040fba000, 14 memory accesses",
                "");
            string svg = Draw("draw-shadow", log);
            Assert.Equal(4, Regex.Matches(svg, @"class=""guest""").Count);
            Assert.Equal(4, Regex.Matches(svg, @"class=""shadow""").Count);
            Assert.Equal(4, Regex.Matches(svg, @"class=""mirror""").Count);
            Assert.Contains(">L0 table 0x400e4000<", svg);     // the guest's root, a GPA
            Assert.Contains(">L0 table 0x40fa2000<", svg);     // its shadow, an HPA
            Assert.Contains(">GPA 0x42105000<", svg);
            Assert.Contains(">HPA 0x40fba000<", svg);
            Assert.Contains("15 memory accesses", svg);
            Assert.Contains("14 memory accesses", svg);
        }
    }
}
