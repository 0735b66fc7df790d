using System;
using Hypervisor.Devices;
using Xunit;

namespace Hypervisor.Tests.Unit
{
    // The emulated GICv3 of one vCPU: the state a hypervisor feeds list
    // registers from, and the GICD/GICR registers a guest driver programs it
    // through (Arm IHI 0069). Register offsets are those of the spec, written
    // out here so a wrong constant in the device shows up as a failure.
    public class VgicTests
    {
        private sealed class CountingListener : VgicListener
        {
            public int Calls;
            public override void Changed() => Calls++;
        }

        private readonly VgicState _state = new VgicState();
        private readonly VgicDistributor _gicd;
        private readonly VgicRedistributor _gicr;
        private const ulong Sgi = VgicRedistributor.SgiBase;

        public VgicTests()
        {
            _gicd = new VgicDistributor(_state);
            _gicr = new VgicRedistributor(_state);
        }

        private uint Rd(ulong offset) { Assert.True(_gicd.Read(null, offset, 4, out ulong v)); return (uint)v; }
        private void Wd(ulong offset, uint value) => Assert.True(_gicd.Write(null, offset, 4, value));
        private uint Rr(ulong offset) { Assert.True(_gicr.ReadRegister(offset, 4, out ulong v)); return (uint)v; }
        private void Wr(ulong offset, uint value) => Assert.True(_gicr.WriteRegister(offset, 4, value));

        // Group 1 enabled, the given INTIDs enabled (through GICD or GICR as they belong).
        private void EnableGroup1(params int[] intids)
        {
            Wd(0x0, 2);
            foreach (int i in intids)
                if (i < 32) Wr(Sgi + 0x100, 1u << i);
                else Wd(0x100 + (ulong)(i / 32) * 4, 1u << (i % 32));
        }

        private static readonly int[] None = new int[0];

        [Fact]
        public void Devices_sit_where_QEMU_virt_puts_them()
        {
            Assert.True(_gicd.Contains(0x0800_0000) && _gicd.Contains(0x0800_ffff) && !_gicd.Contains(0x0801_0000));
            Assert.True(_gicr.Contains(0x080a_0000) && _gicr.Contains(0x080b_ffff) && !_gicr.Contains(0x080c_0000));
        }

        [Fact]
        public void Identification_registers()
        {
            Assert.Equal(0x0248_0002u, Rd(0x4));                   // ITLinesNumber 2, IDbits 9, No1N
            Assert.Equal(0x3bu, Rd(0xffe8));
            Assert.Equal(0u, Rd(0xffe0));                          // other ID registers RAZ
            Assert.Equal(0x3bu, Rr(0xffe8));
            Assert.Equal(Rd(0x8), Rr(0x4));                        // same IIDR
            Assert.True(_gicr.ReadRegister(0x8, 8, out ulong typer));
            Assert.Equal(0x10ul, typer);                           // Last, processor 0, affinity 0
            Assert.Equal(0x10u, Rr(0x8));
            Assert.Equal(0u, Rr(0xc));
        }

        [Fact]
        public void Gicd_ctlr_keeps_group_enables_and_reads_ARE_and_DS_as_one()
        {
            Assert.Equal(0x50u, Rd(0x0));
            Wd(0x0, 0xffff_ffff);
            Assert.Equal(0x53u, Rd(0x0));                          // RWP (bit 31) reads 0
            Wd(0x0, 0);
            Assert.Equal(0x50u, Rd(0x0));
        }

        [Fact]
        public void Wrong_sizes_abort_but_reserved_space_is_raz_wi()
        {
            Assert.False(_gicd.Read(null, 0x0, 2, out _));
            Assert.False(_gicd.Write(null, 0x100, 8, 1));
            Assert.False(_gicd.Read(null, 0x102, 4, out _));       // misaligned
            Assert.False(_gicr.ReadRegister(0x14, 1, out _));
            Assert.False(_gicr.ReadRegister(0xc, 8, out _));       // TYPER as 64-bit must be aligned
            Assert.True(_gicd.Read(null, 0x40, 2, out ulong v)); Assert.Equal(0ul, v);
            Assert.True(_gicd.Write(null, 0x9000, 8, ~0ul));
            Assert.True(_gicr.WriteRegister(Sgi + 0xe00, 4, ~0u));
            Assert.Equal(0u, Rr(Sgi + 0xe00));
        }

