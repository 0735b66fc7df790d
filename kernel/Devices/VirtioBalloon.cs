using System;
using Hypervisor.Console;
using Hypervisor.Mm;
using Hypervisor.Vm;

namespace Hypervisor.Devices
{
    // The virtio balloon (device id 5): VM-level paging, the last mechanism of
    // the memory-virtualization lecture. The host sets a target (config
    // num_pages, in 4 KiB pages); the guest's driver picks pages it will not
    // use and lists their page numbers on the inflate queue; the hypervisor
    // unmaps them from stage 2, scrubs the frames and returns them to the host
    // pool, where another VM's demand faults find them. Deflating hands page
    // numbers back; they get fresh zeroed frames on next touch.
    //
    // Queues: 0 inflate, 1 deflate, 2 stats (VIRTIO_BALLOON_F_STATS_VQ).
    // DEFLATE_ON_OOM is offered with balloon=oom: it asks the guest to deflate
    // before it runs out of memory, a guest-side policy the device only has to
    // announce.
    public sealed class VirtioBalloon : VirtioBackend
    {
        public const uint FeatureStatsVq = 1u << 1;
        public const uint FeatureDeflateOnOom = 1u << 2;
        private const int InflateQueue = 0, DeflateQueue = 1, StatsQueue = 2;
        // Page numbers copied out of guest memory at a time (a whole request
        // of this project's driver, four of Linux's), into a buffer of the
        // device's own: the guest cannot change them while they are checked
        // and used. A field, not a stackalloc: under the VM's lock, and a
        // 4 KiB stackalloc would be zeroed on every request.
        private const int PfnBatch = 1024;
        // (4 bytes more: a chunk starts 4 bytes in when the guest's list
        // does, so both sides of the copy are aligned alike and it moves 8
        // bytes a step, Memory.Copy.)
        private readonly byte[] _pfnChunk = new byte[PfnBatch * 4 + 4];
        // Page numbers one request (one chain, all its buffers) may carry.
        // Linux sends 256; this guest's driver 1024.
        public const ulong MaxPfnsPerChain = 4096;

        private readonly BalloonBitmap _ballooned;   // one bit per page of the VM's RAM
        private readonly Reclaimer _reclaimer;
        private readonly uint _bootTarget;

        public uint TargetPages;                  // config num_pages: what the host wants
        public uint ActualPages;                  // config actual: what the guest says it gave
        public ulong BalloonedPages;              // what the hypervisor holds
        // Pages the VM must not back with frames although they are not in its
        // balloon: the boot balloon until the guest inflates it (the admission
        // check counted the VM's memory minus boot_balloon, so the host never
        // had frames for them), and pages a device reset took out of the
        // balloon behind the host's back. Inflating pays the debt off; the
        // host forgives it by lowering the target. BalloonedPages + OwedPages
        // never exceeds the VM's pages.
        public ulong OwedPages;
        public ulong OwedRefused, RemapRefused;   // demand faults and remaps refused for it

        // What happened, for the monitor and the summary.
        public ulong Runs;   // runs of consecutive pages taken back (one stage-2 walk each)
        public ulong Inflated, Deflated, FramesReturned, BadPfns, AlreadyBallooned, NotBallooned, MalformedRequests;
        public ulong StatFree, StatTotal, StatAvailable, StatUpdates;
        private bool _statsHeld;
        private ushort _statsHead;

        private readonly bool _deflateOnOom;

        // Frames unmapped in the current inflate batch, freed once its TLB
        // maintenance has completed (kernel/Mm/UnmapBatch.cs).
        public readonly UnmapBatch Unmapped = new UnmapBatch((int)MaxPfnsPerChain);
        // Frames GuestMemory.ReclaimRun unmapped, staged until the request
        // ends (GuestMemory.EndBatch, or sooner if this fills up) and then
        // held in one UnmapBatch.Hold (GuestMemory.HoldStaged) rather than
        // one per run. A field rather than a stackalloc, which would be
        // zeroed and guarded by a stack cookie on every request (under the
        // VM's lock: one request at a time).
        public readonly ulong[] RunFrames = new ulong[PfnBatch];
        public int Staged;
        public readonly GuestMemory.BalloonSink UnmapSink;

        public VirtioBalloon(VirtualMachine vm, ulong bootBalloonBytes, bool deflateOnOom = false)
        {
            _deflateOnOom = deflateOnOom;
            UnmapSink = new GuestMemory.BalloonSink(vm);
            _ballooned = new BalloonBitmap(vm.RamBase >> 12, vm.RamSize >> 12);
            _reclaimer = new Reclaimer(this, vm);
            _bootTarget = (uint)(bootBalloonBytes >> 12);
            if (_bootTarget > _ballooned.PageCount) _bootTarget = (uint)_ballooned.PageCount;
            TargetPages = _bootTarget;
            OwedPages = _bootTarget;
        }

