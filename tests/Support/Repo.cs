using System;
using System.IO;

namespace Hypervisor.Tests.Support
{
    // Locates the repository (the folder holding hypervisor.sln) from the test binary.
    public static class Repo
    {
        private static readonly Lazy<string> s_root = new Lazy<string>(() =>
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
                if (File.Exists(System.IO.Path.Combine(dir.FullName, "hypervisor.sln"))) return dir.FullName;
            throw new InvalidOperationException("hypervisor.sln not found above " + AppContext.BaseDirectory);
        });

        public static string Root => s_root.Value;
        public static string Path(params string[] parts) => System.IO.Path.Combine(Root, System.IO.Path.Combine(parts));
    }
}
