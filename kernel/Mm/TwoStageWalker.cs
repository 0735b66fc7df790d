using System;
using Hypervisor.Arch;

namespace Hypervisor.Mm
{
    public enum TwoStageStatus
    {
        Ok,
        Stage1TranslationFault,     // invalid guest descriptor, or GVA outside both TTBR ranges / range disabled by EPD
        Stage1AccessFlagFault,      // guest leaf with AF=0 (no hardware AF management assumed)
        Stage2TranslationFault,     // an IPA the hypervisor has not mapped
        UnsupportedStage1Config,    // TG0/TG1 not 4 KiB, or TxSZ outside 16..39
    }

    // One table entry read during a walk: Stage2Table.Walk records its own
    // reads, TwoStageWalker records both stages in one list, for the
    // address-walk teaching tool.
    public struct TranslationStep
    {
        public int Stage;            // 1: guest's VA -> IPA tables, 2: our IPA -> PA tables
        public int Level;
        public ulong InputAddress;   // what this walk translates: a GVA (stage 1) or an IPA (stage 2)
        public ulong TableAddress;   // base of the table read: guest-physical for a stage-1 table,
                                     // host-physical for a stage-2 table
        public int Index;
        public ulong EntryAddress;   // TableAddress + 8 * Index
        public ulong HostAddress;    // the host-physical address actually read
        public ulong Descriptor;
    }

    // The guest's stage-1 controls, as saved in its vCPU context.
    public struct GuestTranslationRegisters
    {
        public ulong Ttbr0El1;   // BADDR [47:1] of the lower-range root (a guest-physical address), ASID [63:48]
        public ulong Ttbr1El1;   // the same for the upper (kernel) range
        public ulong TcrEl1;
    }

    public struct TwoStageResult
    {
        public TwoStageStatus Status;
        public ulong Gva;
        public ulong Gpa;                // the IPA stage 1 produced; on a stage-2 fault, the IPA that faulted
        public ulong Hpa;                // the final host-physical address (valid when Ok)
        public int FaultStage;           // 0 when Ok, else 1 or 2
        public int FaultLevel;           // level, within FaultStage's tables, of the entry that faulted
        public bool FaultOnStage1Walk;   // stage 2 faulted fetching a guest table entry: ESR_EL2 ISS.S1PTW
        public int Stage1Level;          // stage-1 level being walked (the leaf level when Ok)
        public ulong Stage1Descriptor;   // last guest descriptor read
        public ulong Stage2Descriptor;   // last stage-2 descriptor read
        public int MemoryAccesses;       // every descriptor read, both stages
        public int StepsRecorded;
    }

    // The two-dimensional walk: what the MMU does on a TLB miss while a guest
    // runs with both stages on, done in software to show and count it.
    //
    // The guest's page tables translate GVA -> GPA, but everything in them is
    // guest-physical: TTBR0_EL1/TTBR1_EL1 hold the GPA of the root, and every
    // table descriptor holds the GPA of the next table. The MMU can only read
    // host-physical memory, so before each stage-1 read it must translate that
    // table's GPA through stage 2 (a whole stage-2 walk), then read the entry.
    // At the end, the GPA from the stage-1 leaf goes through stage 2 once more.
    //
    // With n stage-1 levels and m stage-2 levels that is
    //     n * (m + 1)   (each stage-1 read: m stage-2 reads + the read itself)
    //   + m             (the final GPA -> HPA)
    //   = (n + 1)(m + 1) - 1 reads.
    // A 4-level guest (T0SZ=16) over a 4-level stage 2 costs 5*5-1 = 24 reads;
    // over this hypervisor's 3-level stage 2 (40-bit IPA, concatenated root)
    // 4*(3+1)+3 = 19; native, without virtualization, 4. That gap is why TLBs
    // cache the combined GVA -> HPA result, why CPUs keep walk caches, and why
    // large mappings pay: a 2 MiB stage-2 block cuts every stage-2 walk to 2
    // reads (4*3+2 = 14), a 2 MiB guest block removes a stage-1 level (3*4+3 = 15).
    public static class TwoStageWalker
    {
        public const int MaxSteps = 24;   // 4-level over 4-level

        // TCR_EL1 fields (Arm ARM, register TCR_EL1).
        private const int T0szShift = 0;        // T0SZ [5:0]
        private const ulong Epd0 = 1UL << 7;    // no walks for the TTBR0 range
        private const int Tg0Shift = 14;        // TG0 [15:14]: 0b00 = 4 KiB
        private const int T1szShift = 16;       // T1SZ [21:16]
        private const ulong Epd1 = 1UL << 23;
        private const int Tg1Shift = 30;        // TG1 [31:30]: 0b10 = 4 KiB (a different encoding from TG0!)
        private const ulong Tbi0 = 1UL << 37;   // top byte ignored in the TTBR0 range
        private const ulong Tbi1 = 1UL << 38;

