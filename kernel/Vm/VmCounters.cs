using Hypervisor.Trap;

namespace Hypervisor.Vm
{
    // What one VM has cost the hypervisor, counted where it happens. A guest
    // reads them by number (HypercallAbi.Counter); the summary prints them.
    // Plain fields, not an array: increments on exit paths stay single
    // instructions without bounds checks.
    public sealed class VmCounters
    {
        public ulong Stage2Faults;       // RAM pages mapped on first touch
        public ulong MmioExits;
        public ulong TlbiIpa;            // TLBI IPAS2E1IS
        public ulong TlbiVmallE1;        // TLBI VMALLE1IS
        public ulong TlbiVmallS12E1;     // TLBI VMALLS12E1IS
        public ulong TlbiVa;             // TLBI VAAE1IS (shadow and direct paging)
        public ulong InjectedAborts;
        public ulong PagesMapped;
        public ulong PagesPrefaulted;    // mapped by fault-around, ahead of any touch
        public ulong BalloonedTouches;   // accesses to pages the guest had given to the balloon

        // Shadow and direct paging (kernel/Paging/). Shadow-table build counts
        // live in ShadowTables (VirtualMachine.TryGetCounter reads them there).
        public ulong RegisterTraps, TableWriteTraps, GuestTlbiTraps, HiddenFaults;
        public ulong DirectUpdates, DirectBatches, DirectRefused;
        public ulong WalkRulesRefused;     // SCTLR/TCR writes refused by kernel/Paging/WalkRules.cs
        public ulong PmuTraps;             // PMU register accesses (MDCR_EL2.TPM): undefined instruction
        public ulong SgisSent;             // ICC_SGI1R_EL1 writes (IPIs between its vCPUs)
        public ulong PhysicalTimerTraps;   // CNTP_* accesses (EL1PCEN = 0): read as zero, writes ignored
        public ulong El2Instructions;      // the hypervisor's instructions while this VM held a CPU (El2Clock)
        // Its parts for a VM with a balloon (El2Clock.Mark/Since around each):
        public ulong El2Faults;            // stage-2 demand-fault handlers (not the exits around them)
        public ulong El2Balloon;           // the balloon's queue work, all of it (includes the three below)
        public ulong El2BalloonUnmap;      //   stage-2 unmaps of ballooned pages, with their per-page TLBIs
        public ulong El2BalloonFlush;      //   the batches' VMID-wide TLBIs
        public ulong El2BalloonFree;       //   giving the frames back to the host

        // Exits by class: one increment per exit, in GuestExits.
        public ulong ExitsHvc, ExitsSmc, ExitsDataAbort, ExitsInstructionAbort, ExitsWfx, ExitsSysReg, ExitsIrq, ExitsOther;

        // Totals are sums, not counted twice on the exit path.
        public ulong Exits => ExitsHvc + ExitsSmc + ExitsDataAbort + ExitsInstructionAbort + ExitsWfx + ExitsSysReg + ExitsIrq + ExitsOther;
        public ulong Hypercalls => ExitsHvc + ExitsSmc;

        // By HypercallAbi.Counter id; false for an unknown id.
        public bool TryGet(ulong id, out ulong value)
        {
            switch (id)
            {
                case HypercallAbi.Counter.Exits: value = Exits; return true;
                case HypercallAbi.Counter.Stage2Faults: value = Stage2Faults; return true;
                case HypercallAbi.Counter.MmioExits: value = MmioExits; return true;
                case HypercallAbi.Counter.Hypercalls: value = Hypercalls; return true;
                case HypercallAbi.Counter.TlbiIpa: value = TlbiIpa; return true;
                case HypercallAbi.Counter.TlbiVmallE1: value = TlbiVmallE1; return true;
                case HypercallAbi.Counter.TlbiVmallS12E1: value = TlbiVmallS12E1; return true;
                case HypercallAbi.Counter.InjectedAborts: value = InjectedAborts; return true;
                case HypercallAbi.Counter.PagesMapped: value = PagesMapped; return true;
                case HypercallAbi.Counter.PagesPrefaulted: value = PagesPrefaulted; return true;
                case HypercallAbi.Counter.RegisterTraps: value = RegisterTraps; return true;
                case HypercallAbi.Counter.TableWriteTraps: value = TableWriteTraps; return true;
                case HypercallAbi.Counter.GuestTlbiTraps: value = GuestTlbiTraps; return true;
                case HypercallAbi.Counter.HiddenFaults: value = HiddenFaults; return true;
                case HypercallAbi.Counter.TlbiVa: value = TlbiVa; return true;
                case HypercallAbi.Counter.DirectUpdates: value = DirectUpdates; return true;
                case HypercallAbi.Counter.DirectBatches: value = DirectBatches; return true;
                case HypercallAbi.Counter.DirectRefused: value = DirectRefused; return true;
                case HypercallAbi.Counter.WalkRulesRefused: value = WalkRulesRefused; return true;
                default: value = 0; return false;
            }
        }
    }
}
