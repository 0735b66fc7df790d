using System;
using Hypervisor.Arch;
using Hypervisor.Mm;
using Xunit;

namespace Hypervisor.Tests.Unit
{
    // A guest with 8 MiB of RAM at GPA 0x4000_0000, backed by host RAM at
    // 0x2_0000_0000, and a 4-level stage-1 page table inside that RAM.
    public class TwoStageWalkerTests
    {
        private const ulong GuestRam = 0x4000_0000;
        private const ulong GuestRamSize = 8UL << 20;
        private const ulong HostRam = 0x2_0000_0000;

        // Guest stage-1 tables (guest-physical addresses).
        private const ulong L0 = GuestRam + 0x0000;
        private const ulong L1 = GuestRam + 0x1000;
        private const ulong L2 = GuestRam + 0x2000;
        private const ulong L3 = GuestRam + 0x3000;
        private const ulong DataGpa = GuestRam + 0x40_5000;   // a different 2 MiB region from the tables
        private const ulong Gva = 0x0000_1234_5678_9ABC;     // indices 0x24, 0xD1, 0xB3, 0x189

        // T0SZ=16 (48-bit VA, 4 levels), TG0=4K; T1SZ=16, TG1=0b10 (4K).
        private const ulong Tcr48 = 16 | (16UL << 16) | (0b10UL << 30);

        private static readonly ulong GuestPage = Stage1.Attributes(0, Stage1Access.KernelReadWrite, true, true, false);

        private readonly FakeTableMemory _memory = new FakeTableMemory();
        private readonly RecordingTlb _tlb = new RecordingTlb();
        private Stage2Table _stage2;

        public TwoStageWalkerTests()
        {
            _stage2 = new Stage2Table(_memory, _tlb, FakeTableMemory.RootAddress);
            _tlb.Table = _stage2;
            _tlb.Memory = _memory;
        }

        private void MapGuestRam(bool blocks)
        {
            if (blocks)
                for (ulong off = 0; off < GuestRamSize; off += 2UL << 20)
                    Assert.Equal(Stage2Status.Ok, _stage2.Map2M(GuestRam + off, HostRam + off, Stage2.NormalReadWriteExecute));
            else
                for (ulong off = 0; off < GuestRamSize; off += 4096)
                    Assert.Equal(Stage2Status.Ok, _stage2.Map4K(GuestRam + off, HostRam + off, Stage2.NormalReadWriteExecute));
        }

        // What the guest kernel does when it writes its own page tables: a
        // store to a GPA, which lands at the HPA stage 2 gives it.
        private void WriteGuest(ulong gpa, ulong value)
        {
            Assert.Equal(Stage2Status.Ok, _stage2.Translate(gpa, out ulong hpa, out _, out _));
            _memory.Write64(hpa, value);
        }

        private void BuildGuestTables(bool stage1Block = false)
        {
            WriteGuest(L0 + 0x24 * 8, Stage1.Table(L1));
            WriteGuest(L1 + 0xD1 * 8, Stage1.Table(L2));
            if (stage1Block)
            {
                WriteGuest(L2 + 0xB3 * 8, Stage1.Block(GuestRam + 0x40_0000, 2, GuestPage));
                return;
            }
            WriteGuest(L2 + 0xB3 * 8, Stage1.Table(L3));
            WriteGuest(L3 + 0x189 * 8, Stage1.Page(DataGpa, GuestPage));
        }

        private static GuestTranslationRegisters Registers(ulong tcr = Tcr48) =>
            new GuestTranslationRegisters { Ttbr0El1 = L0 | (7UL << 48), Ttbr1El1 = L0, TcrEl1 = tcr };   // ASID 7 in TTBR0

        private TwoStageResult Walk(ulong gva, ulong tcr = Tcr48)
        {
            var steps = new TranslationStep[TwoStageWalker.MaxSteps];
            TwoStageWalker.Translate(_stage2, Registers(tcr), gva, steps, out TwoStageResult result);
            return result;
        }

