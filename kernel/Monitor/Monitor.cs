using System;
using Hypervisor.Console;
using Hypervisor.Mm;
using Hypervisor.Trap;
using Hypervisor.Vm;

namespace Hypervisor.Monitor
{
    // The hypervisor's own console on the serial line. What is typed goes to
    // the monitor, or to one VM's emulated UART: Ctrl-T moves the focus
    // (monitor -> first VM -> ... -> monitor). Commands end with Enter:
    //   vms                     every VM, its state and memory, where its image, initrd and tree are
    //   stats [vm]              a VM's counters (all VMs without a name)
    //   walk <vm> <gva>         GVA -> GPA -> HPA through the VM's tables
    //   balloon <vm> <size>     set the VM's balloon target (e.g. 128M)
    //   help
    // The input is polled on every scheduler tick (kernel/Trap/GuestExits.cs).
    public static class Monitor
    {
        public const byte FocusKey = 0x14;   // Ctrl-T
        private const int LineMax = 128;

        private static byte[] s_line;
        private static int s_length;
        private static int s_focus;          // -1: the monitor, else a VM's index

        public static void Init()
        {
            s_line = new byte[LineMax];
            s_focus = -1;
            s_pollTicks = Hypervisor.Arch.SysReg.ReadCntfrqEl0() / 1000;
            Log.Line("[hv] monitor: type 'help' and Enter; Ctrl-T moves the console between the monitor and the VMs");
        }

        // Every scheduling point calls this: VMs that hand the CPU back and
        // forth thousands of times a millisecond would otherwise read the
        // UART's flag register at every switch. Once a millisecond is plenty
        // for a person typing, and the UART's FIFO holds what arrives between.
        // The time test is inlined into the scheduler; the UART is read out of line.
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        public static void Poll(ulong now)
        {
            if (now - s_lastPoll >= s_pollTicks && s_line != null) ReadUart(now);
        }

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
        private static void ReadUart(ulong now)
        {
            s_lastPoll = now;
            int c;
            while ((c = Pl011.TryGet()) >= 0) Input((byte)c);
        }

        private static ulong s_lastPoll, s_pollTicks;

        private static void Input(byte b)
        {
            if (b == FocusKey)
            {
                MoveFocus();
                return;
            }
            if (s_focus >= 0)
            {
                VirtualMachine vm = Scheduler.At(s_focus);
                Lock(vm);
                if (vm.State != VmState.Stopped) vm.Uart.Deliver(b);
                Unlock(vm);
                return;
            }
            if (b == '\r' || b == '\n')
            {
                if (s_length > 0) Execute(new ReadOnlySpan<byte>(s_line).Slice(0, s_length));
                s_length = 0;
            }
            else if (b == 0x7f || b == 0x08)
            {
                if (s_length > 0) s_length--;
            }
            else if (b >= 0x20 && b < 0x7f && s_length < LineMax)
            {
                s_line[s_length++] = b;
            }
        }

        private static void MoveFocus()
        {
            s_focus++;
            while (s_focus < Scheduler.Count && Scheduler.At(s_focus).State == VmState.Stopped) s_focus++;
            if (s_focus >= Scheduler.Count) s_focus = -1;
            Log.Write("[hv] console focus: ");
            if (s_focus < 0) Log.Line("monitor");
            else
            {
                Log.Write("vm ");
                Log.Write(Scheduler.At(s_focus).Name);
                Log.NewLine();
            }
        }

        private static void Execute(ReadOnlySpan<byte> line)
        {
            ReadOnlySpan<byte> command = CommandLine.Word(line, 0);
            ReadOnlySpan<byte> arg1 = CommandLine.Word(line, 1);
            ReadOnlySpan<byte> arg2 = CommandLine.Word(line, 2);
            Log.Write("[hv] monitor> ");
            Log.Write(line);
            Log.NewLine();

            if (Is(command, "help"))
                Log.Line("[hv] commands: vms | stats [vm] | walk <vm> <gva> | balloon <vm> <size> | help; Ctrl-T: console focus");
            else if (Is(command, "vms")) ListVms();
            else if (Is(command, "stats")) Stats(arg1);
            else if (Is(command, "walk")) Walk(arg1, arg2);
            else if (Is(command, "balloon")) Balloon(arg1, arg2);
            else
            {
                Log.Write("[hv] monitor: unknown command '");
                Log.Write(command);
                Log.Line("' (try help)");
            }
        }

        private static string StateName(VmState state) =>
            state == VmState.Running ? "running" : state == VmState.Waiting ? "waiting" : state == VmState.Runnable ? "runnable"
            : state == VmState.Off ? "off" : "stopped";

        private static void WriteCpu(int cpu)
        {
            if (cpu < 0) Log.Write("-");
            else Log.Dec((ulong)cpu);
        }

