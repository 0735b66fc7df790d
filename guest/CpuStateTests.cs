using System.Runtime;
using System.Runtime.CompilerServices;
using Hypervisor.Trap;

namespace Guest
{
    // CPU state that is not memory: what this VM is told about its CPU (the
    // ID registers), and the per-CPU units that must never carry one VM's
    // state to another (the PMU, the debug registers).
    public static unsafe class CpuStateTests
    {
        // role=pmu: the PMU is the hypervisor's. The ID registers say there is
        // none (ID_AA64DFR0_EL1.PMUVer = 0), and every PMU register access is
        // an undefined instruction, so no VM can count another's (or the
        // hypervisor's) instructions, or leave counters for the next VM. The
        // hypervisor's own cycle counter is offered only to a VM configured
        // with hv_counter=on; this one is not.
        public static void Pmu()
        {
            ulong dfr0 = Cpu.ReadIdAa64Dfr0(), pfr0 = Cpu.ReadIdAa64Pfr0();
            bool hidden = ((dfr0 >> 8) & 0xf) == 0 && ((pfr0 >> 32) & 0xf) == 0;   // PMUVer, SVE
            int undefined = 0;
            Traps.Expect(); Cpu.WritePmevcntr0(0x1234_5678); if (UndefinedOnce()) undefined++;
            Traps.Expect(); Cpu.ReadPmevcntr0(); if (UndefinedOnce()) undefined++;
            Traps.Expect(); Cpu.WritePmcr(1); if (UndefinedOnce()) undefined++;
            Traps.Expect(); Cpu.ReadPmccntr(); if (UndefinedOnce()) undefined++;
            Traps.Expect(); Cpu.WritePmccfiltr(1UL << 27); if (UndefinedOnce()) undefined++;
            Traps.Armed = false;
            bool noCounter = (long)Hvc.Call(HypercallAbi.ReadCycles).X0 == HypercallAbi.NotSupported;
            SelfTests.Verdict("pmu", hidden && undefined == 5 && noCounter);
            Console.Write("id_aa64dfr0=");
            Console.Hex(dfr0);
            Console.Write(" undefined=");
            Console.Dec((ulong)undefined);
            Console.Write(noCounter ? " hv_counter=refused\n" : " hv_counter=GIVEN\n");
        }

