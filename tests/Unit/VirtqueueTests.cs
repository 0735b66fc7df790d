using System;
using System.Collections.Generic;
using Hypervisor.Devices;
using Xunit;

namespace Hypervisor.Tests.Unit
{
    // Guest RAM for device code: a byte array standing at GPA 0x40000000.
    // Every Read is recorded, and an access outside RAM is refused AND
    // counted, so a test can assert the device code never even tried.
    internal sealed class FakeGuestRam : GuestMemoryView
    {
        public const ulong Base = 0x4000_0000;
        public const ulong Size = 4 << 20;
        public readonly byte[] Bytes = new byte[Size];
        public readonly List<(ulong Gpa, int Length)> Reads = new List<(ulong, int)>();
        public int OutsideAccesses;

        public override bool IsRam(ulong gpa, ulong length) =>
            length != 0 && gpa >= Base && gpa + length >= gpa && gpa + length <= Base + Size;

        public override bool Read(ulong gpa, Span<byte> destination)
        {
            Reads.Add((gpa, destination.Length));
            if (!IsRam(gpa, (ulong)destination.Length)) { OutsideAccesses++; return false; }
            Bytes.AsSpan((int)(gpa - Base), destination.Length).CopyTo(destination);
            return true;
        }

        public override bool Write(ulong gpa, ReadOnlySpan<byte> source)
        {
            if (!IsRam(gpa, (ulong)source.Length)) { OutsideAccesses++; return false; }
            source.CopyTo(Bytes.AsSpan((int)(gpa - Base)));
            return true;
        }

        public ushort U16(ulong gpa) => (ushort)(Bytes[gpa - Base] | Bytes[gpa - Base + 1] << 8);
        public uint U32(ulong gpa) => U16(gpa) | (uint)U16(gpa + 2) << 16;
        public void SetU16(ulong gpa, ushort v) { Bytes[gpa - Base] = (byte)v; Bytes[gpa - Base + 1] = (byte)(v >> 8); }
        public void SetU32(ulong gpa, uint v) { SetU16(gpa, (ushort)v); SetU16(gpa + 2, (ushort)(v >> 16)); }
        public void SetU64(ulong gpa, ulong v) { SetU32(gpa, (uint)v); SetU32(gpa + 4, (uint)(v >> 32)); }
    }

    // The driver's side of a split virtqueue, written by hand: descriptors,
    // the available ring, and reading back the used ring.
    internal sealed class DriverRings
    {
        public const ulong Desc = FakeGuestRam.Base + 0x1000;
        public const ulong Avail = FakeGuestRam.Base + 0x2000;
        public const ulong Used = FakeGuestRam.Base + 0x3000;
        public const ulong Data = FakeGuestRam.Base + 0x10_0000;   // buffers live here

        public readonly FakeGuestRam Ram;
        public readonly ushort Size;
        private ushort _availIdx;

        public DriverRings(FakeGuestRam ram, ushort size) { Ram = ram; Size = size; }

        public void Descriptor(int index, ulong addr, uint len, ushort flags, ushort next)
        {
            ulong d = Desc + 16 * (ulong)index;
            Ram.SetU64(d, addr);
            Ram.SetU32(d + 8, len);
            Ram.SetU16(d + 12, flags);
            Ram.SetU16(d + 14, next);
        }

        // Ring entry first, then the index that publishes it.
        public void Publish(ushort head)
        {
            Ram.SetU16(Avail + 4 + 2 * (ulong)(_availIdx % Size), head);
            _availIdx++;
            Ram.SetU16(Avail + 2, _availIdx);
        }

        public void SetAvailIdx(ushort idx) { _availIdx = idx; Ram.SetU16(Avail + 2, idx); }
        public ushort UsedIdx => Ram.U16(Used + 2);
        public (uint Id, uint Len) UsedElement(int slot) => (Ram.U32(Used + 4 + 8 * (ulong)slot), Ram.U32(Used + 8 + 8 * (ulong)slot));
    }