        [Fact]
        public void Enable_pending_active_set_and_clear_the_right_spi_bits()
        {
            Wd(0x104, 0x0000_0003);                                // ISENABLER1: INTIDs 32, 33
            Wd(0x108, 0x8000_0000);                                // ISENABLER2: INTID 95
            Assert.True(_state.IsEnabled(32) && _state.IsEnabled(33) && _state.IsEnabled(95));
            Assert.False(_state.IsEnabled(34) || _state.IsEnabled(64));
            Assert.Equal(3u, Rd(0x184));                           // ICENABLER reads the enables too
            Wd(0x184, 0x1);
            Assert.Equal(2u, Rd(0x104));

            Wd(0x208, 0x10);                                       // ISPENDR2: INTID 68
            Assert.True(_state.IsPending(68));
            Assert.Equal(0x10u, Rd(0x288));
            Wd(0x288, 0x10);
            Assert.False(_state.IsPending(68));

            Wd(0x304, 1u << 16);                                   // ISACTIVER1: INTID 48
            Assert.True(_state.IsActive(48));
            Wd(0x384, 1u << 16);
            Assert.False(_state.IsActive(48));

            Wd(0x084, 0x0000_ffff);                                // IGROUPR1 is read/write
            Assert.Equal(0x0000_ffffu, Rd(0x084));
            Assert.False(_state.IsGroup1(48));
            Assert.True(_state.IsGroup1(47));
        }

        [Fact]
        public void Registers_beyond_the_last_spi_read_zero_and_ignore_writes()
        {
            Wd(0x10c, ~0u);                                        // INTIDs 96..127 do not exist
            Assert.Equal(0u, Rd(0x10c));
            Wd(0x47c, ~0u);                                        // IPRIORITYR for INTIDs 124..127
            Assert.Equal(0u, Rd(0x47c));
            Assert.True(_gicd.Write(null, 0x6000 + 8 * 200, 8, 5));
            Assert.True(_gicd.Read(null, 0x6000 + 8 * 200, 8, out ulong r)); Assert.Equal(0ul, r);
        }

        [Fact]
        public void Distributor_ignores_the_banked_sgi_ppi_registers()
        {
            Wd(0x100, ~0u);                                        // ISENABLER0
            Wd(0x200, ~0u);                                        // ISPENDR0
            Wd(0x080, 0);                                          // IGROUPR0
            Wd(0x400, 0x1122_3344);                                // IPRIORITYR0
            Wd(0xc04, 0x5555_5555);                                // ICFGR1
            Assert.Equal(0u, Rd(0x100));
            Assert.Equal(0u, Rd(0x080));
            Assert.Equal(0u, Rd(0x400));
            Assert.Equal(0u, Rd(0xc00));
            for (int i = 0; i < 32; i++)
            {
                Assert.False(_state.IsEnabled(i) || _state.IsPending(i));
                Assert.True(_state.IsGroup1(i));
                Assert.Equal(0, _state.Priority(i));
            }
            Assert.True(_state.IsLevelSensitive(27));
        }

        [Fact]
        public void Redistributor_owns_sgis_and_ppis()
        {
            Wr(Sgi + 0x100, 1u << 27 | 1u << 3);                   // ISENABLER0: timer PPI and SGI 3
            Assert.True(_state.IsEnabled(27) && _state.IsEnabled(3));
            Wr(Sgi + 0x180, 1u << 3);
            Assert.Equal(1u << 27, Rr(Sgi + 0x100));
            Wr(Sgi + 0x200, 1u << 5);
            Assert.True(_state.IsPending(5));
            Wr(Sgi + 0x280, 1u << 5);
            Assert.False(_state.IsPending(5));
            Wr(Sgi + 0x300, 1u << 20);
            Assert.Equal(1u << 20, Rr(Sgi + 0x380));
            Wr(Sgi + 0x104, ~0u);                                  // ISENABLER1 does not exist here
            Assert.False(_state.IsEnabled(32));
            Assert.Equal(0u, Rr(Sgi + 0x104));
            Assert.Equal(0u, Rr(Sgi + 0xd00));                     // IGRPMODR0 RAZ/WI
        }

        [Fact]
        public void Icfgr0_is_all_edge_and_read_only_icfgr1_configures_ppis()
        {
            Assert.Equal(0xaaaa_aaaau, Rr(Sgi + 0xc00));
            Wr(Sgi + 0xc00, 0);
            Assert.Equal(0xaaaa_aaaau, Rr(Sgi + 0xc00));
            Assert.Equal(0u, Rr(Sgi + 0xc04));                     // PPIs start level
            Wr(Sgi + 0xc04, 2u << (2 * 10));                       // PPI 10 = INTID 26 edge
            Assert.False(_state.IsLevelSensitive(26));
            Assert.True(_state.IsLevelSensitive(27));
            Assert.Equal(2u << 20, Rr(Sgi + 0xc04));
            Wd(0xc08, 2u << (2 * 1));                              // ICFGR2: INTID 33 edge
            Assert.False(_state.IsLevelSensitive(33));
            Assert.Equal(2u << 2, Rd(0xc08));
        }

