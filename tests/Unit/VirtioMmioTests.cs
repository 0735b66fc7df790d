using System;
using System.Collections.Generic;
using Hypervisor.Devices;
using Hypervisor.Vm;
using Xunit;
using R = Hypervisor.Devices.VirtioMmioRegister;
using S = Hypervisor.Devices.VirtioStatusBit;

namespace Hypervisor.Vm
{
    // Host stand-in for the kernel's VirtualMachine, which drags in the
    // world switch and frame allocator. MmioDevice and the virtio transport
    // only pass it through, so an empty class is enough here.
    public sealed class VirtualMachine { }
}

namespace Hypervisor.Tests.Unit
{
    // A device model that records what the transport told it.
    internal sealed class FakeBackend : VirtioBackend
    {
        public readonly byte[] Config = { 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88 };
        public readonly List<(int Index, Virtqueue Queue, GuestMemoryView Memory)> Notified = new List<(int, Virtqueue, GuestMemoryView)>();
        public int DriverOkCalls, ResetCalls;
        public bool ConsumeOnNotify;
        public int UnfinishedNotifies;          // answer "not done yet" this many times
        public uint LastWriteOffset; public int LastWriteSize; public uint LastWriteValue;

        // Bit 1 and 2 are device features; bit 28 (INDIRECT_DESC) must not get through.
        public override uint DeviceId => 5;
        public override ulong DeviceFeatures => 0b110 | 1ul << 28;
        public override int QueueCount => 2;
        public override uint ConfigSize => 8;

        public override bool ReadConfig(uint offset, int size, out uint value)
        {
            value = 0;
            for (int i = size - 1; i >= 0; i--) value = value << 8 | Config[offset + i];
            return true;
        }

        public override bool WriteConfig(uint offset, int size, uint value)
        {
            (LastWriteOffset, LastWriteSize, LastWriteValue) = (offset, size, value);
            return true;
        }

        public override bool OnQueueNotify(VirtualMachine vm, int queueIndex, Virtqueue queue, GuestMemoryView memory)
        {
            Notified.Add((queueIndex, queue, memory));
            if (UnfinishedNotifies > 0) { UnfinishedNotifies--; return false; }
            if (!ConsumeOnNotify) return true;
            Span<VirtqBuffer> buffers = stackalloc VirtqBuffer[4];
            while (queue.TryPop(out ushort head) == VirtqStatus.Ok)
            {
                queue.ReadChain(head, buffers, out int count);
                queue.PushUsed(head, (uint)count);
            }
            SignalUsedBuffers();
            return true;
        }

        public override void OnDriverOk(VirtualMachine vm) => DriverOkCalls++;
        public override void OnReset(VirtualMachine vm) => ResetCalls++;

        public void ChangeConfig() => SignalConfigChange();
        public void Break() => RequestReset();
    }

    public class VirtioMmioTests
    {
        private readonly FakeGuestRam _ram = new FakeGuestRam();
        private readonly FakeBackend _backend = new FakeBackend();
        private readonly VirtioMmioDevice _dev;

        public VirtioMmioTests()
        {
            _dev = new VirtioMmioDevice(VirtioMmioDevice.SlotBase(1), VirtioMmioDevice.SlotSpi(1), _backend, _ram);
        }

        private uint Rd(ulong offset)
        {
            Assert.True(_dev.Read(null, offset, 4, out ulong v), $"read {offset:x}");
            return (uint)v;
        }

        private void Wr(ulong offset, uint value) => Assert.True(_dev.Write(null, offset, 4, value), $"write {offset:x}");

        private void Negotiate(ulong features)
        {
            Wr(R.Status, S.Acknowledge);
            Wr(R.Status, S.Acknowledge | S.Driver);
            Wr(R.DriverFeaturesSel, 0); Wr(R.DriverFeatures, (uint)features);
            Wr(R.DriverFeaturesSel, 1); Wr(R.DriverFeatures, (uint)(features >> 32));
            Wr(R.Status, S.Acknowledge | S.Driver | S.FeaturesOk);
        }

