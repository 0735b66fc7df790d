using System;
using Hypervisor.Boot;
using Hypervisor.Trap;

namespace Guest
{
    // Self-tests that need more than one VM: isolation, VMID reuse, hostile
    // behaviour, restarts. Each VM runs one role, chosen by its bootargs.
    public static unsafe class IsolationTests
    {
        // Words that mark a page of the "secret" VM: top 48 bits fixed, low 16 the page.
        private const ulong SecretMarker = 0x5345435245540000;   // "SECRET\0\0"
        private const ulong MarkerMask = 0xffffffffffff0000;
        private const int WordsPerPage = 512;
        private const ulong FirstDataOffset = 4UL << 20;          // leave the image and its tables alone

        private static ulong RamEnd => Program.Fdt.MemoryBase + Program.Fdt.MemorySize;
        private static ulong DataStart => Program.Fdt.MemoryBase + FirstDataOffset;

        // Fills its RAM with the secret, lets the others run for a while, then
        // checks its secret is still all there.
        public static void Secret()
        {
            ulong pages = 0;
            for (ulong page = DataStart; page < RamEnd; page += 4096, pages++)
            {
                ulong* p = (ulong*)page;
                for (int i = 0; i < WordsPerPage; i += 8) p[i] = SecretMarker | (pages & 0xffff);
            }
            for (int round = 0; round < 20; round++) Yield();
            bool intact = true;
            pages = 0;
            for (ulong page = DataStart; page < RamEnd; page += 4096, pages++)
            {
                ulong* p = (ulong*)page;
                for (int i = 0; i < WordsPerPage; i += 8) if (p[i] != (SecretMarker | (pages & 0xffff))) intact = false;
            }
            SelfTests.Verdict("secret", intact);
            Console.Write("pages=");
            Console.Dec(pages);
            Console.Line(intact ? " intact" : " CHANGED");
        }

        // Reads every word of its own RAM and probes every 64 KiB of IPA space
        // above it: it must never see the secret, fresh memory must be zero, and
        // IPAs outside its RAM must abort (the guest catches each one).
        public static void Snoop(bool waitUntilAlone)
        {
            if (waitUntilAlone)
                while (Hvc.Call(HypercallAbi.RunningVms).X1 > 1) Yield();

            ulong secrets = 0, nonZero = 0, words = 0;
            for (ulong page = Program.Fdt.MemoryBase; page < RamEnd; page += 4096)
            {
                ulong* p = (ulong*)page;
                bool fresh = page >= DataStart && !Program.HoldsBootData(page);
                for (int i = 0; i < WordsPerPage; i++)
                {
                    ulong w = p[i];
                    if ((w & MarkerMask) == SecretMarker) secrets++;
                    if (fresh && w != 0) nonZero++;
                }
                words += WordsPerPage;
                if ((page & 0xfffff) == 0) Yield();
            }

            // Above its RAM, up to the end of the 1 GiB its stage 1 maps.
            ulong probes = 0, aborts = 0;
            for (ulong ipa = RamEnd; ipa < Program.Fdt.MemoryBase + (1UL << 30); ipa += 0x10000, probes++)
            {
                Traps.Expect();
                ulong v = Cpu.Load64(ipa);
                if (Traps.Taken == 1) aborts++;
                else if ((v & MarkerMask) == SecretMarker) secrets++;
            }
            Traps.Armed = false;
            SelfTests.Verdict("snoop", secrets == 0 && nonZero == 0 && aborts == probes);
            Console.Write("words=");
            Console.Dec(words);
            Console.Write(" secrets_seen=");
            Console.Dec(secrets);
            Console.Write(" nonzero_fresh=");
            Console.Dec(nonZero);
            Console.Write(" probes=");
            Console.Dec(probes);
            Console.Write(" aborts=");
            Console.Dec(aborts);
            Console.Put('\n');
        }

        // VMID reuse: writes a pattern of its own, then yields again and again
        // (with a 2-bit VMID width many VMs share few VMIDs, so every round can
        // start a new generation) and checks after each switch that it still
        // reads its own data.
        public static void Own(ulong seed, ulong rounds)
        {
            const int Pages = 64;
            ulong region = DataStart;
            for (int pg = 0; pg < Pages; pg++)
                for (int i = 0; i < WordsPerPage; i += 16) ((ulong*)(region + (ulong)pg * 4096))[i] = Mix(seed, pg, i);
            ulong bad = 0;
            ulong Rounds = rounds == 0 ? 200 : rounds;
            // With a second vCPU it checks the same pages at the same time,
            // from wherever it runs (guest/SmpTests.cs).
            bool helper = Program.Fdt.CpuCount > 1 && SmpTests.StartChecker(region, Pages, seed);
            for (ulong round = 0; round < Rounds; round++)
            {
                Yield();
                for (int pg = 0; pg < Pages; pg++)
                    for (int i = 0; i < WordsPerPage; i += 16)
                        if (((ulong*)(region + (ulong)pg * 4096))[i] != Mix(seed, pg, i)) bad++;
            }
            if (helper) bad += SmpTests.StopChecker();
            SelfTests.Verdict("own", bad == 0);
            Console.Write("seed=");
            Console.Dec(seed);
            Console.Write(" rounds=");
            Console.Dec(Rounds);
            Console.Write(" mismatches=");
            Console.Dec(bad);
            Console.Put('\n');
        }

