using Hypervisor.Devices;
using Hypervisor.Smp;

namespace Hypervisor.Vm
{
    // One virtual CPU of a VM: what a physical CPU holds while it runs the
    // guest, and what is saved while it does not. The VM (kernel/Vm/
    // VirtualMachine.cs) owns what all its vCPUs share: memory, stage 2,
    // VMID, devices and the distributor's SPIs. A vCPU owns:
    //   Context  general, EL1 system and FP/SIMD registers (VcpuContext.cs),
    //   Gic      its view of the virtual GIC: its own SGIs and PPIs (its
    //            redistributor), the VM's SPIs routed to it (VgicState.cs),
    //   VgicCpu  its list registers and virtual CPU interface state,
    //   Timers   its EL1 virtual and physical timers,
    //   Debug    its breakpoints and watchpoints.
    // The guest knows it by its MPIDR (VMPIDR_EL2): Aff0 = Index, as the
    // guest device tree's cpu@N nodes say.
    public sealed class Vcpu
    {
        public readonly VirtualMachine Vm;
        public readonly int Index;                      // within the VM: 0 boots, the others wait for PSCI CPU_ON
        public readonly ulong Mpidr;                    // affinity the guest sees (Aff0 = Index)

        // The scheduler's view (under its lock). Off: never started, CPU_OFF,
        // or its VM is ending. Runnable: ready. Running: in a physical CPU.
        // Waiting: WFI with no interrupt pending, runnable again once one is
        // (kernel/Vm/Scheduler.cs).
        public VmState State = VmState.Off;

        // The guest's view (PSCI, under the VM's lock): on from CPU_ON (or
        // the VM's start, for vCPU 0) until its CPU_OFF. The scheduler
        // follows it: a vCPU turned on is made runnable once it is out of
        // every CPU (Scheduler.Notice), which may come a moment later than
        // the CPU_ON that another CPU handled.
        public bool PoweredOn;
        public PhysicalCpu LoadedIn;                    // the physical CPU holding its registers, or null
        public int LastCpu = -1;                        // the physical CPU it last ran on (the monitor shows it)
        public int QueueIndex;                          // its place in the scheduler's table
        public bool Announced;                          // its first entry was logged

        public readonly VcpuContext Context = new VcpuContext();
        public readonly DebugState Debug = new DebugState();
        public readonly VgicState Gic;
        public readonly VgicCpu VgicCpu;
        public readonly GuestTimers Timers;

        public Vcpu(VirtualMachine vm, int index, VgicState spis)
        {
            Vm = vm;
            Index = index;
            Mpidr = (ulong)index;
            Gic = spis == null ? new VgicState() : new VgicState(spis, Mpidr);
            VgicCpu = new VgicCpu(this);
            Timers = new GuestTimers(Gic);
        }
    }
}
