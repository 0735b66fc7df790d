using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text;
using System.Threading;
using Xunit;

namespace Hypervisor.Tests.Support
{
    // What one QEMU run printed and how it ended.
    public sealed class RunResult
    {
        public IReadOnlyList<string> Lines { get; init; }
        public int ExitCode { get; init; }
        public bool TimedOut { get; init; }
        public bool StoppedByTest { get; init; }
        public TimeSpan Elapsed { get; init; }

        public string Tail(int n = 40) =>
            string.Join("\n", Lines.Skip(Math.Max(0, Lines.Count - n)));

        public string Line(string prefix) => Lines.FirstOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal));

        // Fails the test with the console tail when the line is missing.
        public string Require(string prefix)
        {
            string line = Line(prefix);
            Assert.True(line != null, $"no line starting with '{prefix}'. Last lines:\n{Tail()}");
            return line;
        }

        public bool Has(string prefix) => Line(prefix) != null;

        // The guest's verdict line `[vm] TEST name PASS ...` is there.
        public void AssertPasses(string vm, string test) =>
            Assert.StartsWith($"[{vm}] TEST {test} PASS", Require($"[{vm}] TEST {test} "));

        // key=value pairs of the first STAT line that has `key`.
        public long Stat(string key)
        {
            foreach (var line in Lines.Where(l => l.StartsWith("STAT ", StringComparison.Ordinal)))
                foreach (var word in line.Split(' '))
                    if (word.StartsWith(key + "=", StringComparison.Ordinal))
                        return long.Parse(word.Substring(key.Length + 1));
            Assert.Fail($"no STAT {key}=. Last lines:\n{Tail()}");
            return 0;
        }
    }

    // Boots the hypervisor through scripts/hv-run, the same runner people use.
    // QEMU runs one host thread per emulated CPU, so a run takes as many of
    // the machine's cores as it has CPUs (--smp, or $HV_SMP): runs share the
    // cores, not oversubscribe them. A run that exceeds its timeout is killed
    // and reported with its last console lines.
    public static class Qemu
    {
        private static readonly SemaphoreSlim s_slots = new SemaphoreSlim(Math.Max(1, Environment.ProcessorCount));

        // stopWhen: a run that never ends by itself (a VM spinning forever) is
        // ended as soon as the console shows what the test waits for.
        // input: text typed on the serial console, each piece once a line
        // starting with its prefix has appeared (the monitor tests).
        public static RunResult Run(string[] hvRunArgs, int timeoutSeconds = 60, Func<IReadOnlyList<string>, bool> stopWhen = null,
                                    (string afterLinePrefix, string text)[] input = null)
        {
            string image = Repo.Path("build", "hypervisor.bin");
            Assert.True(File.Exists(image), $"{image} is missing: run `make` (make test builds it first)");

            int cores = Math.Min(Cpus(hvRunArgs), Math.Max(1, Environment.ProcessorCount));
            // One at a time through the gate, so two runs never each hold
            // part of what both need.
            lock (s_slots)
                for (int i = 0; i < cores; i++) s_slots.Wait();
            try
            {
                return RunLocked(hvRunArgs, timeoutSeconds, stopWhen, input);
            }
            finally
            {
                s_slots.Release(cores);
            }
        }

        private static int Cpus(string[] hvRunArgs)
        {
            int i = Array.IndexOf(hvRunArgs, "--smp");
            string n = i >= 0 && i + 1 < hvRunArgs.Length ? hvRunArgs[i + 1] : Environment.GetEnvironmentVariable("HV_SMP");
            return int.TryParse(n, out int cpus) && cpus > 0 ? cpus : 1;
        }

        private static RunResult RunLocked(string[] hvRunArgs, int timeoutSeconds, Func<IReadOnlyList<string>, bool> stopWhen,
                                           (string afterLinePrefix, string text)[] input)
        {
            var psi = new ProcessStartInfo(Repo.Path("scripts", "hv-run"))
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                RedirectStandardInput = true,
                UseShellExecute = false,
            };
            // hv-run's own timeout kills QEMU; ours is a backstop a little later.
            psi.ArgumentList.Add("--timeout");
            psi.ArgumentList.Add(timeoutSeconds.ToString());
            foreach (var a in hvRunArgs) psi.ArgumentList.Add(a);

            var lines = new List<string>();
            var sw = Stopwatch.StartNew();
            using var p = Process.Start(psi);
            int nextInput = 0;
            if (input == null) p.StandardInput.Close();
            p.OutputDataReceived += (_, e) => { if (e.Data != null) lock (lines) lines.Add(e.Data.TrimEnd('\r')); };
            p.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (lines) lines.Add("stderr: " + e.Data); };
            p.BeginOutputReadLine();
            p.BeginErrorReadLine();
            bool exited = false, stopped = false;
            var deadline = DateTime.UtcNow.AddSeconds(timeoutSeconds + 15);
            while (DateTime.UtcNow < deadline)
            {
                if (p.WaitForExit(200)) { exited = true; break; }
                if (input != null && nextInput < input.Length)
                {
                    bool seen;
                    lock (lines) seen = lines.Exists(l => l.StartsWith(input[nextInput].afterLinePrefix, StringComparison.Ordinal));
                    if (seen)
                    {
                        try { p.StandardInput.Write(input[nextInput].text); p.StandardInput.Flush(); } catch (System.IO.IOException) { }
                        nextInput++;
                    }
                }
                if (stopWhen != null)
                {
                    List<string> snapshot;
                    lock (lines) snapshot = new List<string>(lines);
                    if (stopWhen(snapshot)) { stopped = true; break; }
                }
            }
            if (!exited)
            {
                try { p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
                p.WaitForExit();
            }
            p.WaitForExit(); // drain the asynchronous readers
            sw.Stop();
            List<string> copy;
            lock (lines) copy = new List<string>(lines);
            int code = exited ? p.ExitCode : -1;
            return new RunResult
            {
                Lines = copy,
                ExitCode = code,
                StoppedByTest = stopped,
                TimedOut = (!exited && !stopped) || code == 124 || code == 137,
                Elapsed = sw.Elapsed,
            };
        }
    }
}