        public override uint DeviceId => 5;
        // DEFLATE_ON_OOM only when asked (vms.conf balloon=oom): with it Linux
        // keeps ballooned pages in MemTotal and gives them back under memory
        // pressure; without it MemTotal shrinks as the balloon inflates.
        public override ulong DeviceFeatures => _deflateOnOom ? FeatureStatsVq | FeatureDeflateOnOom : FeatureStatsVq;
        public override int QueueCount => 3;
        public override uint ConfigSize => 8;

        // The guest's driver has finished setting the device up (DRIVER_OK).
        public bool DriverReady => Transport != null && (Transport.Status & 4) != 0;

        public bool IsBallooned(ulong ipa) => _ballooned.IsSet(ipa >> 12);

        // How many more frames the VM may own: its pages minus those in the
        // balloon and those it owes (see OwedPages). 0: a demand fault is
        // refused and the guest gets an abort, as for a ballooned page.
        public ulong Headroom(ulong framesOwned)
        {
            ulong limit = _ballooned.PageCount - BalloonedPages - OwedPages;
            return framesOwned >= limit ? 0 : limit - framesOwned;
        }

        // Fault-around's window `want` (bit i: page i of the window) cut down
        // to the headroom, always keeping the faulting page `keep`.
        public ulong LimitToHeadroom(ulong want, int keep, ulong framesOwned)
        {
            ulong room = Headroom(framesOwned);
            if (room >= 64) return want;   // the common case: room for any window
            ulong n = 0;
            for (ulong w = want; w != 0; w &= w - 1) n++;
            for (int i = 63; i >= 0 && n > room; i--)
            {
                ulong bit = 1UL << i;
                if (i == keep || (want & bit) == 0) continue;
                want &= ~bit;
                n--;
            }
            return want;
        }

        // Which of `count` pages from `ipa` are ballooned (bit i for page i).
        // The run must not cross a 64-page boundary of RAM (fault-around's
        // aligned windows never do): it is then part of one bitmap word.
        public ulong BalloonedMask(ulong ipa, int count) => _ballooned.MaskAt(ipa >> 12, count);

        public override bool ReadConfig(uint offset, int size, out uint value)
        {
            value = 0;
            if (size != 4) return offset < ConfigSize;   // narrower reads of the le32 fields are not needed
            if (offset == 0) value = TargetPages;
            else if (offset == 4) value = ActualPages;
            return true;
        }

        public override bool WriteConfig(uint offset, int size, uint value)
        {
            if (offset == 4 && size == 4) ActualPages = value;   // num_pages belongs to the host
            return true;
        }

        // The host's side: how much memory this VM should give back.
        public void SetTarget(VirtualMachine vm, ulong bytes)
        {
            ulong pages = bytes >> 12;
            if (pages > _ballooned.PageCount) pages = _ballooned.PageCount;
            // Deflating lets the VM grow: only promise frames the host has.
            ulong held = BalloonedPages + OwedPages;
            if (pages < held && held - pages > Kernel.Frames.FreeFrames)
            {
                Log.Write("[hv] balloon ");
                Log.Write(vm.Name);
                Log.Line(": refused, the host does not have that much memory free");
                return;
            }
            TargetPages = (uint)pages;
            // (Charges whichever VM this CPU has loaded: with one CPU, the one
            // the monitor's poll interrupted.)
            El2Clock.Charge(Hypervisor.Smp.Cpus.This);
            El2AtTargetSet = vm.Counters.El2Instructions;
            // A lower target forgives what the VM still owes beyond it.
            if (pages < held) OwedPages = pages > BalloonedPages ? pages - BalloonedPages : 0;
            Log.Write("[hv] balloon ");
            Log.Write(vm.Name);
            Log.Write(": target ");
            Log.Dec(pages);
            Log.Write(" pages (");
            Log.Size(pages << 12);
            Log.Write("), in balloon now ");
            Log.Dec(BalloonedPages);
            Log.NewLine();
            SignalConfigChange();
        }