        [RuntimeImport("*", "read_dbgbvr0_el1")][MethodImpl(MethodImplOptions.InternalCall)] private static extern ulong ReadBvr0();
        [RuntimeImport("*", "write_dbgbvr0_el1")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void WriteBvr0(ulong v);
        [RuntimeImport("*", "read_dbgbcr0_el1")][MethodImpl(MethodImplOptions.InternalCall)] private static extern ulong ReadBcr0();
        [RuntimeImport("*", "write_dbgbcr0_el1")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void WriteBcr0(ulong v);
        [RuntimeImport("*", "read_dbgwvr0_el1")][MethodImpl(MethodImplOptions.InternalCall)] private static extern ulong ReadWvr0();
        [RuntimeImport("*", "write_dbgwvr0_el1")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void WriteWvr0(ulong v);
        [RuntimeImport("*", "read_mdscr_el1")][MethodImpl(MethodImplOptions.InternalCall)] private static extern ulong ReadMdscr();
        [RuntimeImport("*", "write_mdscr_el1")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void WriteMdscr(ulong v);
        [RuntimeImport("*", "write_oslar_el1")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void WriteOslar(ulong v);
        [RuntimeImport("*", "read_oslsr_el1")][MethodImpl(MethodImplOptions.InternalCall)] private static extern ulong ReadOslsr();

        // role=debug seed=N: programs breakpoint 0 and watchpoint 0 (values,
        // and a control with everything but the enable bit), MDSCR_EL1's
        // TDCC bit and unlocks the OS lock, all from `seed`; then yields to
        // the other VMs a hundred times and checks after each that it still
        // finds exactly its own values. A VM whose seed is 0 writes nothing
        // and must find what a fresh CPU has: zeros, and the OS lock locked.
        // Two or more of these side by side catch any debug state that is
        // left in the CPU for the next VM, or not brought back.
        public static void Debug(ulong seed)
        {
            ulong bvr = seed == 0 ? 0 : 0x4008_0000UL + (seed << 12);
            ulong wvr = seed == 0 ? 0 : 0x4100_0000UL + (seed << 12);
            ulong bcr = seed == 0 ? 0 : (0xfUL << 5) | (3UL << 1);     // BAS, PMC; E = 0
            ulong mdscr = seed == 0 ? 0 : 1UL << 12;                    // TDCC
            ulong locked = seed == 0 ? 1UL : 0;
            if (seed != 0)
            {
                WriteBvr0(bvr);
                WriteBcr0(bcr);
                WriteWvr0(wvr);
                WriteMdscr(mdscr);
                WriteOslar(0);
            }
            int wrong = 0;
            const int Rounds = 100;
            for (int i = 0; i < Rounds; i++)
            {
                Cpu.Yield();
                ulong b = ReadBvr0(), c = ReadBcr0(), w = ReadWvr0(), m = ReadMdscr() & (1UL << 12), l = (ReadOslsr() >> 1) & 1;
                if (b != bvr || c != bcr || w != wvr || m != mdscr || l != locked)
                {
                    if (wrong++ == 0)
                    {
                        Console.Write("debug: first wrong round ");
                        Console.Dec((ulong)i);
                        Console.Write(": dbgbvr0="); Console.Hex(b);
                        Console.Write(" dbgbcr0="); Console.Hex(c);
                        Console.Write(" dbgwvr0="); Console.Hex(w);
                        Console.Write(" mdscr.tdcc="); Console.Hex(m);
                        Console.Write(" oslk="); Console.Hex(l);
                        Console.Put('\n');
                    }
                }
            }
            SelfTests.Verdict("debug", wrong == 0);
            Console.Write("rounds=");
            Console.Dec(Rounds);
            Console.Write(" wrong=");
            Console.Dec((ulong)wrong);
            Console.Write(" dbgbvr0=");
            Console.Hex(ReadBvr0());
            Console.Put('\n');
        }

        [RuntimeImport("*", "try_sve_rdvl")][MethodImpl(MethodImplOptions.InternalCall)] private static extern ulong TrySve();
        [RuntimeImport("*", "try_sme_rdsvl")][MethodImpl(MethodImplOptions.InternalCall)] private static extern ulong TrySme();
        [RuntimeImport("*", "try_pauth_key")][MethodImpl(MethodImplOptions.InternalCall)] private static extern ulong TryPauthKey();
        [RuntimeImport("*", "try_mte_gcr")][MethodImpl(MethodImplOptions.InternalCall)] private static extern ulong TryMte();
        [RuntimeImport("*", "try_ras_record")][MethodImpl(MethodImplOptions.InternalCall)] private static extern ulong TryRas();
        [RuntimeImport("*", "try_lor_control")][MethodImpl(MethodImplOptions.InternalCall)] private static extern ulong TryLor();
        [RuntimeImport("*", "try_amu_counter")][MethodImpl(MethodImplOptions.InternalCall)] private static extern ulong TryAmu();
        [RuntimeImport("*", "read_cpacr_el1")][MethodImpl(MethodImplOptions.InternalCall)] private static extern ulong ReadCpacr();
        [RuntimeImport("*", "write_cpacr_el1")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void WriteCpacr(ulong v);
        [RuntimeImport("*", "read_id_aa64pfr1_el1")][MethodImpl(MethodImplOptions.InternalCall)] private static extern ulong ReadIdAa64Pfr1();
        [RuntimeImport("*", "read_id_aa64isar1_el1")][MethodImpl(MethodImplOptions.InternalCall)] private static extern ulong ReadIdAa64Isar1();

        // role=hidden: what the ID registers say is absent is absent. SVE,
        // SME, MTE, AMU, RAS, LOR, the PMU and pointer authentication read as not
        // implemented, and an instruction or register of each is an
        // undefined instruction in this guest's own vectors: natively on a
        // CPU without it, through the hypervisor's trap on one with it (run
        // under -cpu max and a64fx, which have SVE, and cortex-a53,
        // neoverse-n1, which do not).
        public static void Hidden()
        {
            ulong pfr0 = Cpu.ReadIdAa64Pfr0(), pfr1 = ReadIdAa64Pfr1(), isar1 = ReadIdAa64Isar1(), dfr0 = Cpu.ReadIdAa64Dfr0();
            bool idsSay = ((pfr0 >> 32) & 0xf) == 0 && ((pfr0 >> 44) & 0xf) == 0      // SVE, AMU
                          && ((pfr1 >> 8) & 0xf) == 0 && ((pfr1 >> 24) & 0xf) == 0    // MTE, SME
                          && ((isar1 >> 4) & 0xff) == 0 && ((isar1 >> 24) & 0xff) == 0 // APA API, GPA GPI
                          && ((dfr0 >> 8) & 0xf) == 0;                                 // PMUVer
            int undefined = 0;
            // CPACR_EL1.ZEN and SMEN on first: with them off a CPU that has
            // SVE or SME traps the instruction to EL1 itself (an "SVE access"
            // exception, before any trap to EL2), which no hypervisor can
            // turn into an undefined instruction; a guest that believes the
            // ID registers never gets there.
            ulong cpacr = ReadCpacr();
            WriteCpacr(cpacr | (3UL << 16) | (3UL << 24));
            Traps.Expect(); TrySve(); if (UndefinedOnce()) undefined++; else Console.Line("hidden: SVE instruction NOT undefined");
            Traps.Expect(); TrySme(); if (UndefinedOnce()) undefined++; else Console.Line("hidden: SME instruction NOT undefined");
            Traps.Expect(); TryPauthKey(); if (UndefinedOnce()) undefined++; else Console.Line("hidden: pointer-authentication key NOT undefined");
            Traps.Expect(); TryMte(); if (UndefinedOnce()) undefined++; else Console.Line("hidden: MTE register NOT undefined");
            Traps.Expect(); TryAmu(); if (UndefinedOnce()) undefined++; else Console.Line("hidden: AMU counter NOT undefined");
            Traps.Expect(); TryRas(); if (UndefinedOnce()) undefined++; else Console.Line("hidden: RAS error record NOT undefined");
            Traps.Expect(); TryLor(); if (UndefinedOnce()) undefined++; else Console.Line("hidden: LORegions register NOT undefined");
            Traps.Armed = false;
            WriteCpacr(cpacr);
            SelfTests.Verdict("hidden", idsSay && undefined == 7);
            Console.Write("id_aa64pfr0=");
            Console.Hex(pfr0);
            Console.Write(" id_aa64pfr1=");
            Console.Hex(pfr1);
            Console.Write(" id_aa64isar1=");
            Console.Hex(isar1);
            Console.Write(" undefined=");
            Console.Dec((ulong)undefined);
            Console.Put('\n');
        }

        private static bool UndefinedOnce() => Traps.Taken == 1 && ((Traps.LastEsr >> 26) & 0x3f) == 0;
    }
}
