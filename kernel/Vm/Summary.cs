using Hypervisor.Arch;
using Hypervisor.Console;
using Hypervisor.Mm;
using Hypervisor.Trap;

namespace Hypervisor.Vm
{
    // The last thing the hypervisor prints: what every VM did, and proof that
    // every frame came back (free frames at the end equal those at the start).
    public static class Summary
    {
        public static uint FreeFramesAtStart;
        public static ulong HeapAtStart;

        public static void PrintAndPowerOff()
        {
            for (int i = 0; i < Scheduler.Count; i++) PrintVm(Scheduler.At(i));
            FrameAllocator f = Kernel.Frames;
            Log.Write("STAT summary vms=");
            Log.Dec((ulong)Scheduler.Count);
            Log.Stat("frames_free_start", FreeFramesAtStart);
            Log.Stat("frames_free_end", f.FreeFrames);
            Log.Stat("heap_used_end", Hypervisor.Runtime.Heap.BytesInUse);
            Log.NewLine();
            if (f.FreeFrames != FreeFramesAtStart)
                Log.Line("[hv] WARNING: frames leaked");
            Log.Line("[hv] all VMs stopped; powering off");
            Psci.PowerOff();
        }

        // STAT vm=a exits=... stage2_faults=... mmio=... hvc=... tlbi_ipa=... ...
        public static void PrintVm(VirtualMachine vm)
        {
            VmCounters c = vm.Counters;
            Log.Write("STAT vm=");
            Log.Write(vm.Name);
            Log.Stat("exits", c.Exits);
            Log.Stat("stage2_faults", c.Stage2Faults);
            Log.Stat("mmio_exits", c.MmioExits);
            Log.Stat("hypercalls", c.Hypercalls);
            Log.Stat("injected_aborts", c.InjectedAborts);
            Log.Stat("tlbi_ipas2e1is", c.TlbiIpa);
            Log.Stat("tlbi_vmalle1is", c.TlbiVmallE1);
            Log.Stat("tlbi_vmalls12e1is", c.TlbiVmallS12E1);
            Log.Stat("frames_peak", vm.PeakFrames);
            Log.NewLine();
        }
    }
}