        // Work one exit may do. A notify is one trapped store, handled with
        // interrupts masked: without a bound a driver could list the same
        // chain in all 256 ring slots and make one exit read and check a
        // million page numbers while every other VM's timer waits. So the
        // device takes chains until this exit has read MaxPfnsPerExit page
        // numbers or MaxChainsPerExit chains (each chain whole, never half),
        // then stops: the chains not yet taken stay in the available ring,
        // untouched, and OnQueueNotify returns false, which makes the guest
        // execute its notify store again (MmioDevice.RepeatAccess). The next
        // exit carries on where this one stopped; in between, pending
        // interrupts are taken and the scheduler can switch VMs. A correct
        // driver sees a notify that takes a little longer, nothing else: no
        // request is lost or refused for being late. One exit reads at most
        // MaxPfnsPerExit - 1 + MaxPfnsPerChain page numbers (8191) and walks at
        // most MaxChainsPerExit chains of at most 256 descriptors.
        public const ulong MaxPfnsPerExit = 4096;
        public const int MaxChainsPerExit = 32;
        public ulong BudgetStops;                 // exits that stopped at the budget

        public override bool OnQueueNotify(VirtualMachine vm, int queueIndex, Virtqueue queue, GuestMemoryView memory)
        {
            uint mark = El2Clock.Mark();
            ulong before = BalloonedPages;
            bool finished = ProcessQueue(vm, queueIndex, queue, memory);
            vm.Counters.El2Balloon += El2Clock.Since(mark);
            if (before < TargetPages && BalloonedPages >= TargetPages) TargetReached(vm);
            return finished;
        }

        // The VM's EL2 instructions when the host last moved its target (STAT
        // el2_at_balloon_target_set) and when its balloon last grew to the
        // target (el2_at_balloon_target): an inflate's start and end as the
        // hypervisor sees them, so `make bench` counts the hypervisor's work
        // for an inflate without what the guest did before (idling while the
        // bench typed its commands: timer ticks, as many as the host's
        // scheduling allowed) or does afterwards.
        public ulong El2AtTargetSet, El2AtTarget;

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
        private void TargetReached(VirtualMachine vm)
        {
            El2Clock.Charge(Hypervisor.Smp.Cpus.This);   // the count up to this instruction
            El2AtTarget = vm.Counters.El2Instructions;
        }

        private bool ProcessQueue(VirtualMachine vm, int queueIndex, Virtqueue queue, GuestMemoryView memory)
        {
            Span<VirtqBuffer> buffers = stackalloc VirtqBuffer[4];
            ulong pfnsRead = 0;
            int chains = 0;
            bool finished = true;
            while (true)
            {
                if (chains == MaxChainsPerExit || pfnsRead >= MaxPfnsPerExit)
                {
                    BudgetStops++;
                    finished = false;
                    break;
                }
                if (queue.TryPop(out ushort head) != VirtqStatus.Ok) break;
                chains++;
                if (queue.ReadChain(head, buffers, out int count) != VirtqStatus.Ok)
                {
                    MalformedRequests++;
                    queue.PushUsed(head, 0);
                    continue;
                }
                if (queueIndex == StatsQueue)
                {
                    ReadStats(buffers.Slice(0, count), memory);
                    // The device keeps the stats buffer until it wants fresh
                    // numbers (RequestStats); then the driver refills it.
                    if (_statsHeld) queue.PushUsed(_statsHead, 0);
                    _statsHead = head;
                    _statsHeld = true;
                    continue;
                }
                pfnsRead += ProcessChain(vm, queueIndex == InflateQueue, buffers.Slice(0, count), memory);
                queue.PushUsed(head, 0);
            }
            SignalUsedBuffers();
            return finished;
        }

        // One inflate or deflate request: every device-readable buffer's page
        // numbers. A chain carrying more than MaxPfnsPerChain in all is refused
        // whole (counted), so one chain is a bounded piece of work. Returns the
        // page numbers read.
        private ulong ProcessChain(VirtualMachine vm, bool inflate, Span<VirtqBuffer> buffers, GuestMemoryView memory)
        {
            ulong total = 0;
            for (int i = 0; i < buffers.Length; i++)
                if (!buffers[i].DeviceWritable) total += buffers[i].Length / 4;
            if (total > MaxPfnsPerChain) { MalformedRequests++; return 0; }
            ulong read = 0;
            GuestMemory.BeginBatch(vm);
            for (int i = 0; i < buffers.Length; i++)
            {
                if (buffers[i].DeviceWritable) { MalformedRequests++; continue; }
                read += ProcessPfns(vm, inflate, buffers[i], memory);
            }
            GuestMemory.EndBatch(vm);
            return read;
        }

        // Asks the driver for fresh statistics by handing its buffer back.
        public void RequestStats(VirtualMachine vm)
        {
            if (!_statsHeld || Transport == null) return;
            Virtqueue q = Transport.Queue(StatsQueue);
            if (q == null) return;
            q.PushUsed(_statsHead, 0);
            _statsHeld = false;
            SignalUsedBuffers();
        }

