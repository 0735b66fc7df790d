using System.Diagnostics;
using System.IO;
using System.Text.RegularExpressions;
using Hypervisor.Tests.Support;
using Xunit;

namespace Hypervisor.Tests.Unit
{
    // scripts/draw-bench turns build/bench.json into build/bench.html
    // (`make bench`): a bar per figure against its target, coloured by
    // whether the target is met, the Linux ratios, and the paging modes side
    // by side.
    public class BenchPictureTests
    {
        private const string Json = @"{
  ""hvc_null_round_trip"": 107, ""mmio_exit_uart"": 245, ""demand_fault_per_page"": 413, ""vm_switch"": 1081,
  ""balloon_move_per_page"": 159, ""linux_inflate_hv_instructions_per_page"": 334,
  ""linux_boot_ratio"": 1.02, ""linux_inflate_ratio"": 1.17,
  ""stage2_backing"": { ""pages"": { ""walk_reads"": 15, ""first_touch"": 423 }, ""blocks"": { ""walk_reads"": 14, ""first_touch"": 17 } },
  ""paging"": {
    ""stage2"": { ""switch"": 42, ""remap_page"": 62, ""unmap_page"": 28, ""map_page"": 62, ""first_touch"": 423 },
    ""shadow"": { ""switch"": 590, ""remap_page"": 1350, ""unmap_page"": 1091, ""map_page"": 1286, ""first_touch"": 1064 },
    ""direct"": { ""switch"": 530, ""remap_page"": 1228, ""unmap_page"": 1009, ""map_page"": 1173, ""first_touch"": 17 }
  }
}";

        private static string Draw(string json)
        {
            string path = Path.GetTempFileName();
            File.WriteAllText(path, json);
            var psi = new ProcessStartInfo(Repo.Path("scripts", "draw-bench"), path) { RedirectStandardOutput = true };
            using var p = Process.Start(psi);
            string html = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            File.Delete(path);
            Assert.Equal(0, p.ExitCode);
            return html;
        }

        [Fact]
        public void EachFigureIsABarColouredByItsTarget()
        {
            string html = Draw(Json);
            var bars = Regex.Matches(html, @"<rect class=""figure"" [^>]*fill=""(#[0-9a-f]+)""");
            Assert.Equal(6, bars.Count);
            // hvc and MMIO meet their targets, the other four do not.
            Assert.Equal(new[] { "#8cd17d", "#8cd17d", "#f28e2b", "#f28e2b", "#f28e2b", "#f28e2b" },
                         new[] { bars[0].Groups[1].Value, bars[1].Groups[1].Value, bars[2].Groups[1].Value, bars[3].Groups[1].Value, bars[4].Groups[1].Value, bars[5].Groups[1].Value });
            Assert.Contains("107 (target 120)", html);
            Assert.Contains("1081 (target 600)", html);
        }

        [Fact]
        public void RatiosModesAndBackingAreDrawn()
        {
            string html = Draw(Json);
            Assert.Equal(2, Regex.Matches(html, @"<rect class=""ratio""").Count);
            Assert.Contains("1.020 (target 1.03)", html);
            Assert.Equal(15, Regex.Matches(html, @"<rect class=""mode""").Count);   // five operations, three modes
            Assert.Contains("pages 15   blocks 14", html);
            Assert.DoesNotContain("http", html);                                    // inline SVG: no namespace, no address
        }
    }
}
