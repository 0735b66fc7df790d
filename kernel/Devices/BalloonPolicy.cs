using System;
using Hypervisor.Console;
using Hypervisor.Monitor;
using Hypervisor.Vm;

namespace Hypervisor.Devices
{
    // The seed lecture's demo as a host policy (`hv balloon_move=a:b:128M`):
    // ask VM a to inflate by 128 MiB; once it has, lower VM b's target (b
    // booted with pages in its balloon) by the same amount so b deflates and
    // can use them. Each step is printed with the host's free-frame count, so
    // the frames can be seen leaving a and arriving at b. Polled on every
    // scheduler tick, like the monitor.
    public static class BalloonPolicy
    {
        private static VirtualMachine s_from, s_to;
        private static ulong s_pages;
        private static uint s_fromTarget, s_toTarget;
        private static uint s_freeBefore;
        private static ulong s_mappedAtHandover;
        private static int s_phase;           // 0 waiting for both drivers, 1 a inflating, 2 b deflating, 3 b using them, 4 done

        public static void Configure(ReadOnlySpan<byte> spec)
        {
            if (spec.IsEmpty) return;
            int first = IndexOf(spec, 0), second = first < 0 ? -1 : IndexOf(spec, first + 1);
            if (second < 0 || !CommandLine.TryParseSize(spec.Slice(second + 1), out ulong bytes) || bytes == 0)
            {
                Log.Line("[hv] balloon_move: expected from:to:size, e.g. a:b:128M; ignored");
                return;
            }
            s_from = Scheduler.FindByName(spec.Slice(0, first));
            s_to = Scheduler.FindByName(spec.Slice(first + 1, second - first - 1));
            if (s_from == null || s_to == null || s_from.Balloon == null || s_to.Balloon == null || s_from == s_to)
            {
                Log.Line("[hv] balloon_move: both VMs must exist, differ and have balloon=on; ignored");
                s_from = s_to = null;
                return;
            }
            s_pages = bytes >> 12;
            Log.Write("[hv] balloon_move: ");
            Log.Size(bytes);
            Log.Write(" from vm ");
            Log.Write(s_from.Name);
            Log.Write(" to vm ");
            Log.Write(s_to.Name);
            Log.NewLine();
        }

        // The test inlined into the scheduler: most runs have no policy.
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        public static void Tick()
        {
            if (s_from != null && s_phase != 4) Advance();
        }

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
        private static void Advance()
        {
            if (s_from.State == VmState.Stopped || s_to.State == VmState.Stopped) { s_phase = 4; return; }
            VirtioBalloon a = s_from.Balloon, b = s_to.Balloon;
            if (s_phase == 0)
            {
                // Both drivers up, and b has given its boot balloon.
                if (!a.DriverReady || !b.DriverReady || b.BalloonedPages < b.TargetPages) return;
                s_freeBefore = Kernel.Frames.FreeFrames;
                s_fromTarget = a.TargetPages + (uint)s_pages;
                Step("asking", s_from, s_pages);
                SetTarget(s_from, (ulong)s_fromTarget << 12);
                s_phase = 1;
            }
            else if (s_phase == 1)
            {
                if (a.BalloonedPages < s_fromTarget) return;
                Step("received", s_from, s_pages);
                s_toTarget = b.TargetPages > s_pages ? b.TargetPages - (uint)s_pages : 0;
                SetTarget(s_to, (ulong)s_toTarget << 12);
                s_phase = 2;
            }
            else if (s_phase == 2)
            {
                if (b.BalloonedPages > s_toTarget) return;
                Step("handed", s_to, s_pages);
                s_mappedAtHandover = s_to.Counters.PagesMapped;
                s_phase = 3;
            }
            else if (s_phase == 3)
            {
                // b's demand faults take frames from the host's pool, which a
                // refilled (clean frames first: a's are scrubbed while the CPU
                // idles). Pages, not faults: with fault_around one fault maps many.
                if (s_to.Counters.PagesMapped - s_mappedAtHandover < s_pages) return;
                Step("in use by", s_to, s_to.Counters.PagesMapped - s_mappedAtHandover);
                s_phase = 4;
            }
        }

        // At a scheduling point (the scheduler lock held): the VM's device
        // is changed under the VM's lock.
        private static void SetTarget(VirtualMachine vm, ulong bytes)
        {
            vm.Lock.AcquireIfShared(Hypervisor.Smp.Cpus.This);
            vm.Balloon.SetTarget(vm, bytes);
            vm.Lock.ReleaseIfShared(Hypervisor.Smp.Cpus.This);
        }

        // [hv] balloon_move: asking vm a 32768 pages (128MiB); host frames free 60000 (+0)
        private static void Step(string what, VirtualMachine vm, ulong pages)
        {
            uint free = Kernel.Frames.FreeFrames;
            Log.Write("[hv] balloon_move: ");
            Log.Write(what);
            Log.Write(what[0] == 'h' ? " to vm " : what[0] == 'r' ? " from vm " : " vm ");
            Log.Write(vm.Name);
            Log.Write(" ");
            Log.Dec(pages);
            Log.Write(" pages (");
            Log.Size(pages << 12);
            Log.Write("); host frames free ");
            Log.Dec(free);
            Log.Write(free >= s_freeBefore ? " (+" : " (-");
            Log.Dec(free >= s_freeBefore ? free - s_freeBefore : s_freeBefore - free);
            Log.Line(")");
        }

        private static int IndexOf(ReadOnlySpan<byte> s, int from)
        {
            for (int i = from; i < s.Length; i++) if (s[i] == ':') return i;
            return -1;
        }
    }
}