        private static void ListVms()
        {
            for (int i = 0; i < Scheduler.Count; i++)
            {
                VirtualMachine vm = Scheduler.At(i);
                Log.Write("[hv] vm ");
                Log.Write(vm.Name);
                Log.Write(" ");
                Log.Write(vm.State == VmState.Stopped ? "stopped" : StateName(vm.Vcpus[0].State));
                Log.Write(" mem=");
                Log.Size(vm.RamSize);
                Log.Write(" vmid=");
                Log.Dec(vm.Vmid);
                Log.Write(" cpu=");                          // the physical CPU vCPU 0 last ran on
                WriteCpu(vm.Vcpus[0].LastCpu);
                Log.Write(vm.Shadow != null ? " paging=shadow" : vm.Direct != null ? " paging=direct" : " paging=stage2");
                if (vm.Shadow != null)
                {
                    Log.Write(" shadow_pages=");
                    Log.Dec((ulong)vm.Shadow.Tables.PagesInUse);
                }
                if (vm.Direct != null)
                {
                    Log.Write(" pinned_tables=");
                    Log.Dec(vm.Direct.PinnedTables);
                }
                Log.Write(" frames=");
                Log.Dec(vm.FramesOwned);
                Log.Write(" ballooned_pages=");
                Log.Dec(vm.Balloon == null ? 0 : vm.Balloon.BalloonedPages);
                Log.NewLine();
                // Every vCPU: [hv]   vcpu 1 waiting cpu=0 mpidr=0x1
                for (int v = 0; v < vm.Vcpus.Length && vm.Vcpus.Length > 1; v++)
                {
                    Vcpu vcpu = vm.Vcpus[v];
                    Log.Write("[hv]   vcpu ");
                    Log.Dec((ulong)v);
                    Log.Write(" ");
                    Log.Write(StateName(vcpu.State));
                    Log.Write(" cpu=");
                    WriteCpu(vcpu.LastCpu);
                    Log.Write(" mpidr=");
                    Log.Hex(vcpu.Mpidr);
                    Log.NewLine();
                }
                VmBuilder.WriteLayout(vm);
            }
            Log.Write("[hv] host frames free=");
            Log.Dec(Kernel.Frames.FreeFrames);
            Log.Write(" of ");
            Log.Dec(Kernel.Frames.TotalFrames);
            Log.NewLine();
        }

        private static void Stats(ReadOnlySpan<byte> name)
        {
            El2Clock.Charge(Hypervisor.Smp.Cpus.This);   // the loaded VM's EL2 instructions up to now
            if (name.IsEmpty)
            {
                for (int i = 0; i < Scheduler.Count; i++)
                {
                    Lock(Scheduler.At(i));
                    Summary.PrintVm(Scheduler.At(i));
                    Unlock(Scheduler.At(i));
                }
                return;
            }
            VirtualMachine vm = Find(name);
            if (vm == null) return;
            Lock(vm);
            Summary.PrintVm(vm);
            Unlock(vm);
        }

        private static void Walk(ReadOnlySpan<byte> name, ReadOnlySpan<byte> address)
        {
            VirtualMachine vm = Find(name);
            if (vm == null) return;
            if (!CommandLine.TryParseHex(address, out ulong gva))
            {
                Log.Line("[hv] monitor: walk <vm> <gva in hex>");
                return;
            }
            if (vm.Stage2 == null)
            {
                Log.Line("[hv] monitor: that VM has no memory any more");
                return;
            }
            Lock(vm);
            AddressWalk.Show(vm, gva);
            Unlock(vm);
        }

        private static void Balloon(ReadOnlySpan<byte> name, ReadOnlySpan<byte> size)
        {
            VirtualMachine vm = Find(name);
            if (vm == null) return;
            if (!CommandLine.TryParseSize(size, out ulong bytes))
            {
                Log.Line("[hv] monitor: balloon <vm> <size>, e.g. balloon a 128M");
                return;
            }
            if (vm.Balloon == null)
            {
                Log.Line("[hv] monitor: that VM has no balloon device (balloon=on in vms.conf)");
                return;
            }
            Lock(vm);
            vm.Balloon.SetTarget(vm, bytes);
            Unlock(vm);
        }

        // The monitor runs at a scheduling point, under the scheduler lock;
        // a VM it reads or changes is locked too (kernel/Smp/LockOrder.cs),
        // one at a time.
        private static void Lock(VirtualMachine vm) => vm.Lock.AcquireIfShared(Hypervisor.Smp.Cpus.This);
        private static void Unlock(VirtualMachine vm) => vm.Lock.ReleaseIfShared(Hypervisor.Smp.Cpus.This);

        private static VirtualMachine Find(ReadOnlySpan<byte> name)
        {
            VirtualMachine vm = Scheduler.FindByName(name);
            if (vm != null) return vm;
            Log.Write("[hv] monitor: no VM named '");
            Log.Write(name);
            Log.Line("'");
            return null;
        }

        private static bool Is(ReadOnlySpan<byte> word, string text) => Hypervisor.Boot.Fdt.BytesEqual(word, text);
    }
}