    public class VirtqueueTests
    {
        private const ushort Next = Virtqueue.DescFlagNext, Write = Virtqueue.DescFlagWrite, Indirect = Virtqueue.DescFlagIndirect;
        private readonly FakeGuestRam _ram = new FakeGuestRam();
        private readonly DriverRings _rings;
        private readonly Virtqueue _queue;

        public VirtqueueTests()
        {
            _rings = new DriverRings(_ram, 8);
            _queue = new Virtqueue(_ram);
            Assert.Equal(VirtqStatus.Ok, _queue.Configure(8, DriverRings.Desc, DriverRings.Avail, DriverRings.Used));
        }

        // Publishes a chain whose head is `head`, pops it, and walks it.
        private VirtqStatus PopAndRead(ushort head, Span<VirtqBuffer> buffers, out int count)
        {
            _rings.Publish(head);
            Assert.Equal(VirtqStatus.Ok, _queue.TryPop(out ushort popped));
            Assert.Equal(head, popped);
            return _queue.ReadChain(popped, buffers, out count);
        }

        [Fact]
        public void Chain_of_three_is_read_and_returned_through_the_used_ring()
        {
            _rings.Descriptor(2, DriverRings.Data, 16, Next, 5);
            _rings.Descriptor(5, DriverRings.Data + 0x100, 32, Next, 0);
            _rings.Descriptor(0, DriverRings.Data + 0x200, 64, Write, 7);   // no NEXT: `next` is ignored
            var buffers = new VirtqBuffer[4];
            Assert.Equal(VirtqStatus.Ok, PopAndRead(2, buffers, out int count));
            Assert.Equal(3, count);
            Assert.Equal((DriverRings.Data, 16u, false), (buffers[0].Gpa, buffers[0].Length, buffers[0].DeviceWritable));
            Assert.Equal((DriverRings.Data + 0x100, 32u, false), (buffers[1].Gpa, buffers[1].Length, buffers[1].DeviceWritable));
            Assert.Equal((DriverRings.Data + 0x200, 64u, true), (buffers[2].Gpa, buffers[2].Length, buffers[2].DeviceWritable));

            Assert.Equal(VirtqStatus.Ok, _queue.PushUsed(2, 40));
            Assert.Equal(1, _rings.UsedIdx);
            Assert.Equal((2u, 40u), _rings.UsedElement(0));
            Assert.Equal(VirtqStatus.Empty, _queue.TryPop(out _));
            Assert.Equal(1ul, _queue.Counters.Popped);
            Assert.Equal(1ul, _queue.Counters.Used);
            Assert.Equal(0ul, _queue.Counters.Malformed);
        }

        [Fact]
        public void Only_the_descriptor_table_and_available_ring_are_read()
        {
            _rings.Descriptor(0, DriverRings.Data, 16, Next, 1);
            _rings.Descriptor(1, DriverRings.Data + 0x100, 16, Write, 0);
            Assert.Equal(VirtqStatus.Ok, PopAndRead(0, new VirtqBuffer[2], out _));
            foreach (var (gpa, length) in _ram.Reads)
            {
                bool inDesc = gpa >= DriverRings.Desc && gpa + (ulong)length <= DriverRings.Desc + 16 * 8;
                bool inAvail = gpa >= DriverRings.Avail && gpa + (ulong)length <= DriverRings.Avail + 6 + 2 * 8;
                Assert.True(inDesc || inAvail, $"read at {gpa:x}");
            }
            Assert.Equal(0, _ram.OutsideAccesses);
        }

        [Fact]
        public void Indices_wrap_at_65536()
        {
            _rings.Descriptor(3, DriverRings.Data, 8, 0, 0);
            var buffers = new VirtqBuffer[1];
            for (int i = 0; i < 65536 + 20; i++)
            {
                Assert.Equal(VirtqStatus.Ok, PopAndRead(3, buffers, out int count));
                Assert.Equal(1, count);
                Assert.Equal(VirtqStatus.Ok, _queue.PushUsed(3, (uint)i));
            }
            Assert.Equal((ushort)20, _queue.UsedIndex);
            Assert.Equal(20, _rings.UsedIdx);
            Assert.Equal((3u, (uint)(65536 + 19)), _rings.UsedElement((20 - 1) % 8));
        }

