using Hypervisor.Trap;

namespace Guest
{
    // Instruction counts of the basic exits, measured from inside the guest.
    // Under `-icount shift=0` the PMU cycle counter advances once per
    // instruction, so the figures repeat exactly from run to run.
    public static unsafe class Bench
    {
        private const int Rounds = 1000;

        public static void Run()
        {
            Cpu.WritePmcr(1 | (1 << 2));           // enable counters, reset the cycle counter
            Cpu.WritePmcntenset(1UL << 31);        // turn on PMCCNTR_EL0
            // Count at EL2 as well (PMCCFILTR_EL0.NSH): a VM exit's cost is
            // mostly hypervisor instructions, which the filter hides by default.
            Cpu.WritePmccfiltr(1UL << 27);

            ulong overhead = Measure(0);
            ulong hvc = Measure(1) - overhead;
            ulong mmio = Measure(2) - overhead;
            ulong fault = DemandFault();
            Console.Write("STAT bench_hvc_null=");
            Console.Dec(hvc);
            Console.Write(" bench_mmio_exit=");
            Console.Dec(mmio);
            Console.Write(" bench_demand_fault=");
            Console.Dec(fault);
            Console.Write(" bench_loop_overhead=");
            Console.Dec(overhead);
            Console.Put('\n');
        }

        // Average instructions per round of: nothing, a null hypercall, or a
        // write to a UART register that prints nothing (IMSC).
        private static ulong Measure(int what)
        {
            ulong start = Cpu.ReadCycles();
            for (int i = 0; i < Rounds; i++)
            {
                if (what == 1) Hvc.Call(HypercallAbi.Null);
                else if (what == 2) Hypervisor.Arch.Mmio.Write32(Console.UartBase + 0x38, 0);
                else Nothing();
            }
            return (Cpu.ReadCycles() - start) / Rounds;
        }

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
        private static void Nothing() { }

        // First touch of fresh pages: the hypervisor allocates, zeroes and maps
        // a frame for each. The per-page figure includes the guest's own store.
        private static ulong DemandFault()
        {
            ulong region = Program.Fdt.MemoryBase + (48UL << 20);
            const int Pages = 256;
            ulong start = Cpu.ReadCycles();
            for (int i = 0; i < Pages; i++) *(ulong*)(region + (ulong)i * 4096) = 1;
            return (Cpu.ReadCycles() - start) / Pages;
        }
    }
}
