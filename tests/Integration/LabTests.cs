using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using Hypervisor.Tests.Support;
using Xunit;

namespace Hypervisor.Tests.Integration
{
    // `make student` (scripts/make-student): the student tree of a lab has its
    // functions replaced by stubs that still build and that fail loudly,
    // naming the lab and the function; putting the solution back where a
    // stub is gives the solution tree again.
    [Trait("Category", "Integration")]
    public class LabTests
    {
        private static (int Code, string Output) Run(string file, string args, string dir)
        {
            var psi = new ProcessStartInfo(file, args) { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true };
            using var p = Process.Start(psi);
            string output = p.StandardOutput.ReadToEndAsync().Result + p.StandardError.ReadToEnd();
            p.WaitForExit();
            return (p.ExitCode, output);
        }

        private static string StudentTree(string labs)
        {
            string dest = Path.Combine(Path.GetTempPath(), "hv-student-" + Path.GetRandomFileName());
            var (code, output) = Run(Repo.Path("scripts", "make-student"), $"{dest} \"{labs}\"", Repo.Root);
            Assert.True(code == 0, output);
            return dest;
        }

        private static readonly Regex Begin = new Regex(@"^(\s*)// LAB (\d+) BEGIN (\S+) \| (.*)$");

        // Every file with holes, every lab at once: each stub is three lines
        // (comment, Todo, placeholder) where the solution's block was, and
        // putting the solution's block back gives the solution file again.
        [Fact]
        public void StubsReplaceTheLabsFunctionsAndTheSolutionFitsBack()
        {
            string dest = StudentTree("");
            try
            {
                var files = Directory.GetFiles(Repo.Path("kernel"), "*.cs", SearchOption.AllDirectories)
                    .Where(f => File.ReadLines(f).Any(l => Begin.IsMatch(l))).ToList();
                Assert.True(files.Count >= 5, "expected the labs' holes in several files");
                int stubs = 0;
                foreach (string original in files)
                {
                    string[] solution = File.ReadAllLines(original);
                    string[] student = File.ReadAllLines(Path.Combine(dest, Path.GetRelativePath(Repo.Root, original)));
                    var refilled = new System.Collections.Generic.List<string>();
                    int s = 0;
                    for (int i = 0; i < solution.Length; i++)
                    {
                        Match m = Begin.Match(solution[i]);
                        if (!m.Success) { Assert.Equal(solution[i], student[s++]); refilled.Add(solution[i]); continue; }
                        string lab = m.Groups[2].Value, function = m.Groups[3].Value, indent = m.Groups[1].Value;
                        Assert.Equal($"{indent}// LAB {lab} TODO {function}: write it (docs/labs/en/lab{lab}.md)", student[s]);
                        Assert.Equal($"{indent}Hypervisor.Labs.Lab.Todo({lab}, \"{function}\");", student[s + 1]);
                        Assert.Equal($"{indent}{m.Groups[4].Value}", student[s + 2]);
                        s += 3;
                        stubs++;
                        for (; !solution[i].Contains($"// LAB {lab} END"); i++) refilled.Add(solution[i]);
                        refilled.Add(solution[i]);
                    }
                    Assert.Equal(student.Length, s);
                    Assert.Equal(solution, refilled.ToArray());
                }
                Assert.True(stubs >= 10, $"only {stubs} stubs");
                Assert.DoesNotContain(File.ReadAllLines(Path.Combine(dest, "kernel", "Mm", "Stage2Table.cs")),
                    l => l.Contains("SplitBlock(entry, old, level, ipa, table);"));   // the solution is gone

                // Staff-only tests stay out; the rest of the tree is there.
                Assert.False(Directory.Exists(Path.Combine(dest, "tests", "Staff")));
                Assert.True(File.Exists(Path.Combine(dest, "Makefile")));
            }
            finally { Directory.Delete(dest, true); }
        }