        [Fact]
        public void Chain_of_exactly_size_descriptors_is_fine()
        {
            for (int i = 0; i < 8; i++) _rings.Descriptor(i, DriverRings.Data + 0x100 * (ulong)i, 4, (ushort)(i < 7 ? Next : 0), (ushort)(i + 1));
            Assert.Equal(VirtqStatus.Ok, PopAndRead(0, new VirtqBuffer[8], out int count));
            Assert.Equal(8, count);
        }

        [Fact]
        public void Next_index_out_of_range_is_refused()
        {
            _rings.Descriptor(0, DriverRings.Data, 16, Next, 8);
            Assert.Equal(VirtqStatus.IndexOutOfRange, PopAndRead(0, new VirtqBuffer[4], out int count));
            Assert.Equal(0, count);
            Assert.Equal(1ul, _queue.Counters.IndexOutOfRange);
        }

        [Fact]
        public void Two_descriptor_loop_is_refused()
        {
            _rings.Descriptor(1, DriverRings.Data, 16, Next, 2);
            _rings.Descriptor(2, DriverRings.Data + 0x100, 16, Next, 1);
            Assert.Equal(VirtqStatus.ChainTooLong, PopAndRead(1, new VirtqBuffer[16], out int count));
            Assert.Equal(0, count);
            Assert.Equal(1ul, _queue.Counters.ChainTooLong);
        }

        [Fact]
        public void Self_loop_is_refused_even_with_a_small_span()
        {
            // The span fills after one buffer; the walk goes on and still
            // names the real problem.
            _rings.Descriptor(4, DriverRings.Data, 16, Next, 4);
            Assert.Equal(VirtqStatus.ChainTooLong, PopAndRead(4, new VirtqBuffer[1], out _));
            Assert.Equal(0ul, _queue.Counters.TooManyBuffers);
            Assert.True(_ram.Reads.Count < 20, "the walk stopped after `size` descriptors");
        }

        [Fact]
        public void Indirect_descriptor_is_refused()
        {
            _rings.Descriptor(0, DriverRings.Data, 16, Next, 1);
            _rings.Descriptor(1, DriverRings.Data + 0x100, 32, Indirect, 0);
            Assert.Equal(VirtqStatus.Indirect, PopAndRead(0, new VirtqBuffer[4], out _));
            Assert.Equal(1ul, _queue.Counters.Indirect);
        }

        [Theory]
        [InlineData(0x3fff_f000ul, 16u)]                        // below RAM
        [InlineData(0x0900_0000ul, 4u)]                         // the UART
        [InlineData(FakeGuestRam.Base + FakeGuestRam.Size, 1u)] // just past the end
        [InlineData(FakeGuestRam.Base + FakeGuestRam.Size - 8, 16u)] // straddles the end
        [InlineData(0xffff_ffff_ffff_f000ul, 0x2000u)]          // addr + len wraps past 2^64
        [InlineData(0xffff_ffff_ffff_ffffu, 1u)]                // last byte of the address space
        public void Buffer_outside_ram_is_refused(ulong addr, uint len)
        {
            _rings.Descriptor(0, addr, len, 0, 0);
            Assert.Equal(VirtqStatus.BufferNotRam, PopAndRead(0, new VirtqBuffer[4], out _));
            Assert.Equal(1ul, _queue.Counters.BufferNotRam);
            Assert.Equal(0, _ram.OutsideAccesses);
        }

        [Fact]
        public void Zero_length_buffer_is_accepted_without_an_address_check()
        {
            _rings.Descriptor(0, 0xdead_0000, 0, Write, 0);
            var buffers = new VirtqBuffer[1];
            Assert.Equal(VirtqStatus.Ok, PopAndRead(0, buffers, out int count));
            Assert.Equal(1, count);
            Assert.Equal(0u, buffers[0].Length);
        }

