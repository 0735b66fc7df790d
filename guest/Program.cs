using System;
using System.Runtime;
using Hypervisor.Boot;
using Hypervisor.Trap;

namespace Guest
{
    // Filled in by guest/boot/entry.s.
    public struct GuestBootInfo
    {
        public ulong Dtb, HeapStart, HeapEnd, ModulesStart, ModulesEnd, TablesStart, TablesEnd, ImageStart, ImageEnd;
    }

    // The C# test guest: an EL1 kernel that runs named self-tests chosen by its
    // bootargs (tests=all or tests=a,b,c) and reports `TEST <name> PASS|FAIL`.
    public static unsafe class Program
    {
        public static FdtInfo Fdt;
        public static ulong DtbAddress;

        [RuntimeExport("guest_main")]
        private static void Main(GuestBootInfo* boot)
        {
            Hypervisor.Runtime.Heap.Init(boot->HeapStart, boot->HeapEnd);
            Hypervisor.Runtime.Startup.InitializeModules(boot->ModulesStart, boot->ModulesEnd);

            DtbAddress = boot->Dtb;
            uint size = Hypervisor.Boot.Fdt.TotalSizeOf(new ReadOnlySpan<byte>((void*)boot->Dtb, 40));
            var dtb = new ReadOnlySpan<byte>((void*)boot->Dtb, (int)size);
            if (Hypervisor.Boot.Fdt.Parse(dtb, out Fdt) != FdtStatus.Ok) Fail("cannot read my device tree");
            ReadOnlySpan<byte> args = Fdt.BootargsOffset < 0 ? default : dtb.Slice(Fdt.BootargsOffset, Fdt.BootargsLength);

            Console.Write("guest up: el=");
            Console.Dec(Cpu.ReadCurrentEl() >> 2);
            Console.Write(" ram=");
            Console.Hex(Fdt.MemoryBase);
            Console.Write("+");
            Console.Dec(Fdt.MemorySize >> 20);
            Console.Write("MiB args=\"");
            Console.Write(args);
            Console.Line("\"");

            Mmu.Enable(boot->TablesStart, boot->TablesEnd, Fdt.MemoryBase);
            Console.Line("stage-1 MMU on");

            ReadOnlySpan<byte> tests = BootArgs.Get(args, "tests", out bool any);
            if (any) SelfTests.Run(tests);
            if (BootArgs.Get(args, "bench", out bool bench).Length >= 0 && bench) Bench.Run();
            PowerOff();
        }

        public static void PowerOff()
        {
            Console.Line("guest done: SYSTEM_OFF");
            Hvc.Call(PsciAbi.SystemOff);
            while (true) { }
        }

        public static void Fail(string why)
        {
            Console.Write("TEST guest FAIL ");
            Console.Line(why);
            PowerOff();
        }

        [RuntimeExport("rt_fatal")]
        private static void RuntimeFatal(char* message, int length)
        {
            Console.Write("TEST runtime FAIL ");
            for (int i = 0; i < length; i++) Console.Put(message[i]);
            Console.Put('\n');
            PowerOff();
        }
    }
}
