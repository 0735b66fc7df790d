using System.Runtime;
using System.Runtime.CompilerServices;
using Hypervisor.Arch;
using Hypervisor.Console;
using Hypervisor.Mm;
using Hypervisor.Smp;
using Hypervisor.Trap;

namespace Hypervisor.Vm
{
    // Round-robin time slices on every CPU, from one shared run queue (the VM
    // table) under the hypervisor lock (kernel/Smp/LockOrder.cs): with a
    // handful of VMs a scan of one table is cheaper and simpler than per-CPU
    // queues with stealing, and it balances by itself: an idle CPU takes the
    // next runnable VM, wherever it last ran. A VM runs until its slice ends
    // (the EL2 timer, CNTHP), it yields (the Yield hypercall, or WFE), it
    // waits (WFI with no interrupt pending) or it stops; then the next runnable VM gets the CPU. A waiting
    // VM is runnable again once an interrupt is pending for it: a device line
    // rose, or its virtual timer's deadline passed (the EL2 timer is armed
    // for the earliest one, so a waiting VM wakes on time even while another
    // runs). With nothing runnable the CPU idles: it scrubs freed frames, then
    // sleeps in WFI. When every VM has stopped the hypervisor prints its
    // summary and powers the machine off.
    public static unsafe class Scheduler
    {
        public const int MaxVms = 64;
        public static VmidAllocator Vmids;
        public static ulong Switches;
        public static ulong IdleSleeps;       // times the CPU had nothing to run and slept (WFI at EL2)

        // Set up by Init, not by static initializers: a type with a static
        // constructor gets a "has it run yet?" check on every access, and
        // Current is read on every VM exit.
        private static VirtualMachine[] s_vms;
        private static int s_count;
        private static int s_waiting;          // VMs in VmState.Waiting (SetState keeps it)
        private static ulong s_sliceTicks;

        [RuntimeImport("*", "hv_enter_guest")][MethodImpl(MethodImplOptions.InternalCall)]
        private static extern void EnterGuest(TrapFrame* frame);

        [RuntimeImport("*", "hv_guest_frame")][MethodImpl(MethodImplOptions.InternalCall)]
        public static extern TrapFrame* LiveFrame();

        [RuntimeImport("*", "tlb_flush_all_el1")][MethodImpl(MethodImplOptions.InternalCall)]
        private static extern void TlbiAllE1();

        // The VM whose registers are in this CPU (null: none): per CPU.
        public static VirtualMachine Current
        {
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            get => Cpus.This.Loaded;
        }

        public static int Count => s_count;
        public static VirtualMachine At(int i) => s_vms[i];

        public static void Init(int vmidBits, int sliceMs)
        {
            El2Setup.Init();   // EL2 controls that are the same for every VM, set once
            s_vms = new VirtualMachine[MaxVms];
            Vmids = new VmidAllocator(vmidBits);
            s_sliceTicks = SysReg.ReadCntfrqEl0() / 1000 * (ulong)sliceMs;
        }

        public static bool Add(VirtualMachine vm)
        {
            if (s_count == MaxVms) return false;
            s_vms[s_count++] = vm;
            return true;
        }

        // Puts the first runnable VM on the CPU (idling until there is one).
        // Never returns.
        public static void Start()
        {
            TrapFrame* live = LiveFrame();
            Cpus.HypervisorLock.Acquire();
            LoadNext(live);
            Cpus.HypervisorLock.Release();
            EnterGuest(live);
        }

        // The run loop's one decision point: what the exit's handler returned
        // (or a stop a helper requested) is carried out here. On return the
        // exit path enters whichever VM is Current then; `live` is the exit's
        // frame, into which a switch loads the next VM's registers.
        public static void AfterExit(VirtualMachine vm, ExitAction returned, TrapFrame* live)
        {
            switch (ExitDecision.Final(returned, vm.StopReason))
            {
                case ExitAction.Resume: return;
                case ExitAction.Yield: Yield(live); return;
                case ExitAction.Wait: Wait(live); return;
                case ExitAction.Stop: Stop(vm, live); return;
                case ExitAction.Reset: Reset(vm, live); return;
            }
        }

