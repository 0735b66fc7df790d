namespace Hypervisor.Trap
{
    // The hypervisor's own calls, made with HVC #0 (or SMC #0, trapped) following
    // the SMC Calling Convention (Arm DEN 0028): x0 = function id, x1-x3 =
    // arguments; results come back in x0-x3. The ids sit in the range SMCCC
    // reserves for the vendor-specific hypervisor service: fast call (bit 31),
    // 64-bit convention (bit 30), owning entity 6 (bits 29:24).
    //
    // This file is compiled into the guest too, so both sides share the numbers.
    public static class HypercallAbi
    {
        public const ulong VendorBase = 0xC6000000;

        public const ulong Null = VendorBase + 0;          // -> x0 = 0; measures a round trip
        public const ulong ConsoleWrite = VendorBase + 1;  // x1 = GPA, x2 = length -> x0 = bytes written
        public const ulong ReadCounter = VendorBase + 2;   // x1 = Counter.* -> x0 = status, x1 = value
        public const ulong TestRemap = VendorBase + 3;     // x1 = IPA (page), x2 = 64-bit fill pattern -> x0 = status
        public const ulong WalkAddress = VendorBase + 4;   // x1 = GVA -> x0 = status, x1 = GPA, x2 = HPA, x3 = memory accesses
        public const ulong RunningVms = VendorBase + 5;    // -> x0 = 0, x1 = VMs not yet stopped (this one included)
        public const ulong PagingInfo = VendorBase + 6;    // -> x0 = 0, x1 = Paging.* of this VM
        public const ulong WalkHardware = VendorBase + 7;  // x1 = GVA -> as WalkAddress, for the walk the MMU really makes

        // paging=direct (kernel/Paging/DirectPaging.cs). Machine addresses are host-physical.
        public const ulong MachineFrames = VendorBase + 8; // x1 = GPA of a buffer, x2 = first GPA, x3 = pages (<= 512)
                                                           //   -> x0 = status; buffer[i] = machine address of page i
        public const ulong PinTable = VendorBase + 9;      // x1 = GPA of the page, x2 = level 0-3 -> x0 = status, x1 = its machine address
        public const ulong UnpinTable = VendorBase + 10;   // x1 = machine address -> x0 = status
        public const ulong MmuUpdate = VendorBase + 11;    // x1 = GPA of requests, x2 = count (<= 256)
                                                           //   -> x0 = status, x1 = index of the first refused request
        public const ulong Yield = VendorBase + 12;        // -> x0 = 0, after other runnable VMs had the CPU
        public const ulong ReadCycles = VendorBase + 13;   // -> x0 = status, x1 = the hypervisor's PMU cycle counter
                                                           //   (every EL, every VM); only for a VM with hv_counter=on

        // MmuUpdate requests: 16 bytes each, { target, value }. The low 3 bits of
        // target say what it is (entries are 8-byte aligned, so they are free).
        public static class Update
        {
            public const ulong WriteEntry = 0;      // target = machine address of a table entry, value = new descriptor
            public const ulong InvalidateVa = 1;    // TLBI VAAE1IS for the VA in value
            public const ulong InvalidateAll = 2;   // TLBI VMALLE1IS
            public const ulong KindMask = 7;
            public const int MaxRequests = 256;
        }

        public static class Paging
        {
            public const ulong Stage2 = 0;
            public const ulong Shadow = 1;
            public const ulong Direct = 2;
        }

        // Status values in x0 (negative, as PSCI does).
        public const long Ok = 0;
        public const long NotSupported = -1;
        public const long InvalidParameter = -2;
        public const long Denied = -3;
        public const long NoMemory = -4;

        // Per-VM counters a guest can read.
        public static class Counter
        {
            public const ulong Exits = 0;
            public const ulong Stage2Faults = 1;     // RAM pages mapped on first touch
            public const ulong MmioExits = 2;
            public const ulong Hypercalls = 3;
            public const ulong TlbiIpa = 4;          // TLBI IPAS2E1IS issued
            public const ulong TlbiVmallE1 = 5;      // TLBI VMALLE1IS issued
            public const ulong TlbiVmallS12E1 = 6;   // TLBI VMALLS12E1IS issued
            public const ulong InjectedAborts = 7;
            public const ulong PagesMapped = 8;
            public const ulong RegisterTraps = 9;     // trapped writes/reads of translation registers (TVM/TRVM)
            public const ulong TableWriteTraps = 10;  // shadow: guest stores to its write-protected tables
            public const ulong GuestTlbiTraps = 11;   // shadow: guest TLBIs (TTLB)
            public const ulong HiddenFaults = 12;     // shadow: leaves pointed at a frame after a demand fault
            public const ulong TlbiVa = 13;           // TLBI VAAE1IS issued (shadow / direct)
            public const ulong ShadowPages = 14;      // shadow table pages built, ever
            public const ulong ShadowRootHits = 15;   // TTBR writes that found their shadow cached
            public const ulong DirectUpdates = 16;    // direct: entries written through MmuUpdate
            public const ulong DirectBatches = 17;    // direct: MmuUpdate calls that applied
            public const ulong DirectRefused = 18;    // direct: requests refused (pin, update, register)
            public const ulong PagesPrefaulted = 19;  // pages fault-around mapped ahead of a touch
            public const ulong WalkRulesRefused = 20; // shadow/direct: SCTLR/TCR writes refused (Paging/WalkRules.cs)
            public const ulong Stage2Blocks = 21;     // live stage-2 block entries (2 MiB and 1 GiB; backing=blocks)
            public const ulong RamBacking = 22;       // 0: demand-paged 4 KiB pages, 1: backing=blocks (up front)
            public const ulong Count = 23;
        }
    }

    // PSCI function ids and return codes (Arm DEN 0022).
    public static class PsciAbi
    {
        public const ulong Version = 0x84000000;
        public const ulong CpuSuspend64 = 0xC4000001;
        public const ulong CpuOff = 0x84000002;
        public const ulong CpuOn32 = 0x84000003;
        public const ulong CpuOn64 = 0xC4000003;
        public const ulong AffinityInfo32 = 0x84000004;
        public const ulong AffinityInfo64 = 0xC4000004;
        public const ulong MigrateInfoType = 0x84000006;
        public const ulong SystemOff = 0x84000008;
        public const ulong SystemReset = 0x84000009;
        public const ulong Features = 0x8400000A;
        public const ulong SmcccVersion = 0x80000000;

        public const long Success = 0;
        public const long NotSupportedCode = -1;
        public const long InvalidParameters = -2;
        public const long Denied = -3;
        public const long AlreadyOn = -4;
        public const long OnPending = -5;
        public const long InvalidAddress = -9;

        public const ulong Version1_1 = 0x00010001;
        public const ulong AffinityOn = 0, AffinityOff = 1;
        public const ulong MigrateNotRequired = 2;
    }
}