        private void SetUpQueue(uint index, uint num, ulong desc, ulong avail, ulong used)
        {
            Wr(R.QueueSel, index);
            Wr(R.QueueNum, num);
            Wr(R.QueueDescLow, (uint)desc); Wr(R.QueueDescHigh, (uint)(desc >> 32));
            Wr(R.QueueDriverLow, (uint)avail); Wr(R.QueueDriverHigh, (uint)(avail >> 32));
            Wr(R.QueueDeviceLow, (uint)used); Wr(R.QueueDeviceHigh, (uint)(used >> 32));
            Wr(R.QueueReady, 1);
        }

        // The Linux order: features, queues, then DRIVER_OK.
        private void BringUp()
        {
            Negotiate(Virtio.FeatureVersion1 | 0b010);
            SetUpQueue(0, 8, DriverRings.Desc, DriverRings.Avail, DriverRings.Used);
            SetUpQueue(1, 4, DriverRings.Desc + 0x8000, DriverRings.Avail + 0x8000, DriverRings.Used + 0x8000);
            Wr(R.Status, S.Acknowledge | S.Driver | S.FeaturesOk | S.DriverOk);
        }

        [Fact]
        public void Identity_registers()
        {
            Assert.Equal(0x74726976u, Rd(R.MagicValue));
            Assert.Equal(2u, Rd(R.Version));
            Assert.Equal(5u, Rd(R.DeviceId));
            Assert.Equal(Virtio.VendorId, Rd(R.VendorId));
            Assert.Equal(0u, Rd(R.Status));
        }

        [Fact]
        public void Placement_for_the_device_tree()
        {
            Assert.Equal(0x0a000200ul, _dev.Base);
            Assert.Equal(0x200ul, _dev.Size);
            Assert.Equal(17u, _dev.Spi);
            Assert.Equal(49u, _dev.IntId);
            Assert.True(_dev.Contains(0x0a0003fc));
            Assert.False(_dev.Contains(0x0a000400));
        }

        [Fact]
        public void Device_features_in_two_halves_with_version_1_added_and_transport_bits_masked()
        {
            Wr(R.DeviceFeaturesSel, 0);
            Assert.Equal(0b110u, Rd(R.DeviceFeatures));
            Wr(R.DeviceFeaturesSel, 1);
            Assert.Equal(1u, Rd(R.DeviceFeatures));
            Wr(R.DeviceFeaturesSel, 2);
            Assert.Equal(0u, Rd(R.DeviceFeatures));
            Assert.Equal(Virtio.FeatureVersion1 | 0b110, _dev.OfferedFeatures);
        }

        [Fact]
        public void Features_ok_is_kept_for_an_acceptable_set()
        {
            Negotiate(Virtio.FeatureVersion1 | 0b100);
            Assert.Equal(S.Acknowledge | S.Driver | S.FeaturesOk, Rd(R.Status));
            Assert.Equal(Virtio.FeatureVersion1 | 0b100, _dev.NegotiatedFeatures);
            Wr(R.DriverFeaturesSel, 0);
            Assert.Equal(0b100u, Rd(R.DriverFeatures));
            Wr(R.DriverFeaturesSel, 1);
            Assert.Equal(1u, Rd(R.DriverFeatures));
            // Features are frozen now.
            Wr(R.DriverFeatures, 0);
            Assert.Equal(1u, Rd(R.DriverFeatures));
            Assert.Equal(1ul, _dev.Counters.LateFeatureWrites);
        }

        [Theory]
        [InlineData(0b010ul)]                                   // no VERSION_1
        [InlineData((1ul << 32) | (1ul << 5))]                  // bit 5 never offered
        [InlineData((1ul << 32) | (1ul << 28))]                 // INDIRECT_DESC: masked off the offer
        [InlineData((1ul << 32) | (1ul << 40))]                 // upper half, never offered
        public void Features_ok_is_refused_for_a_bad_set(ulong features)
        {
            Negotiate(features);
            Assert.Equal(S.Acknowledge | S.Driver, Rd(R.Status));
            Assert.Equal(0ul, _dev.NegotiatedFeatures);
            Assert.Equal(1ul, _dev.Counters.FeaturesRefused);
            // And DRIVER_OK cannot follow.
            Wr(R.Status, S.Acknowledge | S.Driver | S.DriverOk);
            Assert.Equal(S.Acknowledge | S.Driver, Rd(R.Status));
            Assert.Equal(1ul, _dev.Counters.DriverOkRefused);
            Assert.Equal(0, _backend.DriverOkCalls);
        }

