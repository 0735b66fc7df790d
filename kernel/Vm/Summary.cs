using Hypervisor.Arch;
using Hypervisor.Devices;
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
            Log.Stat("frames_scrubbed_idle", f.ScrubbedIdle);
            Log.Stat("frames_scrubbed_on_allocation", f.ScrubbedOnAllocation);
            Log.Stat("heap_used_start", HeapAtStart);
            Log.Stat("heap_used_end", Hypervisor.Runtime.Heap.BytesInUse);
            Log.Stat("vm_switches", Scheduler.Switches);
            Log.Stat("cpu_idle_sleeps", Scheduler.IdleSleeps);
            // Every lock's acquisitions that found it taken, and the waits
            // that slept: all locks together, then the scheduler's alone.
            ulong contended = 0, sleeps = 0;
            AddLock(Scheduler.Lock, ref contended, ref sleeps);
            AddLock(Hypervisor.Smp.Cpus.FramesLock, ref contended, ref sleeps);
            AddLock(Hypervisor.Smp.Cpus.HeapLock, ref contended, ref sleeps);
            AddLock(Hypervisor.Smp.Cpus.ConsoleLock, ref contended, ref sleeps);
            for (int i = 0; i < Scheduler.Count; i++) AddLock(Scheduler.At(i).Lock, ref contended, ref sleeps);
            Log.Stat("hv_lock_contended", contended);
            Log.Stat("hv_lock_sleeps", sleeps);
            Log.Stat("sched_lock_contended", Scheduler.Lock.Contended);
            Log.Stat("vmid_rollovers", Tlb.Rollovers);
            Log.NewLine();
            if (f.FreeFrames != FreeFramesAtStart)
                Log.Line("[hv] WARNING: frames leaked");
            if (Hypervisor.Runtime.Heap.BytesInUse != HeapAtStart)
                Log.Line("[hv] WARNING: heap grew while VMs ran");
            Log.Line("[hv] all VMs stopped; powering off");
            Psci.PowerOff();
        }

        private static void AddLock(Hypervisor.Smp.SpinLock l, ref ulong contended, ref ulong sleeps)
        {
            contended += l.Contended;
            sleeps += l.Sleeps;
        }

        // STAT vm=a exits=... stage2_faults=... mmio=... hvc=... tlbi_ipa=... ...
        public static void PrintVm(VirtualMachine vm)
        {
            VmCounters c = vm.Counters;
            Log.Write("STAT vm=");
            Log.Write(vm.Name);
            Log.Stat("exits", c.Exits);
            Log.Stat("exits_hvc", c.ExitsHvc);
            Log.Stat("exits_smc", c.ExitsSmc);
            Log.Stat("exits_dabt", c.ExitsDataAbort);
            Log.Stat("exits_iabt", c.ExitsInstructionAbort);
            Log.Stat("exits_wfx", c.ExitsWfx);
            Log.Stat("exits_sysreg", c.ExitsSysReg);
            Log.Stat("exits_irq", c.ExitsIrq);
            Log.Stat("exits_other", c.ExitsOther);
            Log.Stat("stage2_faults", c.Stage2Faults);
            Log.Stat("pages_prefaulted", c.PagesPrefaulted);
            Log.Stat("mmio_exits", c.MmioExits);
            Log.Stat("hypercalls", c.Hypercalls);
            Log.Stat("injected_aborts", c.InjectedAborts);
            Log.Stat("tlbi_ipas2e1is", c.TlbiIpa);
            Log.Stat("tlbi_vmalle1is", c.TlbiVmallE1);
            Log.Stat("tlbi_vmalls12e1is", c.TlbiVmallS12E1);
            Log.Stat("frames_peak", vm.PeakFrames);
            Log.Stat("resets", vm.Resets);
            ulong injected = 0, completed = 0;
            for (int i = 0; i < vm.Vcpus.Length; i++) { injected += vm.Vcpus[i].VgicCpu.Injected; completed += vm.Vcpus[i].VgicCpu.Completed; }
            Log.Stat("vgic_injected", injected);
            Log.Stat("vgic_completed", completed);
            Log.Stat("ptimer_traps", c.PhysicalTimerTraps);
            Log.Stat("pmu_traps", c.PmuTraps);
            Log.Stat("sgis_sent", c.SgisSent);
            if (El2Clock.Available) Log.Stat("el2_instructions", c.El2Instructions);
            if (vm.Shadow != null || vm.Direct != null)
            {
                Log.Write(vm.Shadow != null ? " paging=shadow" : " paging=direct");
                Log.Stat("register_traps", c.RegisterTraps);
                Log.Stat("walk_rules_refused", c.WalkRulesRefused);
                Log.Stat("tlbi_vaae1is", c.TlbiVa);
            }
            if (vm.Shadow != null)
            {
                Log.Stat("table_write_traps", c.TableWriteTraps);
                Log.Stat("guest_tlbi_traps", c.GuestTlbiTraps);
                Log.Stat("hidden_faults", c.HiddenFaults);
                Log.Stat("shadow_pages_built", vm.Shadow.Tables.PagesBuilt);
                Log.Stat("shadow_pages_freed", vm.Shadow.Tables.PagesFreed);
                Log.Stat("shadow_roots_built", vm.Shadow.Tables.RootsBuilt);
                Log.Stat("shadow_root_hits", vm.Shadow.Tables.RootHits);
                Log.Stat("shadow_root_evictions", vm.Shadow.Tables.RootEvictions);
                Log.Stat("shadow_mirrors_shared", vm.Shadow.Tables.MirrorsShared);
                Log.Stat("shadow_leaves_fixed", vm.Shadow.Tables.LeavesFixed);
                Log.Stat("shadow_entries_deferred", vm.Shadow.Tables.EntriesDeferred);
                Log.Stat("shadow_deferred_filled", vm.Shadow.Tables.DeferredFilled);
            }
            if (vm.Direct != null)
            {
                Log.Stat("direct_updates", c.DirectUpdates);
                Log.Stat("direct_batches", c.DirectBatches);
                Log.Stat("direct_refused", c.DirectRefused);
            }
            if (vm.Balloon != null)
            {
                VirtioBalloon b = vm.Balloon;
                Log.Stat("balloon_pages", b.BalloonedPages);
                Log.Stat("balloon_inflated", b.Inflated);
                Log.Stat("balloon_deflated", b.Deflated);
                Log.Stat("balloon_frames_returned", b.FramesReturned);
                Log.Stat("balloon_runs", b.Runs);
                Log.Stat("balloon_bad_pfns", b.BadPfns);
                Log.Stat("balloon_already", b.AlreadyBallooned);
                Log.Stat("balloon_not_ballooned", b.NotBallooned);
                Log.Stat("balloon_malformed", b.MalformedRequests);
                Log.Stat("ballooned_touches", c.BalloonedTouches);
                Log.Stat("balloon_budget_stops", b.BudgetStops);
                Log.Stat("balloon_owed_pages", b.OwedPages);
                Log.Stat("balloon_owed_refused", b.OwedRefused);
                Log.Stat("remap_refused", b.RemapRefused);
                if (El2Clock.Available)
                {
                    Log.Stat("el2_faults", c.El2Faults);
                    Log.Stat("el2_balloon", c.El2Balloon);
                    Log.Stat("el2_balloon_unmap", c.El2BalloonUnmap);
                    Log.Stat("el2_balloon_flush", c.El2BalloonFlush);
                    Log.Stat("el2_balloon_free", c.El2BalloonFree);
                    Log.Stat("el2_at_balloon_target_set", b.El2AtTargetSet);
                    Log.Stat("el2_at_balloon_target", b.El2AtTarget);
                }
                if (b.Transport != null)
                {
                    ulong malformed = 0;
                    for (int q = 0; q < b.QueueCount; q++)
                        if (b.Transport.Queue(q) != null) malformed += b.Transport.Queue(q).Counters.Malformed;
                    Log.Stat("virtq_malformed", malformed);
                    Log.Stat("virtio_queue_refused", b.Transport.Counters.QueueConfigureFailed);
                    Log.Stat("virtio_queue_rewrite_refused", b.Transport.Counters.QueueWriteWhileReady);
                    Log.Stat("virtio_notify_bad_queue", b.Transport.Counters.NotifyBadQueue);
                }
            }
            Log.NewLine();
        }
    }
}
