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
            public const ulong Count = 9;
        }
    }

    // PSCI function ids and return codes (Arm DEN 0022).
    public static class PsciAbi
    {
        public const ulong Version = 0x84000000;
        public const ulong CpuSuspend64 = 0xC4000001;
        public const ulong CpuOff = 0x84000002;
        public const ulong CpuOn64 = 0xC4000003;
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

        public const ulong Version1_1 = 0x00010001;
        public const ulong AffinityOn = 0;
        public const ulong MigrateNotRequired = 2;
    }
}
