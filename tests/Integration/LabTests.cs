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

        [Fact]
        public void StubsReplaceTheLabsFunctionsAndTheSolutionFitsBack()
        {
            string dest = StudentTree("1");
            try
            {
                string original = Repo.Path("kernel", "Mm", "Stage2Table.cs");
                string[] solution = File.ReadAllLines(original);
                string[] student = File.ReadAllLines(Path.Combine(dest, "kernel", "Mm", "Stage2Table.cs"));
                Assert.Contains(student, l => l.Trim() == "Hypervisor.Labs.Lab.Todo(1, \"Stage2Table.MapAt\");");
                Assert.Contains(student, l => l.Trim() == "Hypervisor.Labs.Lab.Todo(1, \"Stage2Table.ReachLevel\");");
                Assert.DoesNotContain(student, l => l.Contains("SplitBlock(entry, old, level, ipa, table);"));   // the solution is gone

                // Each stub is three lines (comment, Todo, placeholder); the
                // solution's block between its markers goes back in its place.
                var refilled = new System.Collections.Generic.List<string>();
                int s = 0;
                for (int i = 0; i < solution.Length; i++)
                {
                    Match m = Begin.Match(solution[i]);
                    if (!m.Success) { Assert.Equal(solution[i], student[s++]); refilled.Add(solution[i]); continue; }
                    Assert.Equal($"{m.Groups[1].Value}// LAB 1 TODO {m.Groups[3].Value}: write it (docs/labs/en/lab1.md)", student[s]);
                    Assert.Equal($"{m.Groups[1].Value}{m.Groups[4].Value}", student[s + 2]);
                    s += 3;
                    for (; !solution[i].Contains("// LAB 1 END"); i++) refilled.Add(solution[i]);
                    refilled.Add(solution[i]);
                }
                Assert.Equal(student.Length, s);
                Assert.Equal(solution, refilled.ToArray());

                // Staff-only tests stay out; the rest of the tree is there.
                Assert.False(Directory.Exists(Path.Combine(dest, "tests", "Staff")));
                Assert.True(File.Exists(Path.Combine(dest, "Makefile")));
            }
            finally { Directory.Delete(dest, true); }
        }

        // The student tree builds (the kernel, with -warnaserror), and its
        // host tests of the lab's code fail with the lab's words.
        [Fact]
        public void AStudentTreeBuildsAndItsHolesFailLoudly()
        {
            string dest = StudentTree("1");
            try
            {
                var (make, makeOutput) = Run("make", "build/kernel.dll", dest);
                Assert.True(make == 0, makeOutput);
                var (code, output) = Run("dotnet", "test tests/tests.csproj --nologo -v quiet --logger \"console;verbosity=normal\" --filter FullyQualifiedName~Hypervisor.Tests.Unit.Stage2Tests", dest);
                Assert.NotEqual(0, code);
                Assert.Contains("LAB 1 TODO Stage2Table.", output);
                // Code of other labs is untouched: its host tests still pass there.
                var (other, otherOutput) = Run("dotnet", "test tests/tests.csproj --nologo -v quiet --filter FullyQualifiedName~Hypervisor.Tests.Unit.VmidAllocatorTests", dest);
                Assert.True(other == 0, otherOutput);
            }
            finally { Directory.Delete(dest, true); }
        }
    }
}