        [Fact]
        public void Priorities_by_byte_and_by_word()
        {
            Assert.True(_gicd.Write(null, 0x400 + 33, 1, 0xa5));
            Assert.Equal(0xa5, _state.Priority(33));
            Assert.Equal(0xa500u, Rd(0x420));
            Wd(0x424, 0x4433_2211);                                // INTIDs 36..39
            Assert.Equal(0x11, _state.Priority(36));
            Assert.Equal(0x44, _state.Priority(39));
            Assert.True(_gicd.Read(null, 0x400 + 38, 1, out ulong b));
            Assert.Equal(0x33ul, b);
            Assert.True(_gicr.WriteRegister(Sgi + 0x400 + 27, 1, 0x80));
            Assert.Equal(0x80, _state.Priority(27));
            Assert.Equal(0x8000_0000u, Rr(Sgi + 0x418));
            Assert.False(_gicd.Write(null, 0x401, 2, 0));          // halfword: abort
            Assert.False(_gicd.Write(null, 0x402, 4, 0));          // misaligned word
        }

        [Fact]
        public void Irouter_stores_64_bits_and_32_bit_halves()
        {
            Assert.True(_gicd.Write(null, 0x6000 + 8 * 40, 8, 0x0000_0001_0000_0203));
            Assert.Equal(0x0000_0001_0000_0203ul, _state.ReadRouter(40));
            Assert.True(_gicd.Write(null, 0x6000 + 8 * 40 + 4, 4, 0x2));
            Assert.True(_gicd.Read(null, 0x6000 + 8 * 40, 8, out ulong r));
            Assert.Equal(0x0000_0002_0000_0203ul, r);
            Assert.Equal(0x203u, Rd(0x6000 + 8 * 40));
            Assert.True(_gicd.Write(null, 0x6000 + 8 * 5, 8, 1));  // n < 32: reserved
            Assert.Equal(0ul, _state.ReadRouter(5));
            Assert.False(_gicd.Write(null, 0x6000 + 8 * 40, 2, 0));
        }

        [Fact]
        public void Next_deliverable_goes_by_priority_then_lower_intid()
        {
            EnableGroup1(27, 33, 48, 50);
            _state.WritePriority(27, 0xa0);
            _state.WritePriority(33, 0x80);
            _state.WritePriority(48, 0x80);
            _state.WritePriority(50, 0x40);
            foreach (int i in new[] { 27, 33, 48, 50 }) _state.Raise(i);
            Assert.Equal(50, _state.NextDeliverable(None));
            Assert.Equal(33, _state.NextDeliverable(new[] { 50 }));
            Assert.Equal(48, _state.NextDeliverable(new[] { 50, 33 }));
            Assert.Equal(27, _state.NextDeliverable(new[] { 50, 33, 48 }));
            Assert.Equal(-1, _state.NextDeliverable(new[] { 50, 33, 48, 27 }));
            Span<int> inRegisters = stackalloc int[] { 33 };
            Assert.Equal(50, _state.NextDeliverable(inRegisters));
        }

        [Fact]
        public void Disabled_active_or_group_disabled_interrupts_are_not_deliverable()
        {
            _state.Raise(40);
            _state.WriteDistributorControl(VgicState.CtlrEnableGrp1);
            Assert.Equal(-1, _state.NextDeliverable(None));        // not enabled
            Wd(0x104, 1u << 8);
            Assert.Equal(40, _state.NextDeliverable(None));
            Wd(0x0, 0);                                            // group 1 off in GICD_CTLR
            Assert.Equal(-1, _state.NextDeliverable(None));
            Wd(0x0, 1);                                            // only group 0 on
            Assert.Equal(-1, _state.NextDeliverable(None));
            Wd(0x084, 0);                                          // now it is group 0
            Assert.Equal(40, _state.NextDeliverable(None));
            Wd(0x304, 1u << 8);                                    // active (and pending)
            Assert.True(_state.IsPending(40));
            Assert.Equal(-1, _state.NextDeliverable(None));
            Wd(0x384, 1u << 8);
            Assert.Equal(40, _state.NextDeliverable(None));
        }