        // The whole way a student goes: lab 1's stubs in place, `make` builds
        // the hypervisor image, and `make grade LAB=1` scores 0 for both parts,
        // naming the stub, and exits non-zero.
        [Fact]
        public void MakeGradeInAStudentTreeScoresItsHolesZero()
        {
            string dest = StudentTree("1");
            try
            {
                var (make, makeOutput) = Run("make", "", dest);
                Assert.True(make == 0, makeOutput);
                var (grade, output) = Run("make", "grade LAB=1", dest);
                Assert.NotEqual(0, grade);
                Assert.Contains("Score: 0/100", output);
                Assert.Contains("still to write: LAB 1 TODO Stage2Table.", output);
            }
            finally { Directory.Delete(dest, true); }
        }

        // Every lab with holes, alone in a student tree: the kernel builds
        // (with -warnaserror), the host-test parts of that lab fail naming its
        // stubs, and every other lab's host-test parts still pass there (the
        // holes break only their own lab). QEMU parts are left out here: every
        // VM needs the stage-2 tables and VMIDs, so labs build on each other.
        public static TheoryData<int> LabsWithHoles()
        {
            var labs = new TheoryData<int>();
            foreach (int lab in Directory.GetFiles(Repo.Path("kernel"), "*.cs", SearchOption.AllDirectories)
                         .SelectMany(f => Regex.Matches(File.ReadAllText(f), @"^\s*// LAB (\d+) BEGIN ", RegexOptions.Multiline))
                         .Select(m => int.Parse(m.Groups[1].Value)).Distinct().OrderBy(l => l))
                labs.Add(lab);
            return labs;
        }

        // `needs<TAB>n<TAB>m` in grades.tsv, followed transitively.
        private static bool Needs(int lab, int other)
        {
            var needs = File.ReadAllLines(Repo.Path("docs", "labs", "grades.tsv"))
                .Where(l => l.StartsWith("needs\t")).Select(l => l.Split('\t'))
                .Select(f => (Lab: int.Parse(f[1]), Other: int.Parse(f[2]))).ToList();
            var seen = new System.Collections.Generic.HashSet<int> { lab };
            var todo = new System.Collections.Generic.Stack<int>(new[] { lab });
            while (todo.Count > 0)
            {
                int current = todo.Pop();
                foreach (var n in needs.Where(n => n.Lab == current))
                {
                    if (n.Other == other) return true;
                    if (seen.Add(n.Other)) todo.Push(n.Other);
                }
            }
            return false;
        }

        [Theory]
        [MemberData(nameof(LabsWithHoles))]
        public void AStudentTreeBuildsAndItsHolesFailOnlyTheirOwnLab(int lab)
        {
            var unitParts = File.ReadAllLines(Repo.Path("docs", "labs", "grades.tsv"))
                .Where(l => l.Length > 0 && char.IsDigit(l[0]))
                .Select(l => l.Split('\t'))
                .Where(f => f[2].StartsWith("Unit."))
                .Select(f => (Lab: int.Parse(f[0]), Name: "Hypervisor.Tests." + f[2]))
                .ToList();
            Assert.Contains(unitParts, p => p.Lab == lab);
            string dest = StudentTree(lab.ToString());
            try
            {
                var (make, makeOutput) = Run("make", "build/kernel.dll", dest);
                Assert.True(make == 0, makeOutput);
                string filter = string.Join("|", unitParts.Select(p => "FullyQualifiedName~" + p.Name));
                var (_, output) = Run("dotnet", $"test tests/tests.csproj --nologo -v quiet --logger \"console;verbosity=normal\" --filter \"{filter}\"", dest);
                foreach (var (partLab, name) in unitParts)
                {
                    int passed = Regex.Matches(output, "  Passed " + Regex.Escape(name)).Count;
                    int failed = Regex.Matches(output, "  Failed " + Regex.Escape(name)).Count;
                    if (partLab == lab) Assert.True(failed > 0, $"lab {lab}'s stubs should fail {name}");
                    else if (Needs(partLab, lab)) continue;   // built on lab `lab`: may fail too
                    else Assert.True(passed > 0 && failed == 0, $"lab {lab}'s stubs broke {name} of lab {partLab} ({passed} passed, {failed} failed)");
                }
                Assert.Contains($"LAB {lab} TODO ", output);
            }
            finally { Directory.Delete(dest, true); }
        }
    }
}
