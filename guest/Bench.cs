using Hypervisor.Trap;

namespace Guest
{
    // Instruction counts of the basic exits, measured from inside the guest
    // with the hypervisor's cycle counter (the ReadCycles hypercall; its own
    // cost is in every reading, and cancels out of a difference). Under
    // `-icount shift=0` the counter advances once per instruction, so the
    // figures repeat exactly from run to run.
    public static unsafe class Bench
    {
        private const int Rounds = 1000;

        // The figures come from the hypervisor's own cycle counter (guests have
        // no PMU): the VM needs hv_counter=on in vms.conf.
        public static void EnableCycleCounter()
        {
            if ((long)Hvc.Call(HypercallAbi.ReadCycles).X0 != 0) Program.Fail("bench needs hv_counter=on in vms.conf");
        }

        // bench=switch, in two VMs at once: each Yield hands the CPU to the other
        // VM, so one round is two VM switches plus two short loop bodies.
        public static void VmSwitch()
        {
            EnableCycleCounter();
            for (int i = 0; i < 10; i++) Cpu.Yield();   // both VMs are running now
            ulong start = Cpu.ReadCycles();
            for (int i = 0; i < Rounds; i++) Cpu.Yield();
            ulong perRound = (Cpu.ReadCycles() - start) / Rounds;
            Console.Write("STAT bench_vm_switch=");
            Console.Dec(perRound / 2);
            Console.Write(" bench_vm_switch_round=");
            Console.Dec(perRound);
            Console.Put('\n');
            for (int i = 0; i < 10; i++) Cpu.Yield();   // let the other VM finish its rounds
        }

        public static void Run()
        {
            EnableCycleCounter();

            ulong overhead = Measure(0);
            ulong hvc = Measure(1) - overhead;
            ulong psci = Measure(3) - overhead;
            ulong mmio = Measure(2) - overhead;
            ulong fault = DemandFault();
            Console.Write("STAT bench_hvc_null=");
            Console.Dec(hvc);
            Console.Write(" bench_psci_version=");
            Console.Dec(psci);
            Console.Write(" bench_mmio_exit=");
            Console.Dec(mmio);
            Console.Write(" bench_demand_fault=");
            Console.Dec(fault);
            Console.Write(" bench_loop_overhead=");
            Console.Dec(overhead);
            Console.Put('\n');
        }

        // Average instructions per round of: nothing, a null hypercall, a
        // write to a UART register that prints nothing (IMSC), or PSCI_VERSION
        // (what a guest's firmware interface costs: SMCCC dispatch to PSCI).
        private static ulong Measure(int what)
        {
            ulong start = Cpu.ReadCycles();
            for (int i = 0; i < Rounds; i++)
            {
                if (what == 1) Hvc.Call(HypercallAbi.Null);
                else if (what == 2) Hypervisor.Arch.Mmio.Write32(Console.UartBase + 0x38, 0);
                else if (what == 3) Hvc.Call(Hypervisor.Trap.PsciAbi.Version);
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
            ulong region = Program.Fdt.MemoryBase + Program.Fdt.MemorySize - (3UL << 20);
            const int Pages = 256;
            ulong start = Cpu.ReadCycles();
            for (int i = 0; i < Pages; i++) *(ulong*)(region + (ulong)i * 4096) = 1;
            return (Cpu.ReadCycles() - start) / Pages;
        }
    }
}
