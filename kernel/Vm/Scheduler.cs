using System.Runtime;
using System.Runtime.CompilerServices;
using Hypervisor.Arch;
using Hypervisor.Console;
using Hypervisor.Mm;
using Hypervisor.Smp;
using Hypervisor.Trap;

namespace Hypervisor.Vm
{
    // Round-robin time slices of vCPUs on every physical CPU, from one shared
    // run queue (the vCPU table) under the scheduler lock (kernel/Smp/
    // LockOrder.cs, rank 1; what belongs to a VM is under that VM's lock,
    // rank 2, taken inside it). Why one queue and not one per CPU: with a few dozen
    // vCPUs a scan of one table is cheaper and simpler than per-CPU queues
    // with work stealing, and it balances by itself: a CPU whose vCPU stops,
    // waits or ends its slice takes the next runnable vCPU, wherever that one
    // last ran (migration is a save on one CPU and a load on another).
    //
    // A vCPU runs until its slice ends (the EL2 timer, CNTHP), it yields (the
    // Yield hypercall, or WFE), it waits (WFI with no interrupt pending), it
    // is turned off (PSCI CPU_OFF) or its VM stops or resets. A waiting vCPU
    // is runnable again once an interrupt is pending for it: a device line
    // rose, another vCPU sent it an SGI, or one of its timers' deadlines
    // passed (the EL2 timer is armed for the earliest one, so it wakes on
    // time even while another runs). A CPU that makes a vCPU runnable kicks
    // (SGI 0) the CPUs asleep in their idle loop, and a running vCPU that has
    // something new to take on another CPU gets that CPU kicked out of the
    // guest to refill its list registers. With nothing runnable a CPU idles:
    // it scrubs freed frames, then sleeps in WFI without the lock. When every
    // VM has stopped the hypervisor prints its summary and powers off.
    //
    // An exit handler holds only its VM's lock, never this one: a vCPU it
    // wakes (an SGI, an SPI, PSCI CPU_ON) is noted in the physical CPU, and
    // the exit path hands the notes over here (TakeNotices) once the VM's
    // lock is released. Everything that can make a vCPU runnable therefore
    // passes through Notice under the scheduler lock, which is what keeps a
    // wake-up from being lost between "the handler found nothing pending"
    // and "the vCPU is marked Waiting".
    public static unsafe class Scheduler
    {
        public const int MaxVms = 64;
        public const int MaxVcpus = 128;
        public static SpinLock Lock;
        public static VmidAllocator Vmids;
        public static ulong IdleSleeps;       // times a CPU had nothing to run and slept (WFI at EL2)

        // Set up by Init, not by static initializers: a type with a static
        // constructor gets a "has it run yet?" check on every access, and
        // Current is read on every VM exit.
        private static VirtualMachine[] s_vms;
        private static int s_count;
        private static Vcpu[] s_vcpus;
        private static int s_vcpuCount;
        private static StateCounts s_inState;  // vCPUs in each VmState (SetState keeps them)
        private static ulong s_sliceTicks;

        [RuntimeImport("*", "hv_enter_guest")][MethodImpl(MethodImplOptions.InternalCall)]
        private static extern void EnterGuest(TrapFrame* frame);

        [RuntimeImport("*", "tlb_flush_all_el1")][MethodImpl(MethodImplOptions.InternalCall)]
        private static extern void TlbiAllE1();

        // The vCPU whose registers are in this physical CPU (null: none).
        public static Vcpu Current
        {
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            get => Cpus.This.Loaded;
        }

        public static int Count => s_count;
        public static VirtualMachine At(int i) => s_vms[i];

        public static void Init(int vmidBits, int sliceMs)
        {
            El2Setup.Init();   // EL2 controls that are the same for every VM, set once
            Lock = new SpinLock(LockRank.Scheduler);
            s_vms = new VirtualMachine[MaxVms];
            s_vcpus = new Vcpu[MaxVcpus];
            Vmids = new VmidAllocator(vmidBits);
            s_sliceTicks = SysReg.ReadCntfrqEl0() / 1000 * (ulong)sliceMs;
        }

