using Hypervisor.Trap;

namespace Guest
{
    // How this guest changes its page tables: one interface, two backends.
    //
    //   NativeTables  an ordinary OS: tables are its own memory, it stores
    //                 entries and issues TLBIs itself. Used with paging=stage2
    //                 (nothing traps) and paging=shadow (the stores trap,
    //                 invisibly to this code).
    //   DirectTables  a para-virtualized OS (paging=direct): tables hold
    //                 machine addresses the hypervisor handed out, are pinned
    //                 and read-only, and change only through MmuUpdate batches.
    //
    // Tables are named by their GPA in both backends (that is where this guest
    // reads them, identity-mapped); Address() gives what the MMU wants to see.
    public abstract unsafe class PageTables
    {
        public const ulong Valid = 1, TableType = 3, PageType = 3, BlockType = 1;
        public const ulong AttrDevice = 0 << 2, AttrNormal = 1 << 2;
        public const ulong AccessFlag = 1 << 10, InnerShareable = 3 << 8, ReadOnly = 1 << 7;
        public const ulong NormalBlock = BlockType | AttrNormal | AccessFlag | InnerShareable;
        public const ulong NormalPage = PageType | AttrNormal | AccessFlag | InnerShareable;
        public const ulong DeviceBlock = BlockType | AttrDevice | AccessFlag | (1UL << 54) | (1UL << 53);

        private ulong _next, _end;

        protected PageTables(ulong poolStart, ulong poolEnd) { _next = poolStart; _end = poolEnd; }

        public abstract bool IsDirect { get; }

        // A fresh, empty table for `level`.
        public ulong NewTable(int level)
        {
            if (_next + 4096 > _end) Program.Fail("guest page-table pool exhausted");
            ulong gpa = _next;
            _next += 4096;
            Prepare(gpa, level);
            return gpa;
        }

        protected abstract void Prepare(ulong tableGpa, int level);

        // What descriptors and TTBRs hold for a table or a RAM page.
        public abstract ulong Address(ulong gpa);

        // Entry `index` of `table` becomes `value`. Direct: queued until Commit.
        public abstract void Set(ulong tableGpa, int index, ulong value);

        // TLB maintenance for one VA after its entry changed (queued in direct).
        public abstract void Invalidate(ulong va);

        // Direct: sends what is queued; returns the status (native: always Ok).
        public abstract long Commit();

        public void Link(ulong parentGpa, int index, ulong childGpa) => Set(parentGpa, index, Address(childGpa) | TableType);

        public static ulong Read(ulong tableGpa, int index) => ((ulong*)tableGpa)[index];
    }

    public sealed unsafe class NativeTables : PageTables
    {
        public NativeTables(ulong poolStart, ulong poolEnd) : base(poolStart, poolEnd) { }

        public override bool IsDirect => false;

        protected override void Prepare(ulong tableGpa, int level)
        {
            ulong* t = (ulong*)tableGpa;
            for (int i = 0; i < 512; i++) t[i] = 0;
        }

        public override ulong Address(ulong gpa) => gpa;
        public override void Set(ulong tableGpa, int index, ulong value) => ((ulong*)tableGpa)[index] = value;
        public override void Invalidate(ulong va) => Cpu.TlbFlushVa(va);
        public override long Commit() => HypercallAbi.Ok;
    }

    public sealed unsafe class DirectTables : PageTables
    {
        private const int QueueCapacity = HypercallAbi.Update.MaxRequests;
        private readonly ulong _ramBase;
        private readonly ulong[] _machine;      // machine address of every RAM page, by page number
        private readonly ulong _queue;          // one page of { target, value } requests
        private int _queued;
        public long LastStatus;
        public ulong Batches, Requests;

        // Asks the hypervisor which frame backs each page of RAM.
        public DirectTables(ulong poolStart, ulong poolEnd, ulong ramBase, ulong ramSize) : base(poolStart, poolEnd)
        {
            _ramBase = ramBase;
            _machine = new ulong[ramSize >> 12];
            byte[] raw = new byte[3 * 4096];
            fixed (byte* p = raw) _queue = ((ulong)p + 4095) & ~4095UL;   // page aligned, stays put: no moving GC here
            ulong bounce = _queue + 4096;
            for (ulong first = 0; first < (ulong)_machine.Length; first += 512)
            {
                ulong n = (ulong)_machine.Length - first < 512 ? (ulong)_machine.Length - first : 512;
                var r = Hvc.Call(HypercallAbi.MachineFrames, bounce, ramBase + first * 4096, n);
                if ((long)r.X0 != HypercallAbi.Ok) Program.Fail("MachineFrames refused");
                for (ulong i = 0; i < n; i++) _machine[first + i] = ((ulong*)bounce)[i];
            }
        }

        public override bool IsDirect => true;

        // Pinning: the hypervisor scrubs the page and from now on validates
        // every entry written into it.
        protected override void Prepare(ulong tableGpa, int level)
        {
            var r = Hvc.Call(HypercallAbi.PinTable, tableGpa, (ulong)level);
            if ((long)r.X0 != HypercallAbi.Ok) Program.Fail("PinTable refused");
        }

        public override ulong Address(ulong gpa) => _machine[(gpa - _ramBase) >> 12] | (gpa & 0xfff);

        public override void Set(ulong tableGpa, int index, ulong value) =>
            Queue(Address(tableGpa) + (ulong)index * 8, value);

        public override void Invalidate(ulong va) => Queue(HypercallAbi.Update.InvalidateVa, va);

        private void Queue(ulong target, ulong value)
        {
            if (_queued == QueueCapacity) Commit();
            ((ulong*)_queue)[2 * _queued] = target;
            ((ulong*)_queue)[2 * _queued + 1] = value;
            _queued++;
        }

        public override long Commit()
        {
            if (_queued == 0) return HypercallAbi.Ok;
            var r = Hvc.Call(HypercallAbi.MmuUpdate, _queue, (ulong)_queued);
            Batches++;
            Requests += (ulong)_queued;
            _queued = 0;
            LastStatus = (long)r.X0;
            return LastStatus;
        }

        // For hostile tests: a raw request list of the caller's own.
        public HvcArgs Raw(ulong* requests, int count)
        {
            for (int i = 0; i < 2 * count; i++) ((ulong*)_queue)[i] = requests[i];
            return Hvc.Call(HypercallAbi.MmuUpdate, _queue, (ulong)count);
        }
    }
}