        // The slice is over (timer IRQ) or the guest gave way (WFE, Yield):
        // the next runnable VM, if any, gets the CPU.
        private static void Yield(TrapFrame* live)
        {
            Housekeeping();
            VirtualMachine next = NextRunnable(Current);
            if (next != null && next != Current)
            {
                SetState(Current, VmState.Runnable);
                SwitchTo(next, live);
                Cpus.KickIdle();   // the VM it put down may run on an idle CPU
            }
            ArmTimer();
        }

        // The running VM executed WFI with no interrupt pending: it waits. Another
        // VM gets the CPU, or the CPU idles until some VM, maybe this one, has
        // an interrupt to take. If it is this one, it simply carries on: its
        // state never left the CPU.
        private static void Wait(TrapFrame* live)
        {
            VirtualMachine vm = Current;
            SetState(vm, VmState.Waiting);
            Housekeeping();
            VirtualMachine next = NextRunnable(vm) ?? IdleUntilRunnable(vm);
            if (next == vm) SetState(vm, VmState.Running);
            else SwitchTo(next, live);
            ArmTimer();
        }

        // Every scheduling point: the serial console, the balloon policy, and
        // waiting VMs that have something to take now. Cheap when idle. A
        // waiting VM's timer is checked here only while its registers are out
        // of the CPU; the loaded VM's timer raises its own interrupt
        // (VirtualTimerFired), a moment after the counter passes the deadline:
        // waking it on the counter alone would let it run, find nothing, and
        // execute WFI again.
        private static void Housekeeping()
        {
            Hypervisor.Monitor.Monitor.Poll();
            Hypervisor.Devices.BalloonPolicy.Tick();
            bool currentTimer = Current != null && Current.Timers.PhysicalWatched;
            if (s_waiting == 0 && !currentTimer) return;
            ulong now = SysReg.ReadCntpctEl0();
            if (currentTimer) Current.Timers.SamplePhysical(now);
            if (s_waiting == 0) return;
            bool woke = false;
            for (int i = 0; i < s_count; i++)
            {
                VirtualMachine vm = s_vms[i];
                if (vm.State != VmState.Waiting || !Mine(vm)) continue;
                vm.Timers.SamplePhysical(now);
                if (vm.VgicCpu.HasWork() || (vm != Current && TimerDeadline(vm) <= now))
                {
                    SetState(vm, VmState.Runnable);
                    woke = true;
                }
            }
            if (woke) Cpus.KickIdle();
        }

        // A VM this CPU may look at: its registers are here or in no CPU. One
        // loaded in another CPU is that CPU's to run, wake and time.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static bool Mine(VirtualMachine vm) => vm.LoadedIn == null || vm.LoadedIn == Cpus.This;

        private static void SetState(VirtualMachine vm, VmState state)
        {
            if (vm.State == VmState.Waiting) s_waiting--;
            if (state == VmState.Waiting) s_waiting++;
            vm.State = state;
        }

        // Nothing can run: scrub freed frames while no interrupt is pending,
        // then sleep (WFI at EL2, interrupts masked: it wakes on a pending one)
        // until the earliest waiting VM's timer deadline or the next tick;
        // take the interrupts that woke it, and look again. `loaded` is the
        // VM whose state is in the CPU (its virtual timer can fire here).
        // Returns the VM to run, or null when every VM has stopped.
        private static VirtualMachine IdleUntilRunnable(VirtualMachine loaded)
        {
            while (true)
            {
                VirtualMachine next = NextRunnable(loaded);
                if (next != null) return next;
                if (LiveVms() == 0) return null;
                ArmTimer();
                while ((SysReg.ReadIsrEl1() & IsrIrqPending) == 0 && Kernel.Frames.ScrubSome(IdleScrubStep) != 0) { }
                // Asleep without the lock: the other CPUs go on handling
                // exits, and one that makes a VM runnable kicks this one (SGI).
                PhysicalCpu cpu = Cpus.This;
                cpu.Idle = true;
                Cpus.HypervisorLock.Release();
                Cpu.WaitForInterrupt();
                Cpus.HypervisorLock.Acquire();
                cpu.Idle = false;
                IdleSleeps++;
                for (uint intid = Gic.Acknowledge(); intid != Gic.SpuriousIntid; intid = Gic.Acknowledge())
                {
                    if (intid == Gic.VirtualTimerIntid) GuestExits.VirtualTimerFired();
                    else if (intid == Gic.HypTimerIntid) HypTimer.Stop();   // its level would signal again at once; re-armed below
                    Gic.EndOfInterrupt(intid);                                 // (the kick SGI needs nothing more)
                }
                Housekeeping();
            }
        }