        public static bool Add(VirtualMachine vm)
        {
            if (s_count == MaxVms || s_vcpuCount + vm.Vcpus.Length > MaxVcpus) return false;
            s_vms[s_count++] = vm;
            for (int i = 0; i < vm.Vcpus.Length; i++)
            {
                vm.Vcpus[i].QueueIndex = s_vcpuCount;
                s_vcpus[s_vcpuCount++] = vm.Vcpus[i];
                s_inState.N[(int)vm.Vcpus[i].State]++;
            }
            return true;
        }

        // Puts the first runnable vCPU on this CPU (idling until there is
        // one). The boot CPU and every secondary end their start-up here.
        // Never returns.
        public static void Start()
        {
            PhysicalCpu cpu = Cpus.This;
            Lock.Acquire(cpu);
            LoadNext(cpu);
            RefillLoaded(cpu);
            Lock.Release(cpu);
            EnterGuest(cpu.EntryFrame);
        }

        // The run loop's one decision point: what the exit's handler returned
        // (or a request another vCPU or a helper made) is carried out here.
        // TrapEntry calls it only for something other than a plain Resume,
        // holding the scheduler lock (with several CPUs).
        // On return the exit path enters whichever vCPU is Current then,
        // through its frame (cpu.EntryFrame). A vCPU that comes in may itself
        // belong to a VM with a request: it is acted on before anything runs.
        // (HasRequest is set with a stop reason or a pending reset, and
        // cleared with them: one test says whether ExitDecision.Final can
        // differ from what the handler returned.)
        public static void AfterExit(PhysicalCpu cpu, Vcpu vcpu, ExitAction returned)
        {
            ExitAction action = returned;
            while (true)
            {
                VirtualMachine vm = vcpu.Vm;
                if (vm.HasRequest) action = ExitDecision.Final(action, vm.StopReason, vm.ResetPending);
                if (action == ExitAction.Resume) return;
                if (action == ExitAction.Yield) Yield(cpu);          // the common one, tested first
                else if (action == ExitAction.Wait) Wait(cpu);
                else if (action == ExitAction.Off) TurnOff(cpu, vcpu);
                else Leave(cpu, vcpu);                                 // Stop, Reset
                vcpu = cpu.Loaded;
                action = ExitAction.Resume;
            }
        }

        // The slice is over (timer IRQ) or the guest gave way (WFE, Yield):
        // the next runnable vCPU, if any, gets the CPU.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Yield(PhysicalCpu cpu)
        {
            Housekeeping(cpu);
            Vcpu current = cpu.Loaded;
            Vcpu next = NextRunnable(cpu, current);
            if (next != null && next != current)
            {
                SetState(current, VmState.Runnable);
                SwitchTo(cpu, next);
                Cpus.KickIdle();   // the vCPU it put down may run on an idle CPU
            }
            else El2Clock.Charge(cpu);   // (a switch charged it in Unload)
            ArmTimer(cpu);
        }

        // The running vCPU executed WFI with no interrupt pending: it waits.
        // Another vCPU gets the CPU, or the CPU idles until some vCPU, maybe
        // this one, has an interrupt to take. If it is this one, it simply
        // carries on: its state never left the CPU.
        private static void Wait(PhysicalCpu cpu)
        {
            Vcpu vcpu = cpu.Loaded;
            SetState(vcpu, VmState.Waiting);
            Housekeeping(cpu);
            Vcpu next = NextRunnable(cpu, vcpu) ?? IdleUntilRunnable(cpu, vcpu);
            if (next == vcpu) SetState(vcpu, VmState.Running);
            else SwitchTo(cpu, next);
            ArmTimer(cpu);
        }