        // Translates `gva` for a guest with these stage-1 registers over its
        // stage-2 tables, recording every descriptor read in `steps` (as many
        // as fit; MaxSteps always do).
        public static TwoStageStatus Translate(Stage2Table stage2, in GuestTranslationRegisters registers, ulong gva,
                                               Span<TranslationStep> steps, out TwoStageResult result)
        {
            result = default;
            result.Gva = gva;
            PageTableMemory memory = stage2.Memory;
            ulong tcr = registers.TcrEl1;

            // VA bit 55 selects the range: 0 -> TTBR0 (user), 1 -> TTBR1 (kernel).
            bool upper = ((gva >> 55) & 1) != 0;
            int txsz = (int)((tcr >> (upper ? T1szShift : T0szShift)) & 63);
            ulong granule = (tcr >> (upper ? Tg1Shift : Tg0Shift)) & 3;
            bool granule4K = upper ? granule == 0b10 : granule == 0b00;
            bool walksDisabled = (tcr & (upper ? Epd1 : Epd0)) != 0;
            bool topByteIgnored = (tcr & (upper ? Tbi1 : Tbi0)) != 0;
            ulong ttbr = upper ? registers.Ttbr1El1 : registers.Ttbr0El1;

            if (!granule4K || txsz < 16 || txsz > 39)
                return Fail(ref result, TwoStageStatus.UnsupportedStage1Config, 1, 0);

            // The bits above the range (up to 63, or 55 with top-byte-ignore)
            // must all copy bit 55; otherwise the address is in neither range.
            int inputBits = 64 - txsz;
            int topBit = topByteIgnored ? 55 : 63;
            ulong aboveRange = (topBit == 63 ? ~0UL : (1UL << (topBit + 1)) - 1) & ~((1UL << inputBits) - 1);
            if ((gva & aboveRange) != (upper ? aboveRange : 0) || walksDisabled)
                return Fail(ref result, TwoStageStatus.Stage1TranslationFault, 1, 0);

            // Stage 1 has no concatenation: the start level is the one whose
            // table covers the input size, and that table may be partly used.
            int levels = (inputBits - Descriptor.PageShift + 8) / 9;
            int startLevel = 4 - levels;
            int rootEntries = 1 << (inputBits - Descriptor.LevelShift(startLevel));
            ulong rootAlignment = (ulong)rootEntries * 8;
            if (rootAlignment < 64) rootAlignment = 64;
            ulong table = ttbr & 0x0000_FFFF_FFFF_FFFEUL & ~(rootAlignment - 1);

            // LAB 2 BEGIN TwoStageWalker.Translate | return Fail(ref result, TwoStageStatus.UnsupportedStage1Config, 1, 0);
            int recorded = 0;
            ulong gpa = 0;
            for (int level = startLevel; level <= 3; level++)
            {
                int index = (int)((gva >> Descriptor.LevelShift(level))
                                  & (ulong)(level == startLevel ? rootEntries - 1 : Descriptor.EntriesPerTable - 1));
                ulong entryGpa = table + (ulong)index * 8;
                result.Stage1Level = level;

                // 1. Where in host memory is this guest table entry? A full stage-2 walk.
                Stage2Status s2 = stage2.Lookup(entryGpa, Rest(steps, recorded), out Stage2Lookup found);
                Account(ref result, ref recorded, steps, found);
                if (s2 != Stage2Status.Ok)
                {
                    result.Gpa = entryGpa;
                    result.FaultOnStage1Walk = true;
                    return Fail(ref result, TwoStageStatus.Stage2TranslationFault, 2, found.Level);
                }

                // 2. Read it.
                ulong d = memory.Read64(found.Pa);
                result.MemoryAccesses++;
                result.Stage1Descriptor = d;
                if (recorded < steps.Length)
                {
                    ref TranslationStep step = ref steps[recorded++];
                    step.Stage = 1;
                    step.Level = level;
                    step.InputAddress = gva;
                    step.TableAddress = table;
                    step.Index = index;
                    step.EntryAddress = entryGpa;
                    step.HostAddress = found.Pa;
                    step.Descriptor = d;
                    result.StepsRecorded = recorded;
                }

                // 3. Follow it, use it, or fault.
                if (Descriptor.IsTable(d, level))
                {
                    table = Descriptor.TableAddress(d);
                    continue;
                }
                if (!Descriptor.IsLeaf(d, level))
                    return Fail(ref result, TwoStageStatus.Stage1TranslationFault, 1, level);
                if (!Stage1.HasAccessFlag(d))
                    return Fail(ref result, TwoStageStatus.Stage1AccessFlagFault, 1, level);
                gpa = Descriptor.OutputAddress(d, level) | (gva & (Descriptor.LevelSize(level) - 1));
                break;
            }

            // The data itself: GPA -> HPA, one more stage-2 walk.
            result.Gpa = gpa;
            Stage2Status final = stage2.Lookup(gpa, Rest(steps, recorded), out Stage2Lookup leaf);
            Account(ref result, ref recorded, steps, leaf);
            if (final != Stage2Status.Ok)
                return Fail(ref result, TwoStageStatus.Stage2TranslationFault, 2, leaf.Level);
            result.Hpa = leaf.Pa;
            result.Status = TwoStageStatus.Ok;
            return TwoStageStatus.Ok;
            // LAB 2 END
        }

        private static Span<TranslationStep> Rest(Span<TranslationStep> steps, int recorded) =>
            recorded < steps.Length ? steps.Slice(recorded) : default;

        private static void Account(ref TwoStageResult result, ref int recorded, Span<TranslationStep> steps, in Stage2Lookup walk)
        {
            result.MemoryAccesses += walk.Reads;
            result.Stage2Descriptor = walk.Descriptor;
            int room = steps.Length - recorded;
            recorded += walk.Reads < room ? walk.Reads : room;
            result.StepsRecorded = recorded;
        }

        private static TwoStageStatus Fail(ref TwoStageResult result, TwoStageStatus status, int stage, int level)
        {
            result.Status = status;
            result.FaultStage = stage;
            result.FaultLevel = level;
            return status;
        }
    }
}