        [Theory]
        [InlineData(DriverRings.Desc + 0x70, 0x20u)]    // last descriptor and beyond
        [InlineData(DriverRings.Avail - 4, 6u)]         // reaches the avail flags
        [InlineData(DriverRings.Avail + 0x14, 2u)]      // avail used_event field
        [InlineData(DriverRings.Used + 0x40, 4u)]       // inside the used ring
        [InlineData(DriverRings.Used - 0x100, 0x200u)]  // covers the start of the used ring
        public void Buffer_overlapping_a_ring_is_refused(ulong addr, uint len)
        {
            _rings.Descriptor(0, addr, len, Write, 0);
            Assert.Equal(VirtqStatus.BufferOverlapsRing, PopAndRead(0, new VirtqBuffer[4], out _));
            Assert.Equal(1ul, _queue.Counters.BufferOverlapsRing);
        }

        [Fact]
        public void Buffer_just_next_to_the_rings_is_fine()
        {
            _rings.Descriptor(0, DriverRings.Desc + 16 * 8, 0x1000 - 16 * 8, Next, 1);   // table end .. avail
            _rings.Descriptor(1, DriverRings.Used + 6 + 8 * 8, 16, Write, 0);          // right after used
            Assert.Equal(VirtqStatus.Ok, PopAndRead(0, new VirtqBuffer[2], out int count));
            Assert.Equal(2, count);
        }

        [Fact]
        public void Readable_after_writable_is_refused()
        {
            _rings.Descriptor(0, DriverRings.Data, 16, Write | Next, 1);
            _rings.Descriptor(1, DriverRings.Data + 0x100, 16, 0, 0);
            Assert.Equal(VirtqStatus.ReadableAfterWritable, PopAndRead(0, new VirtqBuffer[4], out _));
            Assert.Equal(1ul, _queue.Counters.ReadableAfterWritable);
        }

        [Fact]
        public void Chain_longer_than_the_span_is_refused()
        {
            _rings.Descriptor(0, DriverRings.Data, 16, Next, 1);
            _rings.Descriptor(1, DriverRings.Data + 0x100, 16, Next, 2);
            _rings.Descriptor(2, DriverRings.Data + 0x200, 16, Write, 0);
            Assert.Equal(VirtqStatus.TooManyBuffers, PopAndRead(0, new VirtqBuffer[2], out int count));
            Assert.Equal(0, count);
            Assert.Equal(1ul, _queue.Counters.TooManyBuffers);
        }

        [Fact]
        public void Avail_index_jump_beyond_size_is_refused_and_nothing_consumed()
        {
            _rings.SetAvailIdx(9);
            Assert.Equal(VirtqStatus.AvailIndexJump, _queue.TryPop(out _));
            Assert.Equal(0, _queue.LastAvailIndex);
            Assert.Equal(1ul, _queue.Counters.AvailIndexJumps);
            _rings.SetAvailIdx(8);   // exactly a full ring is legal
            _rings.Descriptor(0, DriverRings.Data, 4, 0, 0);
            Assert.Equal(VirtqStatus.Ok, _queue.TryPop(out ushort head));
            Assert.Equal(0, head);
        }

        [Fact]
        public void Head_out_of_range_is_consumed_and_reported_once()
        {
            _rings.Publish(8);
            Assert.Equal(VirtqStatus.HeadOutOfRange, _queue.TryPop(out ushort head));
            Assert.Equal(8, head);
            Assert.Equal(VirtqStatus.Empty, _queue.TryPop(out _));
            Assert.Equal(1ul, _queue.Counters.BadHeads);
            Assert.Equal(VirtqStatus.HeadOutOfRange, _queue.PushUsed(8, 0));
            Assert.Equal(0, _rings.UsedIdx);
        }

        [Fact]
        public void Malformed_total_adds_the_kinds()
        {
            _rings.Descriptor(0, DriverRings.Data, 16, Indirect, 0);
            _rings.Descriptor(1, DriverRings.Data, 16, Next, 9);
            PopAndRead(0, new VirtqBuffer[1], out _);
            PopAndRead(1, new VirtqBuffer[1], out _);
            Assert.Equal(2ul, _queue.Counters.Malformed);
        }