        // The lecture's worst case, built: a 4-level guest table over a
        // 4-level stage 2 (a 48-bit IPA space, walk starting at level 0).
        // Each of the guest's four table reads needs a full stage-2 walk of
        // the table's GPA first (4 reads + the read itself), and the data's
        // GPA one more stage-2 walk: 4 x (4 + 1) + 4 = 24 memory accesses
        // for one TLB miss, against 4 without virtualization.
        [Fact]
        public void FourLevelGuestOverFourLevelStage2TakesTheLectures24Reads()
        {
            _stage2 = new Stage2Table(_memory, _tlb, FakeTableMemory.RootAddress, 48);
            _tlb.Table = _stage2;
            Assert.Equal(0, _stage2.StartLevel);
            MapGuestRam(blocks: false);
            BuildGuestTables();
            var steps = new TranslationStep[TwoStageWalker.MaxSteps];
            Assert.Equal(TwoStageStatus.Ok, TwoStageWalker.Translate(_stage2, Registers(), Gva, steps, out TwoStageResult r));
            Assert.Equal(HostRam + 0x40_5ABC, r.Hpa);
            Assert.Equal(24, r.MemoryAccesses);
            Assert.Equal(24, r.StepsRecorded);
            // The order: (stage 2 x 4, stage 1) four times, then stage 2 x 4.
            for (int i = 0; i < 24; i++)
            {
                bool guestRead = i % 5 == 4 && i < 20;
                Assert.Equal(guestRead ? 1 : 2, steps[i].Stage);
                Assert.Equal(guestRead ? i / 5 : i % 5, steps[i].Level);
            }
        }

        [Fact]
        public void FourLevelGuestOverThreeLevelStage2Takes19Reads()
        {
            MapGuestRam(blocks: false);
            BuildGuestTables();
            var steps = new TranslationStep[TwoStageWalker.MaxSteps];
            Assert.Equal(TwoStageStatus.Ok, TwoStageWalker.Translate(_stage2, Registers(), Gva, steps, out TwoStageResult r));

            // Three different addresses for the same byte.
            Assert.Equal(Gva, r.Gva);
            Assert.Equal(DataGpa + 0xABC, r.Gpa);
            Assert.Equal(HostRam + 0x40_5ABC, r.Hpa);
            Assert.Equal(4 * (3 + 1) + 3, r.MemoryAccesses);
            Assert.Equal(19, r.StepsRecorded);
            Assert.Equal(0, r.FaultStage);
            Assert.Equal(3, r.Stage1Level);

            // The shape: for each guest level, a stage-2 walk of the table's GPA, then the guest read.
            ulong[] tables = { L0, L1, L2, L3 };
            int[] indices = { 0x24, 0xD1, 0xB3, 0x189 };
            int s = 0;
            for (int level = 0; level < 4; level++)
            {
                ulong entryGpa = tables[level] + (ulong)indices[level] * 8;
                for (int s2Level = 1; s2Level <= 3; s2Level++, s++)
                {
                    Assert.Equal(2, steps[s].Stage);
                    Assert.Equal(s2Level, steps[s].Level);
                    Assert.Equal(entryGpa, steps[s].InputAddress);
                }
                Assert.Equal(1, steps[s].Stage);
                Assert.Equal(level, steps[s].Level);
                Assert.Equal(tables[level], steps[s].TableAddress);
                Assert.Equal(indices[level], steps[s].Index);
                Assert.Equal(entryGpa, steps[s].EntryAddress);
                Assert.Equal(entryGpa - GuestRam + HostRam, steps[s].HostAddress);
                s++;
            }
            for (int s2Level = 1; s2Level <= 3; s2Level++, s++)
            {
                Assert.Equal(2, steps[s].Stage);
                Assert.Equal(r.Gpa, steps[s].InputAddress);
            }
            Assert.Equal(Stage2.Page(HostRam + 0x40_5000, Stage2.NormalReadWriteExecute), steps[18].Descriptor);
        }

        [Fact]
        public void Stage2BlocksShortenEveryNestedWalk()
        {
            MapGuestRam(blocks: true);
            BuildGuestTables();
            TwoStageResult r = Walk(Gva);
            Assert.Equal(TwoStageStatus.Ok, r.Status);
            Assert.Equal(HostRam + 0x40_5ABC, r.Hpa);
            Assert.Equal(4 * (2 + 1) + 2, r.MemoryAccesses);   // 14 instead of 19
        }