        // Something may have become deliverable to `vcpu` on another CPU's
        // watch (an SGI, an SPI routed to it, a device line): if it waits, it
        // is runnable now; if it runs on another CPU, that CPU is kicked out
        // of the guest so that its exit path refills the list registers.
        // Also for a vCPU just turned on (PSCI CPU_ON set PoweredOn): it is
        // runnable once no CPU holds it any more. An exit handler (VM lock,
        // no scheduler lock) only notes the vCPU; TakeNotices acts on it.
        public static void Notice(Vcpu vcpu)
        {
            PhysicalCpu me = Cpus.This;
            if (SpinLock.Smp && !me.Locks.Holds(LockRank.Scheduler))
            {
                me.Noticed |= 1u << vcpu.Index;       // one VM's lock held: its vCPUs only
                me.NoticedVm = vcpu.Vm;
                return;
            }
            NoticeNow(me, vcpu);
        }

        // The exit path, under the scheduler lock, after its VM's lock is gone.
        public static void TakeNotices(PhysicalCpu cpu)
        {
            uint noticed = cpu.Noticed;
            VirtualMachine vm = cpu.NoticedVm;
            cpu.Noticed = 0;
            cpu.NoticedVm = null;
            for (int i = 0; noticed != 0; i++, noticed >>= 1)
                if ((noticed & 1) != 0) NoticeNow(cpu, vm.Vcpus[i]);
        }

        private static void NoticeNow(PhysicalCpu me, Vcpu vcpu)
        {
            PhysicalCpu there = vcpu.LoadedIn;
            switch (WakeRule.For(vcpu.State, there != null, there == me, vcpu.PoweredOn, vcpu.Vm.HasRequest))
            {
                case Wake.KickItsCpu:
                    Gic.SendSgi(there.Mpidr, Cpus.KickIntid);
                    break;
                case Wake.MakeRunnable:
                    SetState(vcpu, VmState.Runnable);
                    Cpus.KickIdle();
                    break;
            }
        }

        // Every scheduling point: the serial console, the balloon policy, and
        // waiting vCPUs that have something to take now. Cheap when idle. A
        // waiting vCPU's timer is checked here only while its registers are
        // out of the CPU; the loaded vCPU's timer raises its own interrupt
        // (VirtualTimerFired), a moment after the counter passes the deadline:
        // waking it on the counter alone would let it run, find nothing, and
        // execute WFI again.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Housekeeping(PhysicalCpu cpu)
        {
            ulong now = SysReg.ReadCntpctEl0();
            Hypervisor.Monitor.Monitor.Poll(now);
            Hypervisor.Devices.BalloonPolicy.Tick();
            Vcpu current = cpu.Loaded;
            bool currentTimer = current != null && current.Timers.PhysicalWatched;
            if (Waiting != 0 || currentTimer) SampleTimers(cpu, current, currentTimer, now);
        }

        // Housekeeping's timer work, out of line: the common scheduling point
        // (nobody waits, no emulated physical timer) does not pay for the
        // registers this loop needs.
        [MethodImpl(MethodImplOptions.NoInlining)]
        private static void SampleTimers(PhysicalCpu cpu, Vcpu current, bool currentTimer, ulong now)
        {
            if (currentTimer)
            {
                current.Vm.Lock.AcquireIfShared(cpu);
                current.Timers.SamplePhysical(now);
                current.Vm.Lock.ReleaseIfShared(cpu);
            }
            if (Waiting == 0) return;
            bool woke = false;
            for (int i = 0; i < s_vcpuCount; i++)
            {
                Vcpu vcpu = s_vcpus[i];
                if (vcpu.State != VmState.Waiting || !Mine(cpu, vcpu)) continue;
                vcpu.Vm.Lock.AcquireIfShared(cpu);
                vcpu.Timers.SamplePhysical(now);
                bool wake = vcpu.VgicCpu.HasWork() || (vcpu != current && TimerDeadline(vcpu) <= now);
                vcpu.Vm.Lock.ReleaseIfShared(cpu);
                if (wake)
                {
                    SetState(vcpu, VmState.Runnable);
                    woke = true;
                }
            }
            if (woke) Cpus.KickIdle();
        }