        // Frames scrubbed per step of the idle loop: an interrupt waits at
        // most one step (about 2,500 instructions).
        private const uint IdleScrubStep = 16;
        private const ulong IsrIrqPending = 1UL << 7;

        // The EL2 timer ends the running VM's slice, or wakes a waiting VM at
        // its timer's deadline if that comes first.
        private static void ArmTimer()
        {
            if (s_waiting == 0 && (Current == null || Current.Timers.PhysicalDeadline == ulong.MaxValue))
            {
                HypTimer.Arm(s_sliceTicks);   // the common case: only the slice
                return;
            }
            ulong now = SysReg.ReadCntpctEl0();
            ulong at = now + s_sliceTicks;
            // The loaded VM's emulated physical timer is the hypervisor's to fire
            // (once its line is high, Housekeeping has raised it: no need).
            if (Current != null)
            {
                ulong physical = Current.Timers.PhysicalDeadline;
                if (physical > now && physical < at) at = physical;
            }
            for (int i = 0; s_waiting != 0 && i < s_count; i++)
            {
                if (s_vms[i].State != VmState.Waiting || !Mine(s_vms[i])) continue;
                ulong deadline = TimerDeadline(s_vms[i]);
                if (deadline < at) at = deadline;
            }
            HypTimer.Arm(at > now ? at - now : 1);
        }

        // When the VM's first timer fires, in physical counter ticks, or
        // ulong.MaxValue if both are off, masked or too far away: the virtual
        // one (kernel/Vm/VirtualTimerDeadline.cs; the loaded VM's is read from
        // the CPU) or the emulated physical one (GuestTimers).
        private static ulong TimerDeadline(VirtualMachine vm)
        {
            ulong virtualDeadline = VirtualDeadline(vm), physicalDeadline = vm.Timers.PhysicalDeadline;
            return virtualDeadline < physicalDeadline ? virtualDeadline : physicalDeadline;
        }

        private static ulong VirtualDeadline(VirtualMachine vm)
        {
            bool live = vm == Current;
            ulong ctl = live ? SysReg.ReadCntvCtlEl0() : vm.Context.El1.CntvCtl;
            ulong cval = live ? SysReg.ReadCntvCvalEl0() : vm.Context.El1.CntvCval;
            return VirtualTimerDeadline.Physical(ctl, cval, vm.CntvOffset);
        }

        // The loaded VM's state goes to its context, `next`'s comes in.
        private static void SwitchTo(VirtualMachine next, TrapFrame* live)
        {
            VirtualMachine previous = Current;
            if (previous != null)
            {
                previous.VgicCpu.Save();
                previous.Context.SaveFrom(live);
                Unload(previous);
            }
            Load(next, live);
        }

        // Ends the loaded VM (its own request or a fatal error; the reason
        // is in StopReason) and loads the next runnable one into `live`.
        private static void Stop(VirtualMachine vm, TrapFrame* live)
        {
            Unload(vm);
            vm.VgicCpu.Save();                         // its list registers leave the CPU empty
            vm.Uart.Flush(vm);
            Log.Write("[hv] vm ");
            Log.Write(vm.Name);
            Log.Write(" stopped: ");
            Log.Line(vm.StopReason ?? "stopped");
            VmTeardown.Destroy(vm);
            LoadNext(live);
        }

        // PSCI SYSTEM_RESET: the VM starts again from its image with fresh
        // memory, unless its vms.conf `resets=` allowance is used up.
        private static void Reset(VirtualMachine vm, TrapFrame* live)
        {
            if (vm.MaxResets >= 0 && vm.Resets >= (ulong)vm.MaxResets)
            {
                vm.RequestStop("SYSTEM_RESET (resets= allowance used up)");
                Stop(vm, live);
                return;
            }
            vm.Uart.Flush(vm);
            vm.VgicCpu.Save();                         // empties the list registers; Build resets the model
            vm.Resets++;
            Unload(vm);
            if (!VmBuilder.Rebuild(vm))
            {
                vm.RequestStop("SYSTEM_RESET: not enough host memory to rebuild");
                Stop(vm, live);
                return;
            }
            Load(vm, live);
            ArmTimer();
        }

