using System;
using System.Diagnostics;
using System.IO;
using Xunit;

namespace Hypervisor.Tests.Support
{
    // Device trees for the FDT tests: the real ones QEMU would hand the
    // hypervisor (dumpdtb=), and hand-written ones compiled with dtc.
    public static class Dtb
    {
        public static byte[] FromQemu(string mem, int smp, string append = null, bool virtualization = true, int gic = 3)
        {
            string file = Path.Combine(Scratch.NewDirectory("dtb"), "virt.dtb");
            string machine = $"virt,gic-version={gic}{(virtualization ? ",virtualization=on" : "")},dumpdtb={file}";
            var args = new[] { "-M", machine, "-cpu", "cortex-a72", "-m", mem, "-smp", smp.ToString(), "-nographic", "-nic", "none" };
            var psi = new ProcessStartInfo("qemu-system-aarch64") { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in args) psi.ArgumentList.Add(a);
            if (append != null)
            {
                // QEMU takes -append only with -kernel; dumpdtb exits before the
                // kernel would run, so any file does.
                string kernel = Path.Combine(Path.GetDirectoryName(file), "none.bin");
                File.WriteAllBytes(kernel, new byte[64]);
                psi.ArgumentList.Add("-kernel"); psi.ArgumentList.Add(kernel);
                psi.ArgumentList.Add("-append"); psi.ArgumentList.Add(append);
            }
            Run(psi);
            return File.ReadAllBytes(file);
        }

        public static byte[] FromSource(string dts)
        {
            string dir = Scratch.NewDirectory("dts");
            string src = Path.Combine(dir, "t.dts"), dst = Path.Combine(dir, "t.dtb");
            File.WriteAllText(src, dts);
            var psi = new ProcessStartInfo("dtc") { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in new[] { "-q", "-I", "dts", "-O", "dtb", "-o", dst, src }) psi.ArgumentList.Add(a);
            Run(psi);
            return File.ReadAllBytes(dst);
        }

        private static void Run(ProcessStartInfo psi)
        {
            using var p = Process.Start(psi);
            string err = p.StandardError.ReadToEnd();
            p.StandardOutput.ReadToEnd();
            Assert.True(p.WaitForExit(30000), psi.FileName + " hung");
            Assert.True(p.ExitCode == 0, $"{psi.FileName} failed: {err}");
        }
    }
}