        [Fact]
        public void GuestBlocksRemoveAStage1Level()
        {
            MapGuestRam(blocks: false);
            BuildGuestTables(stage1Block: true);
            TwoStageResult r = Walk(Gva);
            Assert.Equal(TwoStageStatus.Ok, r.Status);
            Assert.Equal(GuestRam + 0x40_0000 + (Gva & 0x1F_FFFF), r.Gpa);
            Assert.Equal(3 * (3 + 1) + 3, r.MemoryAccesses);   // 15
            Assert.Equal(2, r.Stage1Level);

            _stage2.Destroy(out _);
            MapGuestRam(blocks: true);
            Assert.Equal(3 * (2 + 1) + 2, Walk(Gva).MemoryAccesses);   // both: 11
        }

        [Fact]
        public void ThreeLevelGuestStartsAtLevel1()
        {
            MapGuestRam(blocks: false);
            // T0SZ=25: 39-bit VA, the walk starts at level 1 with the root in TTBR0.
            ulong gva = 0x0000_0000_4060_1234;   // level-1 index 1, level-2 index 3, level-3 index 1
            WriteGuest(L1 + 1 * 8, Stage1.Table(L2));
            WriteGuest(L2 + 3 * 8, Stage1.Table(L3));
            WriteGuest(L3 + 1 * 8, Stage1.Page(DataGpa, GuestPage));
            var registers = new GuestTranslationRegisters { Ttbr0El1 = L1, TcrEl1 = 25 };
            Assert.Equal(TwoStageStatus.Ok, TwoStageWalker.Translate(_stage2, registers, gva, default, out TwoStageResult r));
            Assert.Equal(DataGpa + 0x234, r.Gpa);
            Assert.Equal(3 * (3 + 1) + 3, r.MemoryAccesses);
            Assert.Equal(0, r.StepsRecorded);   // nothing to record into, still counted
        }

        [Fact]
        public void UpperRangeUsesTtbr1()
        {
            MapGuestRam(blocks: false);
            ulong gva = 0xFFFF_8000_0000_1010;   // level-0 index 256, then 0, 0, 1
            WriteGuest(L0 + 256 * 8, Stage1.Table(L1));
            WriteGuest(L1, Stage1.Table(L2));
            WriteGuest(L2, Stage1.Table(L3));
            WriteGuest(L3 + 8, Stage1.Page(DataGpa, GuestPage));
            TwoStageResult r = Walk(gva);
            Assert.Equal(TwoStageStatus.Ok, r.Status);
            Assert.Equal(DataGpa + 0x10, r.Gpa);
            Assert.Equal(HostRam + 0x40_5010, r.Hpa);
            // TG1 uses another encoding: 0b00 there is reserved, not 4 KiB.
            Assert.Equal(TwoStageStatus.UnsupportedStage1Config, Walk(gva, 16 | (16UL << 16)).Status);
        }

        [Fact]
        public void InvalidGuestEntryIsAStage1FaultAtItsLevel()
        {
            MapGuestRam(blocks: false);
            BuildGuestTables();
            WriteGuest(L2 + 0xB3 * 8, 0);
            TwoStageResult r = Walk(Gva);
            Assert.Equal(TwoStageStatus.Stage1TranslationFault, r.Status);
            Assert.Equal(1, r.FaultStage);
            Assert.Equal(2, r.FaultLevel);
            Assert.False(r.FaultOnStage1Walk);
            Assert.Equal(3 * (3 + 1), r.MemoryAccesses);
            Assert.Equal(12, r.StepsRecorded);
        }

        [Fact]
        public void UnmappedGuestTableIsAStage2FaultDuringTheStage1Walk()
        {
            MapGuestRam(blocks: false);
            BuildGuestTables();
            const ulong outsideRam = 0x4100_0000;
            WriteGuest(L2 + 0xB3 * 8, Stage1.Table(outsideRam));
            TwoStageResult r = Walk(Gva);
            Assert.Equal(TwoStageStatus.Stage2TranslationFault, r.Status);
            Assert.Equal(2, r.FaultStage);
            Assert.Equal(2, r.FaultLevel);           // no level-3 stage-2 table for that 2 MiB
            Assert.True(r.FaultOnStage1Walk);         // what ESR_EL2.ISS.S1PTW would say
            Assert.Equal(3, r.Stage1Level);
            Assert.Equal(outsideRam + 0x189 * 8, r.Gpa);   // what HPFAR_EL2 would hold (page part)
            Assert.Equal(3 * (3 + 1) + 2, r.MemoryAccesses);
        }