        [Fact]
        public void Driver_ok_calls_the_backend_once()
        {
            BringUp();
            Assert.Equal(S.Acknowledge | S.Driver | S.FeaturesOk | S.DriverOk, Rd(R.Status));
            Wr(R.Status, S.Acknowledge | S.Driver | S.FeaturesOk | S.DriverOk);
            Assert.Equal(1, _backend.DriverOkCalls);
            Assert.True(_dev.DriverOk);
        }

        [Fact]
        public void Queue_registers_read_back_and_ready_validates()
        {
            Assert.Equal(256u, Rd(R.QueueNumMax));
            Assert.Equal(256u, Rd(R.QueueNum));      // default: the maximum
            SetUpQueue(1, 16, 0x1_4000_1000, 0x4000_2000, 0x4000_3000);
            // 0x1_4000_1000 is not RAM: refused, QueueReady stays 0.
            Assert.Equal(0u, Rd(R.QueueReady));
            Assert.Equal(VirtqStatus.DescNotRam, _dev.LastQueueError);
            Assert.Equal(1ul, _dev.Counters.QueueConfigureFailed);
            Assert.Equal(0x4000_1000u, Rd(R.QueueDescLow));
            Assert.Equal(1u, Rd(R.QueueDescHigh));
            Wr(R.QueueDescHigh, 0);
            Wr(R.QueueReady, 1);
            Assert.Equal(1u, Rd(R.QueueReady));
            Virtqueue q = _dev.Queue(1);
            Assert.True(q.Ready);
            Assert.Equal((16, 0x4000_1000ul, 0x4000_2000ul, 0x4000_3000ul), ((int)q.Size, q.DescGpa, q.AvailGpa, q.UsedGpa));
            Assert.False(_dev.Queue(0).Ready);
        }

        [Fact]
        public void Queue_set_up_is_frozen_while_ready()
        {
            SetUpQueue(0, 8, DriverRings.Desc, DriverRings.Avail, DriverRings.Used);
            Wr(R.QueueNum, 4);
            Wr(R.QueueDescLow, 0x4001_0000);
            Wr(R.QueueDriverHigh, 1);
            Wr(R.QueueDeviceLow, 0x4002_0000);
            Assert.Equal(4ul, _dev.Counters.QueueWriteWhileReady);
            Assert.Equal(8u, Rd(R.QueueNum));
            Assert.Equal((uint)DriverRings.Desc, Rd(R.QueueDescLow));
            Assert.Equal(DriverRings.Desc, _dev.Queue(0).DescGpa);
            // QueueReady = 0 releases it; then it can be moved.
            Wr(R.QueueReady, 0);
            Assert.False(_dev.Queue(0).Ready);
            Wr(R.QueueNum, 4);
            Assert.Equal(4u, Rd(R.QueueNum));
        }

        [Fact]
        public void Queue_num_above_max_and_missing_queues_are_refused()
        {
            Wr(R.QueueNum, 512);
            Assert.Equal(256u, Rd(R.QueueNum));
            Assert.Equal(1ul, _dev.Counters.QueueNumTooLarge);
            Wr(R.QueueSel, 2);                                  // the backend has 2 queues
            Assert.Equal(0u, Rd(R.QueueNumMax));
            Assert.Equal(0u, Rd(R.QueueReady));
            Wr(R.QueueNum, 8);
            Wr(R.QueueReady, 1);
            Assert.Equal(2ul, _dev.Counters.QueueSelectInvalid);
            Assert.Null(_dev.Queue(2));
        }

        [Fact]
        public void Invalid_queue_size_keeps_ready_at_zero()
        {
            SetUpQueue(0, 3, DriverRings.Desc, DriverRings.Avail, DriverRings.Used);
            Assert.Equal(0u, Rd(R.QueueReady));
            Assert.Equal(VirtqStatus.BadSize, _dev.LastQueueError);
        }