        internal static ulong Mix(ulong seed, int page, int word) =>
            (seed * 0x9e3779b97f4a7c15UL) ^ ((ulong)page << 20) ^ (ulong)word;

        // The vCPU switch keeps all 32 SIMD registers: this VM and another one
        // hold different values and hand the CPU to each other 50 times.
        public static void FpSwitch(ulong seed)
        {
            ulong changed = Cpu.FpSurvivesSwitches(seed << 32, 50);
            SelfTests.Verdict("fpswitch", changed == 0);
            Console.Write("changed_mask=");
            Console.Hex(changed);
            Console.Put('\n');
        }

        // CPU-bound work and nothing else (the SMP scaling benchmark: two of
        // these finish in about half the wall time on two CPUs). A xorshift
        // chain, so the compiler cannot fold the loop away.
        [System.Runtime.RuntimeImport("*", "read_cntpct_el0")][System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.InternalCall)]
        private static extern ulong ReadCntpct();

        // It prints when it started and ended on the physical counter, which
        // every VM reads alike (the virtual one has a per-VM offset): the
        // span of a job over several VMs leaves out QEMU's and the boot's time.
        public static void Compute(ulong millions)
        {
            ulong start = ReadCntpct();
            ulong x = 0x2545f4914f6cdd1dUL;
            for (ulong i = 0; i < millions * 1000000; i++)
            {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
            }
            ulong end = ReadCntpct();
            SelfTests.Verdict("compute", x != 0);
            Console.Write("checksum=");
            Console.Hex(x);
            Console.Write(" start=");
            Console.Dec(start);
            Console.Write(" end=");
            Console.Dec(end);
            Console.Put('\n');
        }

        // Hostile: never gives the CPU back (interrupts masked at EL1, too).
        public static void Spin()
        {
            Console.Line("spinning forever with interrupts masked");
            while (true) { }
        }

        // Hostile: MMU off, no vector table, then an undefined instruction. The
        // guest's exception entry (address 0x200) is no RAM: fetching it is a
        // stage-2 abort, whose injected abort enters the same vector again. The
        // hypervisor must stop this VM rather than loop in it forever.
        public static void BrokenVectors()
        {
            Console.Line("undef: MMU off, VBAR_EL1=0, then UDF");
            Cpu.WriteSctlr(0x30d00800);
            Cpu.WriteVbar(0);
            Cpu.Undefined();
        }

        // Hostile: thousands of hypercalls with random function ids and
        // arguments (power-off and reset excluded, so it keeps going).
        public static void HypercallFuzz()
        {
            ulong state = 0x243f6a8885a308d3;
            ulong ok = 0, notSupported = 0, other = 0;
            const int Calls = 3000;
            for (int i = 0; i < Calls; i++)
            {
                ulong r = Next(ref state);
                ulong fid;
                switch (r & 3)
                {
                    case 0: fid = (uint)Next(ref state); break;                       // anything
                    case 1: fid = 0x84000000 | (Next(ref state) & 0x1f); break;       // PSCI, 32-bit
                    case 2: fid = 0xC4000000 | (Next(ref state) & 0x1f); break;       // PSCI, 64-bit
                    default: fid = HypercallAbi.VendorBase | (Next(ref state) & 0xf); break;
                }
                if (fid == PsciAbi.SystemOff || fid == PsciAbi.SystemReset || fid == PsciAbi.CpuOff ||
                    fid == (0xC4000000 | (PsciAbi.SystemReset & 0xff)) || fid == (0xC4000000 | (PsciAbi.SystemOff & 0xff)) ||
                    fid == (0xC4000000 | (PsciAbi.CpuOff & 0xff)) || fid == 0xC4000001 || fid == 0x84000001)
                    continue;
                var res = Hvc.Call(fid, Next(ref state), Next(ref state), Next(ref state));
                long x0 = (long)res.X0;
                if (x0 == 0) ok++;
                else if (x0 == -1) notSupported++;
                else other++;
            }
            SelfTests.Verdict("hvcfuzz", true);
            Console.Write("ok=");
            Console.Dec(ok);
            Console.Write(" not_supported=");
            Console.Dec(notSupported);
            Console.Write(" other=");
            Console.Dec(other);
            Console.Put('\n');
        }

        public static ulong Next(ref ulong s)
        {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            return s;
        }

        // Console input: echoes each line typed while this VM has the serial
        // console's focus, until a line "bye".
        public static void Echo()
        {
            Console.Line("echo: type a line (Ctrl-T gives this VM the console)");
            Span<byte> line = stackalloc byte[80];
            int n = 0;
            while (true)
            {
                int c = Console.TryGet();
                if (c < 0) { Yield(); continue; }
                if (c != '\r' && c != '\n')
                {
                    if (n < line.Length) line[n++] = (byte)c;
                    continue;
                }
                Console.Write("echo: got '");
                Console.Write(line.Slice(0, n));
                Console.Line("'");
                if (Hypervisor.Boot.Fdt.BytesEqual(line.Slice(0, n), "bye")) return;
                n = 0;
            }
        }

        // The Yield hypercall: the scheduler's cue.
        public static void Yield() => Cpu.Yield();
    }
}