        [Fact]
        public void UnmappedDataIsAStage2FaultAfterTheStage1Walk()
        {
            MapGuestRam(blocks: false);
            BuildGuestTables();
            Assert.Equal(Stage2Status.Ok, _stage2.Unmap4K(DataGpa, out _));
            TwoStageResult r = Walk(Gva);
            Assert.Equal(TwoStageStatus.Stage2TranslationFault, r.Status);
            Assert.Equal(2, r.FaultStage);
            Assert.Equal(3, r.FaultLevel);
            Assert.False(r.FaultOnStage1Walk);
            Assert.Equal(DataGpa + 0xABC, r.Gpa);
            Assert.Equal(19, r.MemoryAccesses);

            // A GPA beyond the 40-bit IPA space faults at stage 2, level 0.
            WriteGuest(L3 + 0x189 * 8, Stage1.Page(1UL << 41, GuestPage));
            r = Walk(Gva);
            Assert.Equal(TwoStageStatus.Stage2TranslationFault, r.Status);
            Assert.Equal(0, r.FaultLevel);
            Assert.Equal(16, r.MemoryAccesses);
        }

        [Fact]
        public void GuestEntryWithoutAccessFlagFaults()
        {
            MapGuestRam(blocks: false);
            BuildGuestTables();
            WriteGuest(L3 + 0x189 * 8, Stage1.Page(DataGpa, GuestPage & ~Stage1.AccessFlag));
            TwoStageResult r = Walk(Gva);
            Assert.Equal(TwoStageStatus.Stage1AccessFlagFault, r.Status);
            Assert.Equal(1, r.FaultStage);
            Assert.Equal(3, r.FaultLevel);
        }

        [Fact]
        public void AddressesOutsideTheConfiguredRangesFaultAtLevel0()
        {
            MapGuestRam(blocks: false);
            BuildGuestTables();
            // Bit 48 set in a 48-bit lower range: neither TTBR0's nor TTBR1's.
            TwoStageResult r = Walk(0x0001_0000_0000_0000);
            Assert.Equal(TwoStageStatus.Stage1TranslationFault, r.Status);
            Assert.Equal(0, r.FaultLevel);
            Assert.Equal(0, r.MemoryAccesses);

            // EPD0: walks of the lower range are disabled.
            r = Walk(Gva, Tcr48 | (1UL << 7));
            Assert.Equal(TwoStageStatus.Stage1TranslationFault, r.Status);
            Assert.Equal(0, r.FaultLevel);

            // A tag in the top byte only passes with TBI0.
            ulong tagged = Gva | (0x5AUL << 56);
            Assert.Equal(TwoStageStatus.Stage1TranslationFault, Walk(tagged).Status);
            r = Walk(tagged, Tcr48 | (1UL << 37));
            Assert.Equal(TwoStageStatus.Ok, r.Status);
            Assert.Equal(DataGpa + 0xABC, r.Gpa);

            // 64 KiB granule: not handled here.
            Assert.Equal(TwoStageStatus.UnsupportedStage1Config, Walk(Gva, Tcr48 | (0b01UL << 14)).Status);
        }

        [Fact]
        public void ShortStepBufferStillCountsEveryRead()
        {
            MapGuestRam(blocks: false);
            BuildGuestTables();
            Span<TranslationStep> steps = stackalloc TranslationStep[5];
            Assert.Equal(TwoStageStatus.Ok, TwoStageWalker.Translate(_stage2, Registers(), Gva, steps, out TwoStageResult r));
            Assert.Equal(5, r.StepsRecorded);
            Assert.Equal(19, r.MemoryAccesses);
            Assert.Equal(1, steps[3].Stage);
            Assert.Equal(2, steps[4].Stage);
        }
    }
}