        [Fact]
        public void Writing_zero_to_status_resets_everything()
        {
            BringUp();
            _backend.Break();
            _dev.RaiseInterrupt(Virtio.InterruptUsedBuffer);
            Wr(R.QueueSel, 1);
            Wr(R.Status, 0);

            Assert.Equal(0u, Rd(R.Status));
            Assert.Equal(0u, Rd(R.InterruptStatus));
            Assert.Equal(0u, Rd(R.QueueSel));
            Assert.Equal(0ul, _dev.DriverFeatures);
            Assert.Equal(0ul, _dev.NegotiatedFeatures);
            Assert.False(_dev.Queue(0).Ready);
            Assert.False(_dev.Queue(1).Ready);
            Assert.Equal(256u, Rd(R.QueueNum));
            Assert.Equal(0u, Rd(R.QueueDescLow));
            Assert.Equal(1, _backend.ResetCalls);
            Assert.Equal(1ul, _dev.Counters.Resets);

            // And the whole dance works a second time.
            BringUp();
            Assert.True(_dev.Queue(0).Ready && _dev.Queue(1).Ready);
            Assert.Equal(2, _backend.DriverOkCalls);
        }

        [Fact]
        public void Notify_reaches_the_backend_with_the_right_queue()
        {
            BringUp();
            Wr(R.QueueNotify, 1);
            Wr(R.QueueNotify, 0);
            Assert.Equal(2, _backend.Notified.Count);
            Assert.Equal(1, _backend.Notified[0].Index);
            Assert.Same(_dev.Queue(1), _backend.Notified[0].Queue);
            Assert.Same(_ram, _backend.Notified[0].Memory);
            Assert.Equal(0, _backend.Notified[1].Index);
            Assert.Same(_dev.Queue(0), _backend.Notified[1].Queue);
            Assert.Equal(2ul, _dev.Counters.Notifies);
        }

        // A backend that stopped at its per-exit budget: the transport asks
        // for the store to be repeated (the caller keeps ELR on it and clears
        // the flag); a finished notify does not.
        [Fact]
        public void An_unfinished_notify_asks_for_the_store_again()
        {
            BringUp();
            _backend.UnfinishedNotifies = 2;
            Wr(R.QueueNotify, 0);
            Assert.True(_dev.RepeatAccess);
            _dev.RepeatAccess = false;
            Wr(R.QueueNotify, 0);
            Assert.True(_dev.RepeatAccess);
            _dev.RepeatAccess = false;
            Wr(R.QueueNotify, 0);
            Assert.False(_dev.RepeatAccess);
            Assert.Equal(3, _backend.Notified.Count);
            Assert.Equal(2ul, _dev.Counters.NotifyRepeats);
        }

        [Fact]
        public void Bad_notifies_are_counted_and_ignored()
        {
            Negotiate(Virtio.FeatureVersion1);
            SetUpQueue(0, 8, DriverRings.Desc, DriverRings.Avail, DriverRings.Used);
            Wr(R.QueueNotify, 0);                                   // before DRIVER_OK
            Wr(R.Status, S.Acknowledge | S.Driver | S.FeaturesOk | S.DriverOk);
            Wr(R.QueueNotify, 1);                                   // queue 1 never set up
            Wr(R.QueueNotify, 2);                                   // no such queue
            Wr(R.QueueNotify, 0xffff_ffff);
            Assert.Empty(_backend.Notified);
            Assert.Equal(1ul, _dev.Counters.NotifyDeviceNotLive);
            Assert.Equal(1ul, _dev.Counters.NotifyNotReady);
            Assert.Equal(2ul, _dev.Counters.NotifyBadQueue);
        }

        [Fact]
        public void End_to_end_a_chain_is_used_and_the_interrupt_raised_then_acknowledged()
        {
            BringUp();
            _backend.ConsumeOnNotify = true;
            var rings = new DriverRings(_ram, 8);
            rings.Descriptor(0, DriverRings.Data, 16, Virtqueue.DescFlagNext, 1);
            rings.Descriptor(1, DriverRings.Data + 0x100, 16, Virtqueue.DescFlagWrite, 0);
            rings.Publish(0);
            Wr(R.QueueNotify, 0);
            Assert.Equal(1, rings.UsedIdx);
            Assert.Equal((0u, 2u), rings.UsedElement(0));
            Assert.Equal(Virtio.InterruptUsedBuffer, Rd(R.InterruptStatus));
            Wr(R.InterruptAck, Virtio.InterruptUsedBuffer);
            Assert.Equal(0u, Rd(R.InterruptStatus));
        }

