using System;
using System.IO;

namespace Hypervisor.Tests.Support
{
    // Scratch folders for one test run: bundles, images, device trees. All
    // under one folder per test process, removed when the process ends, so
    // runs leave nothing behind in the temporary directory.
    public static class Scratch
    {
        private static readonly Lazy<string> s_root = new Lazy<string>(() =>
        {
            string root = Path.Combine(Path.GetTempPath(), $"hv-tests-{Environment.ProcessId}");
            RemoveLeftovers();
            Directory.CreateDirectory(root);
            AppDomain.CurrentDomain.ProcessExit += (_, _) =>
            {
                try { Directory.Delete(root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            };
            return root;
        });

        private static int s_count;

        // Roots of earlier runs whose process is gone (one killed before it
        // could clean up).
        private static void RemoveLeftovers()
        {
            foreach (string dir in Directory.GetDirectories(Path.GetTempPath(), "hv-tests-*"))
            {
                if (!int.TryParse(Path.GetFileName(dir).Substring("hv-tests-".Length), out int pid)) continue;
                if (pid == Environment.ProcessId || IsRunning(pid)) continue;
                try { Directory.Delete(dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            }
        }

        private static bool IsRunning(int pid)
        {
            try { using var p = System.Diagnostics.Process.GetProcessById(pid); return !p.HasExited; }
            catch (ArgumentException) { return false; }
            catch (InvalidOperationException) { return false; }
        }

        // A new, empty folder whose name starts with `prefix`.
        public static string NewDirectory(string prefix)
        {
            string dir = Path.Combine(s_root.Value, $"{prefix}{System.Threading.Interlocked.Increment(ref s_count)}");
            Directory.CreateDirectory(dir);
            return dir;
        }
    }
}