        [Fact]
        public void Level_interrupt_stays_pending_while_the_line_is_high()
        {
            EnableGroup1(27);
            _state.SetLevel(27, true);
            Assert.True(_state.IsPending(27));
            Assert.Equal(27, _state.NextDeliverable(None));
            _state.Delivered(27);
            Assert.True(_state.IsPending(27));
            Wr(Sgi + 0x280, 1u << 27);                             // ICPENDR cannot clear a high line
            Assert.True(_state.IsPending(27));
            _state.Retired(27, false, true);                       // acknowledged, not yet EOI'd
            Assert.Equal(-1, _state.NextDeliverable(None));
            _state.Retired(27, false, false);                      // EOI with the line still high
            Assert.Equal(27, _state.NextDeliverable(None));
            _state.SetLevel(27, false);
            Assert.False(_state.IsPending(27));
            Assert.Equal(-1, _state.NextDeliverable(None));
        }

        [Fact]
        public void Edge_interrupt_is_consumed_by_delivery()
        {
            EnableGroup1(1, 40);
            Wd(0xc08, 2u << (2 * 8));                              // INTID 40 edge
            _state.Raise(1);                                       // SGI 1
            _state.SetLevel(40, true);                             // rising edge latches
            Assert.True(_state.IsPending(40));
            _state.Delivered(1);
            _state.Delivered(40);
            Assert.False(_state.IsPending(1));
            Assert.False(_state.IsPending(40));                    // line still high, but edge
            Assert.Equal(-1, _state.NextDeliverable(None));
            _state.Retired(40, true, false);                       // taken back out unacknowledged
            Assert.True(_state.IsPending(40));
            _state.Delivered(40);
            _state.Retired(40, false, false);
            Assert.False(_state.IsPending(40));
        }

        [Fact]
        public void Software_pended_level_interrupt_is_consumed_by_delivery()
        {
            EnableGroup1(35);
            Wd(0x204, 1u << 3);                                    // ISPENDR1: INTID 35, line low
            Assert.Equal(35, _state.NextDeliverable(None));
            _state.Delivered(35);
            _state.Retired(35, false, false);
            Assert.Equal(-1, _state.NextDeliverable(None));
        }

        [Fact]
        public void Out_of_range_intids_are_ignored()
        {
            foreach (int i in new[] { -1, 96, 1023, int.MaxValue, int.MinValue })
            {
                _state.Raise(i);
                _state.SetLevel(i, true);
                _state.Delivered(i);
                _state.Retired(i, true, true);
                _state.WritePriority(i, 1);
                _state.WriteRouter(i, 1);
                Assert.False(_state.IsPending(i) || _state.IsEnabled(i) || _state.IsActive(i));
                Assert.Equal(0, _state.ReadPriority(i));
                Assert.Equal(0ul, _state.ReadRouter(i));
            }
            _state.Write(VgicBit.Enable, 3, ~0u, true);
            _state.Write(VgicBit.Enable, -1, ~0u, true);
            Assert.Equal(0u, _state.Read(VgicBit.Enable, 3));
            Assert.Equal(0u, _state.ReadConfig(100));
            _state.WriteConfig(-5, ~0u);
            Assert.Equal(-1, _state.NextDeliverable(None));
        }

        [Fact]
        public void Waker_handshake()
        {
            Assert.Equal(0x6u, Rr(0x14));                          // asleep out of reset
            Wr(0x14, 0);                                           // clear ProcessorSleep...
            Assert.Equal(0u, Rr(0x14));                            // ...ChildrenAsleep follows
            Wr(0x14, 0x2);
            Assert.Equal(0x6u, Rr(0x14));
            Wr(0x14, 0x4);                                         // ChildrenAsleep is read-only
            Assert.Equal(0u, Rr(0x14));
        }

        [Fact]
        public void Listener_hears_about_changes_only()
        {
            var listener = new CountingListener();
            _state.Listener = listener;
            _state.Raise(40);
            Assert.Equal(1, listener.Calls);
            _state.Raise(40);                                      // already latched
            Assert.Equal(1, listener.Calls);
            Wd(0x104, 1u << 8);                                    // guest enables the pending one
            Assert.Equal(2, listener.Calls);
            Wd(0x104, 1u << 8);
            Assert.Equal(2, listener.Calls);
            _state.SetLevel(27, true);
            _state.SetLevel(27, true);
            Assert.Equal(3, listener.Calls);
            Wd(0x0, 2);
            Assert.Equal(4, listener.Calls);
            _state.Listener = null;
            _state.Raise(41);                                      // no listener: nothing to call
        }