        // The CPU holds no VM's state (after a stop): the next runnable VM,
        // once there is one, is loaded into `live`; with none left the
        // hypervisor prints its summary and powers off.
        private static void LoadNext(TrapFrame* live)
        {
            VirtualMachine next = NextRunnable(null) ?? IdleUntilRunnable(null);
            if (next == null) Summary.PrintAndPowerOff();
            Load(next, live);
            ArmTimer();
        }

        // Makes `vm` the running VM: its VMID checked (and renewed if its
        // generation is gone), its EL2 controls and its saved state loaded.
        // No TLB flush: TLB entries carry the VMID, so the next VM cannot hit
        // the previous one's translations.
        private static void Load(VirtualMachine vm, TrapFrame* live)
        {
            EnsureVmid(vm);
            SysReg.WriteVtcrEl2(vm.Vtcr);
            SysReg.WriteVttbrEl2(vm.Vttbr);
            SysReg.WriteHcrEl2(vm.Hcr);
            SysReg.WriteCntvoffEl2(vm.CntvOffset);
            SysReg.WriteVmpidrEl2(1UL << 31);          // vCPU 0
            vm.Context.RestoreInto(live);
            vm.VgicCpu.Restore();
            vm.Timers.Loaded();
            vm.VgicCpu.Fill();
            DebugState.Switch(vm.Debug);
            SetState(vm, VmState.Running);
            PhysicalCpu cpu = Cpus.This;
            cpu.Loaded = vm;
            vm.LoadedIn = cpu;
            vm.LastCpu = cpu.Index;
            Vmids.SetActive(cpu.Index, vm.VmidTag);
            Switches++;
            if (!vm.Announced) Announce(vm);
        }

        // [hv] vm a: VTCR_EL2=... VTTBR_EL2=... (VMID n) HCR_EL2=... entry=...
        private static void Announce(VirtualMachine vm)
        {
            vm.Announced = true;
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
        }

        // `vm`'s registers have left this CPU (saved, or it stopped).
        private static void Unload(VirtualMachine vm)
        {
            PhysicalCpu cpu = Cpus.This;
            cpu.Loaded = null;
            vm.LoadedIn = null;
            Vmids.SetActive(cpu.Index, 0);
        }

        // VMIDs are handed out lazily per generation (kernel/Vm/VmidAllocator.cs).
        // A new generation means every VMID may now name a different VM, so
        // every TLB entry of EL1&0 goes: TLBI ALLE1IS.
        private static void EnsureVmid(VirtualMachine vm)
        {
            if (Vmids.IsCurrent(vm.VmidTag)) return;
            vm.Vmid = Vmids.Assign(ref vm.VmidTag, out bool flushAll);
            vm.Vttbr = Stage2Layout.Vttbr(vm.ActiveStage2Root, vm.Vmid);
            if (flushAll)
            {
                TlbiAllE1();
                Tlb.Rollovers++;
            }
        }

        // Round-robin: the first runnable VM after `after` (wrapping), or
        // `after` itself when it is the only one still runnable.
        private static VirtualMachine NextRunnable(VirtualMachine after)
        {
            int start = after == null ? 0 : after.Index + 1;
            int cpu = Cpus.This.Index;
            for (int i = 0; i < s_count; i++)
            {
                VirtualMachine vm = s_vms[(start + i) % s_count];
                if ((vm.State == VmState.Runnable || vm.State == VmState.Running) && Mine(vm) && Vmids.CanRun(vm.VmidTag, cpu)) return vm;
            }
            return null;
        }

        public static VirtualMachine FindByName(System.ReadOnlySpan<byte> name)
        {
            for (int i = 0; i < s_count; i++)
                if (Hypervisor.Boot.Fdt.BytesEqual(name, s_vms[i].NameBytes)) return s_vms[i];
            return null;
        }

        public static int LiveVms()
        {
            int n = 0;
            for (int i = 0; i < s_count; i++) if (s_vms[i].State != VmState.Stopped) n++;
            return n;
        }

        public static bool OthersRunnable()
        {
            VirtualMachine current = Current;
            for (int i = 0; i < s_count; i++)
                if (s_vms[i] != current && s_vms[i].State == VmState.Runnable && Mine(s_vms[i])) return true;
            return false;
        }
    }
}