        // A vCPU this CPU may look at: its registers are here or in no CPU.
        // One loaded in another CPU is that CPU's to run, wake and time.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static bool Mine(PhysicalCpu cpu, Vcpu vcpu) => vcpu.LoadedIn == null || vcpu.LoadedIn == cpu;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void SetState(Vcpu vcpu, VmState state)
        {
            s_inState.N[(int)vcpu.State]--;
            s_inState.N[(int)state]++;
            vcpu.State = state;
        }

        // One count per VmState, indexed by it (a fixed buffer: no bounds
        // check, and no branch on which state is left or entered).
        private unsafe struct StateCounts { public fixed int N[(int)VmState.Off + 1]; }

        private static int Waiting
        {
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            get => s_inState.N[(int)VmState.Waiting];
        }

        private static int Runnable
        {
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            get => s_inState.N[(int)VmState.Runnable];
        }

        // Nothing can run: scrub freed frames while no interrupt is pending,
        // then sleep (WFI at EL2, interrupts masked: it wakes on a pending one)
        // until the earliest waiting vCPU's timer deadline, the next tick or a
        // kick; take the interrupts that woke it, and look again. `loaded` is
        // the vCPU whose state is in the CPU (its virtual timer can fire here);
        // it is returned at once if its VM has a request to act on.
        // Returns the vCPU to run, or null when every VM has stopped.
        private static Vcpu IdleUntilRunnable(PhysicalCpu cpu, Vcpu loaded)
        {
            El2Clock.Charge(cpu);                    // idling is nobody's work
            Vcpu chosen = IdleLoop(cpu, loaded);
            El2Clock.Start(cpu);
            return chosen;
        }

        private static Vcpu IdleLoop(PhysicalCpu cpu, Vcpu loaded)
        {
            while (true)
            {
                if (loaded != null && loaded.Vm.HasRequest) return loaded;
                Vcpu next = NextRunnable(cpu, loaded);
                if (next != null) return next;
                if (LiveVms() == 0) return null;
                ArmTimer(cpu);
                // (Stopping as soon as another CPU waits for the lock, too:
                // its exit matters more than a clean frame.)
                while ((SysReg.ReadIsrEl1() & IsrIrqPending) == 0 && !Lock.HasWaiters &&
                       Kernel.Frames.ScrubSome(IdleScrubStep) != 0) { }
                // Asleep without the lock: the other CPUs go on handling
                // exits, and one that makes a vCPU runnable kicks this one.
                cpu.Idle = true;
                Cpus.IdleCount++;
                Lock.Release(cpu);
                Cpu.WaitForInterrupt();
                Lock.Acquire(cpu);
                Cpus.IdleCount--;
                cpu.Idle = false;
                IdleSleeps++;
                TakeInterruptsWhileIdle(cpu);
                Housekeeping(cpu);
            }
        }

        // What woke the idle CPU: the kick SGI needs nothing more; the EL2
        // timer is stopped (its level would signal again at once; ArmTimer
        // re-arms it); the loaded vCPU's virtual timer (it waits, its state
        // still here) raises its line, under its VM's lock. That lock is
        // taken before the first acknowledge: a CPU must never wait for a
        // lock with an interrupt active (between IAR and EOI), because the
        // running priority then hides the kick SGI that would wake it from
        // the lock's sleep (kernel/Smp/SpinLock.cs).
        private static void TakeInterruptsWhileIdle(PhysicalCpu cpu)
        {
            VirtualMachine vm = cpu.Loaded?.Vm;
            vm?.Lock.AcquireIfShared(cpu);
            for (uint intid = Gic.Acknowledge(); intid != Gic.SpuriousIntid; intid = Gic.Acknowledge())
            {
                if (intid == Gic.VirtualTimerIntid) GuestExits.VirtualTimerFired();
                else if (intid == Gic.HypTimerIntid) HypTimer.Stop();
                Gic.EndOfInterrupt(intid);
            }
            vm?.Lock.ReleaseIfShared(cpu);
        }