        // ICC_SGI1R_EL1 routing for the one vCPU (affinity 0.0.0.0).
        [Theory]
        [InlineData(0x0300_0001UL, true, 3)]                  // target list {0}, INTID 3
        [InlineData(0x0f00_0003UL, true, 15)]                 // {0, 1}: vCPU 0 among others
        [InlineData(0x0300_0002UL, false, 3)]                 // {1}: another PE
        [InlineData(0x0301_0001UL, false, 3)]                 // Aff1 = 1
        [InlineData(0x01_0300_0001UL, false, 3)]              // Aff2 = 1
        [InlineData(0x01_0000_0300_0001UL, false, 3)]         // Aff3 = 1
        [InlineData(0x1000_0300_0001UL, false, 3)]            // RS = 1: list bit 0 is Aff0 16
        [InlineData(0x0100_0300_0001UL, false, 3)]            // IRM = 1: every PE but the writer
        [InlineData(0x0300_0000UL, false, 3)]                 // empty target list
        public void SgiRoutingReachesOnlyItsTargets(ulong value, bool reaches, int intid)
        {
            Assert.Equal(reaches, VgicState.SgiReaches(value, target: 0, sender: 0));
            Assert.Equal(intid, VgicState.SgiIntid(value));
        }

        // Every target list, range selector and IRM value against 8 vCPUs
        // (Aff0 0..7) and a few affinities beyond them, compared with the
        // architecture's rule written out the long way.
        [Fact]
        public void EverySgiTargetCombinationReachesExactlyTheNamedPes()
        {
            ulong[] pes = { 0, 1, 2, 7, 15, 16, 17, 0x100, 0x101, 0x10000, 0x1_0000_0000 };
            foreach (ulong sender in new ulong[] { 0, 3, 16 })
                foreach (ulong irm in new ulong[] { 0, 1 })
                    foreach (ulong rs in new ulong[] { 0, 1 })
                        foreach (ulong aff1 in new ulong[] { 0, 1 })
                            for (ulong list = 0; list < 0x10000; list += 0x111)
                            {
                                ulong value = list | aff1 << 16 | 5UL << 24 | irm << 40 | rs << 44;
                                foreach (ulong pe in pes)
                                {
                                    bool expected = irm == 1
                                        ? pe != sender
                                        : (pe >> 8 & 0xff) == aff1 && (pe >> 16 & 0xff) == 0 && (pe >> 32) == 0 &&
                                          (pe & 0xff) / 16 == rs && (list >> (int)(pe & 15) & 1) == 1;
                                    Assert.True(expected == VgicState.SgiReaches(value, pe, sender), $"value={value:x} pe={pe:x} sender={sender:x}");
                                }
                            }
        }

        // With two vCPUs the SPIs live once, at vCPU 0's state: an SPI routed
        // to vCPU 1 is deliverable there only, and each vCPU's SGIs and PPIs
        // are its own.
        [Fact]
        public void SpisAreSharedAndRoutedPrivateInterruptsAreNot()
        {
            var v0 = new VgicState();
            var v1 = new VgicState(v0, affinity: 1);
            v0.VcpuCount = 2;
            v0.WriteDistributorControl(VgicState.CtlrEnableGrp1);
            foreach (var v in new[] { v0, v1 }) { v.Write(VgicBit.Enable, 0, 0xffffffff, true); }
            v1.Write(VgicBit.Enable, 1, 1u << 8, true);             // INTID 40, through vCPU 1's view
            Assert.True(v0.IsEnabled(40));
            v0.Raise(40);
            Assert.Equal(40, v0.NextDeliverable(default));          // IROUTER 0: vCPU 0
            Assert.Equal(-1, v1.NextDeliverable(default));
            v1.WriteRouter(40, 1);
            Assert.Equal(1UL, v0.ReadRouter(40));
            Assert.Equal(-1, v0.NextDeliverable(default));
            Assert.Equal(40, v1.NextDeliverable(default));
            v1.Delivered(40);
            Assert.False(v0.IsPending(40));
            v1.Raise(3);                                             // an SGI to vCPU 1 only
            Assert.True(v1.IsPending(3));
            Assert.False(v0.IsPending(3));
            v0.WriteRouter(40, 0x8000_0001UL);                       // IRM is RAZ/WI (No1N)
            Assert.Equal(1UL, v0.ReadRouter(40));
        }
    }
}