        private ulong ProcessPfns(VirtualMachine vm, bool inflate, VirtqBuffer buffer, GuestMemoryView memory)
        {
            Span<byte> raw = _pfnChunk;
            ulong count = buffer.Length / 4;
            if ((buffer.Length & 3) != 0) { MalformedRequests++; return 0; }
            ulong done = 0;
            while (done < count)
            {
                int n = (int)Math.Min(count - done, (ulong)PfnBatch);
                ulong gpa = buffer.Gpa + done * 4;
                Span<byte> chunk = raw.Slice((int)(gpa & 4), n * 4);
                if (!memory.Read(gpa, chunk)) { MalformedRequests++; return done; }
                if (inflate) InflateBatch(chunk, n);
                else DeflateBatch(chunk, n);
                done += (ulong)n;
            }
            return done;
        }

        // Marks the valid page numbers as ballooned and takes their frames
        // back, a run of consecutive pages at a time (BalloonBitmap.Apply):
        // one bitmap update and one stage-2 walk per run.
        private unsafe void InflateBatch(Span<byte> raw, int n)
        {
            BalloonBitmap.Refused refused = default;
            ulong accepted;
            fixed (byte* p = raw)   // little-endian le32 page numbers, as on the wire
                accepted = _ballooned.Apply((uint*)p, n, toSet: true, _reclaimer, ref refused);
            BadPfns += refused.OutsideRam;
            AlreadyBallooned += refused.AlreadyThat;
            BalloonedPages += accepted;
            Inflated += accepted;
            OwedPages -= accepted < OwedPages ? accepted : OwedPages;
        }

        // A run of pages just marked ballooned: their frames go back to the host.
        private sealed class Reclaimer : BalloonBitmap.MovedRuns
        {
            private readonly VirtioBalloon _balloon;
            private readonly VirtualMachine _vm;

            public Reclaimer(VirtioBalloon balloon, VirtualMachine vm)
            {
                _balloon = balloon;
                _vm = vm;
            }

            public override void Moved(uint low, int length)
            {
                _balloon.FramesReturned += (ulong)GuestMemory.ReclaimRun(_vm, (ulong)low << 12, length);
                _balloon.Runs++;
            }
        }

        // Deflating only clears the pages' bits: the next touch maps a fresh,
        // zeroed frame (kernel/Trap/DataAborts.cs, demand paging).
        private unsafe void DeflateBatch(Span<byte> raw, int n)
        {
            BalloonBitmap.Refused refused = default;
            ulong returned;
            fixed (byte* p = raw)
                returned = _ballooned.Apply((uint*)p, n, toSet: false, null, ref refused);
            BadPfns += refused.OutsideRam;
            NotBallooned += refused.AlreadyThat;
            BalloonedPages -= returned;
            Deflated += returned;
        }

        // struct virtio_balloon_stat { le16 tag; le64 val; } packed, 10 bytes each.
        private void ReadStats(Span<VirtqBuffer> buffers, GuestMemoryView memory)
        {
            Span<byte> entry = stackalloc byte[10];
            for (int b = 0; b < buffers.Length; b++)
            {
                if (buffers[b].DeviceWritable) continue;
                for (uint off = 0; off + 10 <= buffers[b].Length && off < 10 * 16; off += 10)
                {
                    if (!memory.Read(buffers[b].Gpa + off, entry)) { MalformedRequests++; return; }
                    ushort tag = (ushort)(entry[0] | entry[1] << 8);
                    ulong value = GuestMemoryView.LoadU64(entry, 2);
                    if (tag == 4) StatFree = value;            // VIRTIO_BALLOON_S_MEMFREE
                    else if (tag == 5) StatTotal = value;      // VIRTIO_BALLOON_S_MEMTOT
                    else if (tag == 6) StatAvailable = value;  // VIRTIO_BALLOON_S_AVAIL
                }
            }
            StatUpdates++;
        }

        // Device reset (driver writes 0 to Status) or VM reset: every page is
        // the guest's again; the host's target goes back to the boot value.
        // The pages leave the balloon without the host's say: the VM owes
        // them until it inflates them again or the host lowers the target.
        public override void OnReset(VirtualMachine vm)
        {
            _ballooned.Clear();
            OwedPages += BalloonedPages;
            BalloonedPages = 0;
            ActualPages = 0;
            _statsHeld = false;
        }

        // The VM starts again from its image (SYSTEM_RESET).
        public void ResetForReboot()
        {
            OnReset(null);
            TargetPages = _bootTarget;
            OwedPages = _bootTarget;
        }
    }
}
