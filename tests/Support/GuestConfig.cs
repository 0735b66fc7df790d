using System.IO;

namespace Hypervisor.Tests.Support
{
    // Writes a vms.conf into a fresh temporary folder; images are named by
    // absolute path (scripts/mkbundle stores them under their base names).
    public static class GuestConfig
    {
        public static string GuestElf => Repo.Path("build", "guest.elf");
        public static string GuestBin => Repo.Path("build", "guest.bin");
        public static string GuestImage => Repo.Path("build", "guest.img");

        public static string Write(string text)
        {
            string dir = Directory.CreateTempSubdirectory("vmsconf").FullName;
            string path = Path.Combine(dir, "vms.conf");
            File.WriteAllText(path, text.Replace("$ELF", GuestElf).Replace("$BIN", GuestBin).Replace("$IMG", GuestImage));
            return path;
        }
    }
}
