using System;

namespace Hypervisor.Boot
{
    // The hypervisor's command line (/chosen/bootargs, QEMU's -append): words
    // separated by spaces, each `key=value` or a bare `key`.
    public static class BootArgs
    {
        // The value of `key=value`, or an empty span with found=false.
        public static ReadOnlySpan<byte> Get(ReadOnlySpan<byte> args, string key, out bool found)
        {
            int i = 0;
            while (i < args.Length)
            {
                while (i < args.Length && args[i] == ' ') i++;
                int start = i;
                while (i < args.Length && args[i] != ' ') i++;
                ReadOnlySpan<byte> word = args.Slice(start, i - start);
                if (word.Length > key.Length && word[key.Length] == '=' && Fdt.StartsWith(word, key))
                {
                    found = true;
                    return word.Slice(key.Length + 1);
                }
                if (word.Length == key.Length && word.Length > 0 && Fdt.StartsWith(word, key))
                {
                    found = true;
                    return word.Slice(word.Length);
                }
            }
            found = false;
            return default;
        }

        public static bool Is(ReadOnlySpan<byte> args, string key, string value)
        {
            ReadOnlySpan<byte> v = Get(args, key, out bool found);
            return found && Fdt.BytesEqual(v, value);
        }
    }
}