        // Frames scrubbed per step of the idle loop: an interrupt waits at
        // most one step (about 2,500 instructions).
        private const uint IdleScrubStep = 16;
        private const ulong IsrIrqPending = 1UL << 7;

        // The EL2 timer ends the running vCPU's slice, or wakes a waiting vCPU
        // at its timer's deadline if that comes first.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void ArmTimer(PhysicalCpu cpu)
        {
            Vcpu current = cpu.Loaded;
            if (Waiting == 0 && (current == null || !current.Timers.PhysicalArmed))
                HypTimer.Arm(s_sliceTicks);   // the common case: only the slice
            else ArmForDeadlines(cpu, current);
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private static void ArmForDeadlines(PhysicalCpu cpu, Vcpu current)
        {
            ulong now = SysReg.ReadCntpctEl0();
            ulong at = now + s_sliceTicks;
            // The loaded vCPU's emulated physical timer is the hypervisor's to
            // fire (once its line is high, Housekeeping has raised it: no need).
            if (current != null)
            {
                ulong physical = current.Timers.PhysicalDeadline;
                if (physical > now && physical < at) at = physical;
            }
            for (int i = 0; Waiting != 0 && i < s_vcpuCount; i++)
            {
                if (s_vcpus[i].State != VmState.Waiting || !Mine(cpu, s_vcpus[i])) continue;
                ulong deadline = TimerDeadline(s_vcpus[i]);
                if (deadline < at) at = deadline;
            }
            HypTimer.Arm(at > now ? at - now : 1);
        }

        // When the vCPU's first timer fires, in physical counter ticks, or
        // ulong.MaxValue if both are off, masked or too far away: the virtual
        // one (kernel/Vm/VirtualTimerDeadline.cs; the loaded vCPU's is read
        // from the CPU) or the emulated physical one (GuestTimers).
        private static ulong TimerDeadline(Vcpu vcpu)
        {
            ulong virtualDeadline = VirtualDeadline(vcpu), physicalDeadline = vcpu.Timers.PhysicalDeadline;
            return virtualDeadline < physicalDeadline ? virtualDeadline : physicalDeadline;
        }

        private static ulong VirtualDeadline(Vcpu vcpu)
        {
            bool live = vcpu == Current;
            ulong ctl = live ? SysReg.ReadCntvCtlEl0() : vcpu.Context.El1.CntvCtl;
            ulong cval = live ? SysReg.ReadCntvCvalEl0() : vcpu.Context.El1.CntvCval;
            return VirtualTimerDeadline.Physical(ctl, cval, vcpu.Vm.CntvOffset);
        }

        // The loaded vCPU's state goes to its context, `next`'s comes in.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void SwitchTo(PhysicalCpu cpu, Vcpu next)
        {
            Vcpu previous = cpu.Loaded;
            if (previous != null)
            {
                SaveGic(cpu, previous);
                previous.Context.Save();
                Unload(cpu, previous, switching: true);
            }
            Load(cpu, next, previous != null);
        }

        // PSCI CPU_OFF: the vCPU leaves the CPU and stays off until another
        // vCPU of its VM turns it on (the handler cleared PoweredOn; the
        // last vCPU's CPU_OFF stops the VM instead: VirtualPsci). A CPU_ON
        // that another CPU handled meanwhile finds it here: it goes straight
        // back to the run queue, with the registers CPU_ON gave it.
        private static void TurnOff(PhysicalCpu cpu, Vcpu vcpu)
        {
            SaveGic(cpu, vcpu);
            SetState(vcpu, VmState.Off);
            Unload(cpu, vcpu);
            NoticeNow(cpu, vcpu);
            LoadNext(cpu);
        }

        // The list registers go back to the vCPU's GIC state (its VM's).
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void SaveGic(PhysicalCpu cpu, Vcpu vcpu)
        {
            LockVm(cpu, vcpu.Vm);
            vcpu.VgicCpu.Save();
            UnlockVm(cpu, vcpu.Vm);
        }

        // A VM's lock around the switch's GIC work, with several CPUs only
        // (vm.Lock.AcquireIfShared, but with SpinLock.Smp tested before the
        // lock is even loaded: with one CPU, each costs a load and a branch).
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void LockVm(PhysicalCpu cpu, VirtualMachine vm)
        {
            if (SpinLock.Smp) vm.Lock.Acquire(cpu);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void UnlockVm(PhysicalCpu cpu, VirtualMachine vm)
        {
            if (SpinLock.Smp) vm.Lock.Release(cpu);
        }

        // Before the exit path enters the loaded vCPU: what became
        // deliverable to it since it was loaded goes into its list registers.
        public static void RefillLoaded(PhysicalCpu cpu)
        {
            Vcpu vcpu = cpu.Loaded;
            if (vcpu == null || !vcpu.VgicCpu.Dirty) return;
            vcpu.Vm.Lock.AcquireIfShared(cpu);
            vcpu.VgicCpu.Fill();
            vcpu.Vm.Lock.ReleaseIfShared(cpu);
        }

        // The VM stops or resets: this vCPU leaves the CPU, the VM's vCPUs on
        // no CPU are put off, those running elsewhere are kicked out of their
        // guests (each comes here from its own exit), and the last one out
        // finishes the job. Then the next runnable vCPU is loaded.
        private static void Leave(PhysicalCpu cpu, Vcpu vcpu)
        {
            SaveGic(cpu, vcpu);                          // its list registers leave the CPU empty
            VirtualMachine vm = vcpu.Vm;
            for (int i = 0; i < vm.Vcpus.Length; i++)
            {
                Vcpu other = vm.Vcpus[i];
                if (other == vcpu) continue;
                if (other.LoadedIn != null) Gic.SendSgi(other.LoadedIn.Mpidr, Cpus.KickIntid);
                else if (other.State != VmState.Off) SetState(other, VmState.Off);
            }
            Unload(cpu, vcpu);                           // the last one out finishes the VM
            LoadNext(cpu);
        }

        // No vCPU of `vm` is in any CPU any more: carry out its request.
        // SYSTEM_RESET builds it again from its image with fresh memory
        // (vCPU 0 runnable, the others off); a stop, or a rebuild that finds
        // no memory, tears it down.
        private static void Finish(PhysicalCpu cpu, VirtualMachine vm)
        {
            vm.Lock.AcquireIfShared(cpu);
            FinishLocked(vm);
            vm.Lock.ReleaseIfShared(cpu);
        }

        private static void FinishLocked(VirtualMachine vm)
        {
            vm.Uart.Flush(vm);
            if (vm.StopReason == null && vm.ResetPending)
            {
                vm.Resets++;
                vm.ResetPending = false;
                vm.HasRequest = false;
                if (VmBuilder.Rebuild(vm))
                {
                    for (int i = 0; i < vm.Vcpus.Length; i++) SetState(vm.Vcpus[i], i == 0 ? VmState.Runnable : VmState.Off);
                    return;
                }
                vm.RequestStop("SYSTEM_RESET: not enough host memory to rebuild");
            }
            Log.Write("[hv] vm ");
            Log.Write(vm.Name);
            Log.Write(" stopped: ");
            Log.Line(vm.StopReason);
            for (int i = 0; i < vm.Vcpus.Length; i++) SetState(vm.Vcpus[i], VmState.Stopped);
            VmTeardown.Destroy(vm);
        }

        // The CPU holds no vCPU's state (after a stop, a reset or CPU_OFF):
        // the next runnable vCPU, once there is one, is loaded;
        // with none left the hypervisor prints its summary and powers off.
        private static void LoadNext(PhysicalCpu cpu)
        {
            Vcpu next = NextRunnable(cpu, null) ?? IdleUntilRunnable(cpu, null);
            if (next == null) Summary.PrintAndPowerOff();
            Load(cpu, next);
            ArmTimer(cpu);
        }

        // Makes `vcpu` the running one on this CPU: its VM's VMID checked (and
        // renewed if its generation is gone), the VM's EL2 controls and the
        // vCPU's saved state loaded; the exit path then enters its frame,
        // which tells the next exit where this CPU's stack is. No TLB flush:
        // TLB entries carry the VMID, so the next VM cannot hit the previous
        // one's translations.
        // `charged`: Unload has just charged the vCPU that left, and its
        // reading of the EL2 instruction counter starts this one's count (one
        // reading per switch; the loading is then the incoming VM's work).
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Load(PhysicalCpu cpu, Vcpu vcpu, bool charged = false)
        {
            VirtualMachine vm = vcpu.Vm;
            EnsureVmid(vm);
            SysReg.WriteVmControls(vm.Vtcr, vm.Vttbr, WfeTrap(vcpu, vm.Hcr), vm.CntvOffset, Vmpidr(vcpu.Mpidr));
            vcpu.Context.Restore();
            TrapFrame* frame = vcpu.Context.Frame;
            frame->HvStack = cpu.StackTop;
            cpu.EntryFrame = frame;
            LockVm(cpu, vm);
            vcpu.VgicCpu.Restore();
            vcpu.Timers.Loaded(cpu);
            vcpu.VgicCpu.Fill();
            UnlockVm(cpu, vm);
            DebugState.Switch(vcpu.Debug, cpu);
            SetState(vcpu, VmState.Running);
            cpu.Loaded = vcpu;
            vcpu.LoadedIn = cpu;
            vcpu.LastCpu = cpu.Index;
            if (!charged) El2Clock.Start(cpu);
            Vmids.SetActive(cpu.Index, vm.VmidTag);
            cpu.Switches++;
            if (!vcpu.Announced) Announce(vcpu);
        }

        // WFE is trapped only while another vCPU waits for a CPU: a guest
        // spinning on a lock with WFE then hands its CPU over. With nobody
        // waiting (as many vCPUs as CPUs), the trap would only make every
        // spin of every guest lock an exit under the VM's lock; KVM
        // clears it in the same case. The slice still ends every vCPU's turn.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static ulong WfeTrap(Vcpu loading, ulong hcr) =>
            Runnable > (loading.State == VmState.Runnable ? 1 : 0) ? hcr | Hcr.TWE : hcr & ~Hcr.TWE;

        // VMPIDR_EL2: what the guest reads as MPIDR_EL1. Bit 31 is RES1; U
        // (bit 30) 0: part of a multiprocessor system; MT 0.
        private static ulong Vmpidr(ulong affinity) => 1UL << 31 | affinity;

        // `vcpu`'s registers have left this CPU (saved, or its VM is ending).
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        // `switching`: Load follows at once, under the same scheduler lock:
        // it makes the next VM's VMID the CPU's active one and its debug
        // registers the CPU's (DebugState.Switch puts this one's down if
        // need be); otherwise the CPU holds neither until it loads a vCPU again.
        private static void Unload(PhysicalCpu cpu, Vcpu vcpu, bool switching = false)
        {
            El2Clock.Charge(cpu);
            cpu.Loaded = null;
            vcpu.LoadedIn = null;
            if (!switching)
            {
                DebugState.PutDown(cpu);
                Vmids.SetActive(cpu.Index, 0);
            }
            // Its VM may be waiting for it to leave (a stop or reset, asked
            // by this vCPU or another): the last vCPU out finishes the VM.
            if (vcpu.Vm.HasRequest) LeftForRequest(cpu, vcpu);
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private static void LeftForRequest(PhysicalCpu cpu, Vcpu vcpu)
        {
            // Nothing of an ending VM stays in the CPU, not even for the
            // moment until a switch loads the next one.
            DebugState.PutDown(cpu);
            Vmids.SetActive(cpu.Index, 0);
            VirtualMachine vm = vcpu.Vm;
            if (vm.State == VmState.Stopped) return;
            if (vcpu.State != VmState.Off) SetState(vcpu, VmState.Off);
            if (!AnyLoaded(vm)) Finish(cpu, vm);
        }

        // Some vCPU of `vm` still has its registers in a CPU.
        private static bool AnyLoaded(VirtualMachine vm)
        {
            for (int i = 0; i < vm.Vcpus.Length; i++) if (vm.Vcpus[i].LoadedIn != null) return true;
            return false;
        }

        // [hv] vm a: VTCR_EL2=... VTTBR_EL2=... (VMID n) HCR_EL2=... entry=...
        // (for vCPU 0; a secondary's first entry says where it started)
        private static void Announce(Vcpu vcpu)
        {
            VirtualMachine vm = vcpu.Vm;
            vcpu.Announced = true;
            Log.Write("[hv] vm ");
            Log.Write(vm.Name);
            if (vcpu.Index != 0)
            {
                Log.Write(": vcpu ");
                Log.Dec((ulong)vcpu.Index);
                Log.Write(" on at ");
                Log.Hex(vcpu.Context.Frame->Elr);
                Log.NewLine();
                return;
            }
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

        // VMIDs are handed out lazily per generation (kernel/Vm/VmidAllocator.cs).
        // A new generation means every VMID may now name a different VM, so
        // every TLB entry of EL1&0 goes: TLBI ALLE1IS, broadcast to every CPU
        // (VMs running elsewhere keep their reserved VMIDs and refill).
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void EnsureVmid(VirtualMachine vm)
        {
            if (!Vmids.IsCurrent(vm.VmidTag)) RenewVmid(vm);
        }

        private static void RenewVmid(VirtualMachine vm)
        {
            vm.Vmid = Vmids.Assign(ref vm.VmidTag, out bool flushAll);
            vm.Vttbr = Stage2Layout.Vttbr(vm.ActiveStage2Root, vm.Vmid);
            if (flushAll)
            {
                TlbiAllE1();
                Tlb.Rollovers++;
            }
        }

        // Round-robin: the first runnable vCPU after `after` (wrapping), or
        // `after` itself when it is the only one still runnable. Only vCPUs
        // this CPU may load: not in another CPU, their VM without a pending
        // stop or reset, and a VMID to be had (CanRun).
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vcpu NextRunnable(PhysicalCpu cpu, Vcpu after)
        {
            Vcpu[] vcpus = s_vcpus;
            int count = s_vcpuCount;
            int at = after == null ? 0 : after.QueueIndex + 1;
            for (int i = 0; i < count; i++, at++)
            {
                if (at >= count) at = 0;
                Vcpu vcpu = vcpus[at];
                VmState state = vcpu.State;
                if (state != VmState.Runnable && state != VmState.Running) continue;
                if ((vcpu.LoadedIn == null || vcpu.LoadedIn == cpu) && !vcpu.Vm.HasRequest &&
                    (Vmids.IsCurrent(vcpu.Vm.VmidTag) || Vmids.CanRun(vcpu.Vm.VmidTag, cpu.Index))) return vcpu;
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

        // Someone else is ready for a CPU (the running vCPU is Running, not
        // Runnable). May count a vCPU that another CPU holds while it idles:
        // the caller then yields and finds nobody, which costs a little time.
        public static bool OthersRunnable() => Runnable != 0;

        // VM switches on every CPU so far (each CPU counts its own).
        public static ulong Switches
        {
            get
            {
                ulong n = 0;
                for (int i = 0; i < Cpus.Count; i++) n += Cpus.At(i).Switches;
                return n;
            }
        }
    }
}
