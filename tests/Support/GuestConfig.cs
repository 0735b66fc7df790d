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
        public static string LinuxImage => Repo.Path("build", "linux-kit", "Image");
        public static string LinuxInitrd => Repo.Path("build", "linux-kit", "rootfs.cpio.gz");

        public static string Write(string text)
        {
            string dir = Scratch.NewDirectory("vmsconf");
            string path = Path.Combine(dir, "vms.conf");
            // $LINUX: the Debian kernel and the kit's initramfs (make linux-kit).
            if (text.Contains("$LINUX") && !File.Exists(LinuxInitrd))
                throw new FileNotFoundException("the Linux guest kit is missing: run `make linux-kit` (make test does)", LinuxInitrd);
            text = text.Replace("$LINUX", $"image={LinuxImage} initrd={LinuxInitrd}");
            File.WriteAllText(path, text.Replace("$ELF", GuestElf).Replace("$BIN", GuestBin).Replace("$IMG", GuestImage));
            return path;
        }
    }
}