        [Fact]
        public void Needs_reset_sticks_until_reset_and_stops_notifies()
        {
            BringUp();
            _backend.Break();
            Assert.Equal(S.DeviceNeedsReset, Rd(R.Status) & S.DeviceNeedsReset);
            Assert.Equal(Virtio.InterruptConfigChange, Rd(R.InterruptStatus));
            Wr(R.Status, S.Acknowledge | S.Driver | S.FeaturesOk | S.DriverOk);   // the driver cannot clear it
            Assert.Equal(S.DeviceNeedsReset, Rd(R.Status) & S.DeviceNeedsReset);
            Wr(R.QueueNotify, 0);
            Assert.Empty(_backend.Notified);
            Wr(R.Status, 0);
            Assert.Equal(0u, Rd(R.Status));
        }

        [Fact]
        public void Config_change_bumps_the_generation_and_notifies_only_a_live_driver()
        {
            uint before = Rd(R.ConfigGeneration);
            _backend.ChangeConfig();
            Assert.Equal(before + 1, Rd(R.ConfigGeneration));
            Assert.Equal(0u, Rd(R.InterruptStatus));
            BringUp();
            _backend.ChangeConfig();
            Assert.Equal(before + 2, Rd(R.ConfigGeneration));
            Assert.Equal(Virtio.InterruptConfigChange, Rd(R.InterruptStatus));
        }

        [Theory]
        [InlineData(0x100ul, 1, 0x11ul)]
        [InlineData(0x103ul, 1, 0x44ul)]
        [InlineData(0x102ul, 2, 0x4433ul)]
        [InlineData(0x104ul, 4, 0x88776655ul)]
        [InlineData(0x108ul, 4, 0ul)]          // past ConfigSize: reads 0
        [InlineData(0x1fcul, 4, 0ul)]
        public void Config_space_reads(ulong offset, int size, ulong expected)
        {
            Assert.True(_dev.Read(null, offset, size, out ulong v));
            Assert.Equal(expected, v);
        }

        [Theory]
        [InlineData(0x101ul, 2)]   // misaligned halfword
        [InlineData(0x102ul, 4)]   // misaligned word
        [InlineData(0x100ul, 8)]   // 64-bit
        [InlineData(0x100ul, 3)]
        public void Bad_config_accesses_abort(ulong offset, int size)
        {
            Assert.False(_dev.Read(null, offset, size, out _));
            Assert.False(_dev.Write(null, offset, size, 0));
            Assert.Equal(2ul, _dev.Counters.BadAccesses);
        }

        [Fact]
        public void Config_write_reaches_the_backend_truncated_to_its_size()
        {
            Assert.True(_dev.Write(null, 0x106, 2, 0x1_2345));
            Assert.Equal((6u, 2, 0x2345u), (_backend.LastWriteOffset, _backend.LastWriteSize, _backend.LastWriteValue));
            Assert.True(_dev.Write(null, 0x108, 4, 7));                 // past ConfigSize: ignored
            Assert.Equal(1ul, _dev.Counters.ConfigOutOfRange);
        }

        [Theory]
        [InlineData(R.MagicValue, 8)]
        [InlineData(R.Status, 8)]
        [InlineData(R.QueueDescLow, 8)]
        [InlineData(R.Status, 2)]
        [InlineData(R.Status, 1)]
        [InlineData(R.Status + 2, 4)]
        public void Register_accesses_other_than_aligned_32_bit_abort(ulong offset, int size)
        {
            Assert.False(_dev.Read(null, offset, size, out _));
            Assert.False(_dev.Write(null, offset, size, 0));
            Assert.Equal(2ul, _dev.Counters.BadAccesses);
        }

        [Fact]
        public void Unknown_and_read_only_registers_are_ignored()
        {
            Assert.Equal(0u, Rd(0x0c8));
            Wr(0x0c8, 5);
            Wr(R.MagicValue, 0);
            Assert.Equal(0x74726976u, Rd(R.MagicValue));
            Assert.Equal(3ul, _dev.Counters.IgnoredAccesses);
            Assert.Equal(0u, Rd(R.QueueNotify));
        }

        [Fact]
        public void No_shared_memory_regions()
        {
            Wr(R.ShmSel, 0);
            Assert.Equal(0xffff_ffffu, Rd(R.ShmLenLow));
            Assert.Equal(0xffff_ffffu, Rd(R.ShmLenHigh));
        }
    }
}