        [Theory]
        [InlineData(0u)]
        [InlineData(3u)]
        [InlineData(12u)]
        [InlineData(512u)]
        [InlineData(65536u)]
        public void Bad_sizes_are_refused(uint size)
        {
            var q = new Virtqueue(_ram);
            Assert.Equal(VirtqStatus.BadSize, q.Configure(size, DriverRings.Desc, DriverRings.Avail, DriverRings.Used));
            Assert.False(q.Ready);
            Assert.Equal(1ul, q.Counters.ConfigureFailures);
        }

        [Theory]
        [InlineData(1u)]
        [InlineData(256u)]
        public void Size_limits_are_accepted(uint size)
        {
            var q = new Virtqueue(_ram);
            Assert.Equal(VirtqStatus.Ok, q.Configure(size, DriverRings.Desc, DriverRings.Desc + 0x1000, DriverRings.Desc + 0x2000));
            Assert.True(q.Ready);
            Assert.Equal(size, q.Size);
        }

        [Theory]
        [InlineData(DriverRings.Desc + 8, DriverRings.Avail, DriverRings.Used, VirtqStatus.DescMisaligned)]
        [InlineData(DriverRings.Desc, DriverRings.Avail + 1, DriverRings.Used, VirtqStatus.AvailMisaligned)]
        [InlineData(DriverRings.Desc, DriverRings.Avail, DriverRings.Used + 2, VirtqStatus.UsedMisaligned)]
        [InlineData(0x1000ul, DriverRings.Avail, DriverRings.Used, VirtqStatus.DescNotRam)]
        [InlineData(FakeGuestRam.Base + FakeGuestRam.Size - 0x40, DriverRings.Avail, DriverRings.Used, VirtqStatus.DescNotRam)]
        [InlineData(0xffff_ffff_ffff_ffc0ul, DriverRings.Avail, DriverRings.Used, VirtqStatus.DescNotRam)]
        [InlineData(DriverRings.Desc, 0x0900_0000ul, DriverRings.Used, VirtqStatus.AvailNotRam)]
        [InlineData(DriverRings.Desc, DriverRings.Avail, FakeGuestRam.Base + FakeGuestRam.Size - 0x40, VirtqStatus.UsedNotRam)]
        [InlineData(DriverRings.Desc, DriverRings.Desc + 0x40, DriverRings.Used, VirtqStatus.RingsOverlap)]
        [InlineData(DriverRings.Desc, DriverRings.Avail, DriverRings.Desc + 0x7c, VirtqStatus.RingsOverlap)]
        [InlineData(DriverRings.Desc, DriverRings.Avail, DriverRings.Avail + 0x14, VirtqStatus.RingsOverlap)]
        [InlineData(DriverRings.Desc, DriverRings.Used + 0x44, DriverRings.Used, VirtqStatus.RingsOverlap)]
        public void Bad_ring_placement_is_refused(ulong desc, ulong avail, ulong used, VirtqStatus expected)
        {
            var q = new Virtqueue(_ram);
            Assert.Equal(expected, q.Configure(8, desc, avail, used));
            Assert.False(q.Ready);
            Assert.Equal(VirtqStatus.NotReady, q.TryPop(out _));
            Assert.Equal(VirtqStatus.NotReady, q.ReadChain(0, new VirtqBuffer[1], out _));
            Assert.Equal(VirtqStatus.NotReady, q.PushUsed(0, 0));
        }

        [Fact]
        public void Adjacent_rings_are_fine()
        {
            var q = new Virtqueue(_ram);
            ulong desc = DriverRings.Desc, avail = desc + 16 * 8, used = (avail + 6 + 2 * 8 + 3) & ~3ul;
            Assert.Equal(VirtqStatus.Ok, q.Configure(8, desc, avail, used));
        }

        [Fact]
        public void Reset_forgets_the_rings_but_keeps_counters()
        {
            _rings.Publish(9);
            _queue.TryPop(out _);
            _queue.Reset();
            Assert.False(_queue.Ready);
            Assert.Equal(0, _queue.Size);
            Assert.Equal(0, _queue.LastAvailIndex);
            Assert.Equal(1ul, _queue.Counters.BadHeads);
            Assert.Equal(VirtqStatus.NotReady, _queue.TryPop(out _));
        }
    }
}
