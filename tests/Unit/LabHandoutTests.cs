using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using Hypervisor.Tests.Support;
using Xunit;

namespace Hypervisor.Tests.Unit
{
    // The course's labs (docs/labs/): every lab the grader scores has a
    // handout in English and in Chinese, the two name the same code, and
    // every hole in the code belongs to a lab whose handouts name it.
    public class LabHandoutTests
    {
        private static IEnumerable<int> GradedLabs() =>
            File.ReadAllLines(Repo.Path("docs", "labs", "grades.tsv"))
                .Where(l => l.Length > 0 && char.IsDigit(l[0]))
                .Select(l => int.Parse(l.Split('\t')[0])).Distinct();

        private static string Handout(string language, int lab) => Repo.Path("docs", "labs", language, $"lab{lab}.md");

        // What a handout names in backticks: functions, files, tests, commands.
        private static SortedSet<string> CodeNamed(string path) =>
            new SortedSet<string>(Regex.Matches(File.ReadAllText(path), @"`([^`\n]+)`").Select(m => m.Groups[1].Value));

        // Lab n's holes: (function) for every `// LAB n BEGIN Function | ...`.
        private static IEnumerable<(int Lab, string Function, string File)> Holes() =>
            Directory.GetFiles(Repo.Path("kernel"), "*.cs", SearchOption.AllDirectories)
                .SelectMany(f => Regex.Matches(File.ReadAllText(f), @"^\s*// LAB (\d+) BEGIN (\S+) \| ", RegexOptions.Multiline)
                    .Select(m => (int.Parse(m.Groups[1].Value), m.Groups[2].Value, f)));

        [Fact]
        public void EveryGradedLabHasAHandoutInBothLanguages()
        {
            foreach (int lab in GradedLabs())
            {
                Assert.True(File.Exists(Handout("en", lab)), $"docs/labs/en/lab{lab}.md is missing");
                Assert.True(File.Exists(Handout("zh", lab)), $"docs/labs/zh/lab{lab}.md is missing");
            }
        }

        [Fact]
        public void BothLanguagesNameTheSameCode()
        {
            foreach (int lab in GradedLabs())
            {
                SortedSet<string> en = CodeNamed(Handout("en", lab)), zh = CodeNamed(Handout("zh", lab));
                Assert.True(en.Count > 5, $"lab {lab}: the English handout names almost no code");
                Assert.True(en.SetEquals(zh),
                    $"lab {lab}: only in English: {string.Join(", ", en.Except(zh))}; only in Chinese: {string.Join(", ", zh.Except(en))}");
            }
        }

        [Fact]
        public void EveryHoleIsNamedByItsLabsHandouts()
        {
            var holes = Holes().ToList();
            Assert.NotEmpty(holes);
            foreach (var (lab, function, file) in holes)
            {
                Assert.Contains(lab, GradedLabs());
                foreach (string language in new[] { "en", "zh" })
                    Assert.True(CodeNamed(Handout(language, lab)).Any(s => s.Contains(function)),
                        $"{file}: LAB {lab} hole {function} is not named in docs/labs/{language}/lab{lab}.md");
            }
        }

        // Every BEGIN has its END, in the same file, with nothing nested.
        [Fact]
        public void HoleMarkersArePaired()
        {
            foreach (string file in Directory.GetFiles(Repo.Path("kernel"), "*.cs", SearchOption.AllDirectories))
            {
                int open = 0;
                foreach (string line in File.ReadLines(file))
                {
                    if (Regex.IsMatch(line, @"^\s*// LAB \d+ BEGIN \S+ \| \S")) { Assert.Equal(0, open); open++; }
                    else if (Regex.IsMatch(line, @"^\s*// LAB \d+ END")) { Assert.Equal(1, open); open--; }
                }
                Assert.Equal(0, open);
            }
        }
    }
}
