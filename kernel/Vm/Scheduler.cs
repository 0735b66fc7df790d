using System.Runtime;
using System.Runtime.CompilerServices;
using Hypervisor.Arch;
using Hypervisor.Console;
using Hypervisor.Mm;
using Hypervisor.Trap;

namespace Hypervisor.Vm
{
    // Which VM runs. For now VMs run one after another on the boot CPU, each
    // until it stops; when none is left the hypervisor prints its summary and
    // powers the machine off.
    public static unsafe class Scheduler
    {
        public const int MaxVms = 64;
        public static VirtualMachine Current;
        // Set up by Init, not by a static initializer: a type with a static
        // constructor gets a "has it run yet?" check on every access, and
        // Current is read on every VM exit.
        private static VirtualMachine[] s_vms;
        private static int s_count;
        private static int s_next;

        public static int Count => s_count;
        public static VirtualMachine At(int i) => s_vms[i];

        public static void Init() => s_vms = new VirtualMachine[MaxVms];

        public static bool Add(VirtualMachine vm)
        {
            if (s_count == MaxVms) return false;
            s_vms[s_count++] = vm;
            return true;
        }

        // Starts the next VM that has not run yet. Never returns.
        public static void RunNext()
        {
            while (s_next < s_count)
            {
                VirtualMachine vm = s_vms[s_next++];
                if (vm.State != VmState.Created) continue;
                Current = vm;
                vm.State = VmState.Running;
                VmEntry.Enter(vm);
            }
            Current = null;
            Summary.PrintAndPowerOff();
        }

        // Ends the running VM (its own request or a fatal error) and moves on.
        // Called from inside a VM exit; the exit's stack frame is abandoned.
        public static void StopCurrent(string reason)
        {
            VirtualMachine vm = Current;
            vm.Uart.Flush(vm);
            Log.Write("[hv] vm ");
            Log.Write(vm.Name);
            Log.Write(" stopped: ");
            Log.Line(reason);
            VmTeardown.Destroy(vm);
            RunNext();
        }
    }

    // Puts a VM's vCPU on this CPU for the first time.
    public static unsafe class VmEntry
    {
        [RuntimeImport("*", "hv_enter_guest")][MethodImpl(MethodImplOptions.InternalCall)]
        private static extern void EnterGuest(TrapFrame* frame);

        [RuntimeImport("*", "hv_guest_frame")][MethodImpl(MethodImplOptions.InternalCall)]
        public static extern TrapFrame* GuestFrame();

        // SCTLR_EL1 as after reset: MMU and caches off, RES1 bits set.
        private const ulong SctlrEl1Reset = 0x30d00800;

        public static void Enter(VirtualMachine vm)
        {
            // The EL2 controls of this VM's world.
            SysReg.WriteVtcrEl2(vm.Vtcr);
            SysReg.WriteVttbrEl2(vm.Vttbr);
            SysReg.WriteHcrEl2(vm.Hcr);
            SysReg.WriteCnthctlEl2(3);                       // EL1 may read the physical counter and use its timer
            SysReg.WriteCntvoffEl2(SysReg.ReadCntpctEl0());  // the guest's virtual time starts at 0
            SysReg.WriteVpidrEl2(SysReg.ReadMidrEl1());
            SysReg.WriteVmpidrEl2((1UL << 31) | (uint)0);    // vCPU 0, uniprocessor bit clear
            SysReg.WriteMdcrEl2((SysReg.ReadPmcrEl0() >> 11) & 0x1f); // the guest gets all PMU counters (HPMN = N)

            // The EL1 registers as a freshly reset CPU has them.
            SysReg.WriteSctlrEl1(SctlrEl1Reset);
            SysReg.WriteTcrEl1(0);
            SysReg.WriteTtbr0El1(0);
            SysReg.WriteTtbr1El1(0);
            SysReg.WriteMairEl1(0);
            SysReg.WriteVbarEl1(0);
            SysReg.WriteCpacrEl1(0);
            SysReg.WriteSpEl1(0);
            SysReg.WriteContextidrEl1(0);
            SysReg.WriteTpidrEl1(0);
            SysReg.WriteTpidrEl0(0);
            SysReg.WriteTpidrroEl0(0);
            SysReg.WriteCntkctlEl1(0);
            SysReg.WriteCntvCtlEl0(0);

            TrapFrame* frame = GuestFrame();
            byte* raw = (byte*)frame;
            for (int i = 0; i < TrapFrame.Size; i++) raw[i] = 0;
            frame->X[0] = vm.DtbIpa;                      // Linux boot protocol: x0 = device tree
            frame->Elr = vm.EntryPoint;
            frame->Spsr = Pstate.GuestEntry;

            Log.Write("[hv] vm ");
            Log.Write(vm.Name);
            Log.Write(": VTCR_EL2=");
            Log.Hex(vm.Vtcr);
            Log.Write(" VTTBR_EL2=");
            Log.Hex(vm.Vttbr);
            Log.Write(" (VMID ");
            Log.Dec(vm.Vmid);
            Log.Write(") HCR_EL2=");
            Log.Hex(vm.Hcr);
            Log.Write(" entry=");
            Log.Hex(vm.EntryPoint);
            Log.NewLine();
            EnterGuest(frame);
        }
    }
}
