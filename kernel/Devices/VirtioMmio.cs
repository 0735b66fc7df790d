using Hypervisor.Vm;

namespace Hypervisor.Devices
{
    // Register offsets of the virtio-mmio "version 2" layout (virtio 1.x,
    // section 4.2.2). The legacy (version 1) registers 0x028, 0x03c and 0x040
    // do not exist here.
    public static class VirtioMmioRegister
    {
        public const ulong MagicValue = 0x000, Version = 0x004, DeviceId = 0x008, VendorId = 0x00c;
        public const ulong DeviceFeatures = 0x010, DeviceFeaturesSel = 0x014;
        public const ulong DriverFeatures = 0x020, DriverFeaturesSel = 0x024;
        public const ulong QueueSel = 0x030, QueueNumMax = 0x034, QueueNum = 0x038, QueueReady = 0x044;
        public const ulong QueueNotify = 0x050, InterruptStatus = 0x060, InterruptAck = 0x064, Status = 0x070;
        public const ulong QueueDescLow = 0x080, QueueDescHigh = 0x084;
        public const ulong QueueDriverLow = 0x090, QueueDriverHigh = 0x094;   // the available ring
        public const ulong QueueDeviceLow = 0x0a0, QueueDeviceHigh = 0x0a4;   // the used ring
        public const ulong ShmSel = 0x0ac, ShmLenLow = 0x0b0, ShmLenHigh = 0x0b4, ShmBaseLow = 0x0b8, ShmBaseHigh = 0x0bc;
        public const ulong ConfigGeneration = 0x0fc, Config = 0x100;
    }

    // Device status bits (section 2.1), written by the driver step by step.
    public static class VirtioStatusBit
    {
        public const uint Acknowledge = 1, Driver = 2, DriverOk = 4, FeaturesOk = 8, DeviceNeedsReset = 64, Failed = 128;
    }

    // Transport-level numbers shared by every virtio device.
    public static class Virtio
    {
        public const uint MagicValue = 0x74726976;      // "virt" in little-endian
        public const uint Version = 2;                  // the modern (1.x) MMIO layout
        // Our own vendor id, "CSHV" in little-endian bytes (QEMU uses 0x554d4551,
        // "QEMU"). Drivers do not interpret it; it only names who emulates.
        public const uint VendorId = 0x56485343;
        public const ulong FeatureVersion1 = 1UL << 32; // VIRTIO_F_VERSION_1: "I speak 1.x"
        // Feature bits 24..49 belong to the transport and ring layout
        // (INDIRECT_DESC 28, EVENT_IDX 29, ACCESS_PLATFORM 33, RING_PACKED 34,
        // ...). This transport implements none of them except VERSION_1, so a
        // backend cannot offer them by mistake: they are masked off.
        public const ulong TransportFeatureMask = ((1UL << 50) - 1) & ~((1UL << 24) - 1);
        public const uint InterruptUsedBuffer = 1, InterruptConfigChange = 2;
    }

    // What a device model plugs into the transport: its identity, features,
    // queues and configuration space. The transport does everything the spec
    // makes common to all devices; a backend only sees notifications for
    // ready queues of a live device.
    public abstract class VirtioBackend
    {
        public abstract uint DeviceId { get; }               // 5 = balloon, 2 = block, ...
        public abstract ulong DeviceFeatures { get; }        // device-specific bits only; VERSION_1 is added
        public abstract int QueueCount { get; }              // at most VirtioMmioDevice.MaxQueues
        public virtual int QueueSizeMax => Virtqueue.MaxQueueSize; // QueueNumMax: a power of two <= 256
        public abstract uint ConfigSize { get; }             // bytes of config space, at most 0x100

        // Config space access at `offset` (already checked: offset + size <=
        // ConfigSize, size 1, 2 or 4, naturally aligned). False refuses the
        // access and the guest gets an abort.
        public abstract bool ReadConfig(uint offset, int size, out uint value);
        public abstract bool WriteConfig(uint offset, int size, uint value);

        // The driver wrote `queueIndex` to QueueNotify; the queue is ready and
        // the device is DRIVER_OK. Runs on the exit path: must not allocate.
        // False: the device stopped at its per-exit budget with chains still
        // available; the transport has the guest repeat the notify
        // (MmioDevice.RepeatAccess) and the device takes the rest then.
        public abstract bool OnQueueNotify(VirtualMachine vm, int queueIndex, Virtqueue queue, GuestMemoryView memory);

        // The driver finished initialisation (features in Transport.NegotiatedFeatures).
        public virtual void OnDriverOk(VirtualMachine vm) { }

        // The driver wrote 0 to Status (or the hypervisor reset the device):
        // forget everything the driver told you.
        public virtual void OnReset(VirtualMachine vm) { }

        // The transport this backend is plugged into (set by its constructor).
        public VirtioMmioDevice Transport { get; private set; }

        internal void Attach(VirtioMmioDevice transport) => Transport = transport;

        // Used buffers were returned: InterruptStatus bit 0.
        protected void SignalUsedBuffers() { if (Transport != null) Transport.RaiseInterrupt(Virtio.InterruptUsedBuffer); }
        // The config space changed: new ConfigGeneration and InterruptStatus bit 1.
        protected void SignalConfigChange() { if (Transport != null) Transport.ConfigChanged(); }
        // The driver broke the rules badly enough (e.g. an avail index jump):
        // Status gets DEVICE_NEEDS_RESET and the device stops serving notifies.
        protected void RequestReset() { if (Transport != null) Transport.SetNeedsReset(); }
    }

    // What the transport refused or ignored, by kind.
    public struct VirtioMmioCounters
    {
        public ulong BadAccesses;              // wrong size or alignment: the guest got an abort
        public ulong IgnoredAccesses;          // unknown offsets, writes to read-only registers
        public ulong ConfigOutOfRange;         // config access past ConfigSize: read 0 / ignored
        public ulong QueueSelectInvalid;       // a queue register used with QueueSel >= QueueCount
        public ulong QueueWriteWhileReady, QueueNumTooLarge;  // set-up written while ready; QueueNum > QueueNumMax
        public ulong QueueConfigureFailed;     // QueueReady = 1 with an invalid set-up (see LastQueueError)
        public ulong LateFeatureWrites;        // DriverFeatures after FEATURES_OK
        public ulong FeaturesRefused, DriverOkRefused;  // FEATURES_OK not kept; DRIVER_OK without FEATURES_OK
        public ulong NotifyBadQueue, NotifyNotReady, NotifyDeviceNotLive, Notifies, NotifyRepeats, Resets, NeedsReset;
    }

    // A virtio device on the virtio-mmio transport: a 0x200-byte register
    // window at Base (control registers, then config space from 0x100) and
    // one interrupt line (Spi). One instance per device per VM.
    //
    // Access rules: control registers are 32-bit, aligned; any other size or
    // alignment returns false (the caller injects an abort). Config space
    // takes 1-, 2- and 4-byte naturally aligned accesses. Unknown offsets
    // read 0 and ignore writes (counted) rather than abort, so a driver that
    // probes a register from a newer spec survives. Write-only registers
    // (selectors, QueueNum, queue addresses, DriverFeatures) read back what
    // was last written: the spec leaves such reads undefined, and an echo
    // helps whoever debugs a driver.
    public sealed class VirtioMmioDevice : MmioDevice
    {
        public const ulong WindowSize = 0x200;
        public const int MaxQueues = 8;
        // Where QEMU virt puts its virtio-mmio transports: slot n at
        // 0x0a000000 + n * 0x200 with SPI 16 + n (INTID 48 + n). A device-tree
        // node is: virtio_mmio@a000000 { compatible = "virtio,mmio";
        // reg = <0x0 0xa000000 0x0 0x200>; interrupts = <0 16 1>; } (GIC_SPI,
        // SPI number, rising edge).
        public const ulong DefaultBase = 0x0a000000;
        public const uint DefaultSpi = 16;
        public static ulong SlotBase(int slot) => DefaultBase + WindowSize * (ulong)slot;
        public static uint SlotSpi(int slot) => DefaultSpi + (uint)slot;

        public readonly uint Spi;                       // SPI number, as the device tree writes it
        public uint IntId => 32 + Spi;                  // GIC interrupt id
        public readonly VirtioBackend Backend;

        private readonly GuestMemoryView _memory;
        private readonly Virtqueue[] _queues;
        private readonly uint[] _queueNum;
        private readonly ulong[] _queueDesc, _queueDriver, _queueDevice;
        private readonly int _queueCount;
        private readonly uint _queueNumMax, _configSize, _deviceId;
        private readonly ulong _offered;

        private uint _status, _interruptStatus, _configGeneration;
        private uint _deviceFeaturesSel, _driverFeaturesSel, _queueSel, _shmSel;
        private ulong _driverFeatures, _negotiated;

        public VirtioMmioCounters Counters;
        public InterruptLine Irq;                       // the SPI; null: the driver polls
        public VirtqStatus LastQueueError;              // why the last QueueReady = 1 was refused

        public VirtioMmioDevice(ulong baseAddress, uint spi, VirtioBackend backend, GuestMemoryView memory)
            : base(baseAddress, WindowSize)
        {
            Spi = spi;
            Backend = backend;
            _memory = memory;
            // The backend's fixed facts are read once: register reads on the
            // exit path then need no virtual calls.
            _deviceId = backend.DeviceId;
            _offered = (backend.DeviceFeatures & ~Virtio.TransportFeatureMask) | Virtio.FeatureVersion1;
            _queueCount = backend.QueueCount < 0 ? 0 : backend.QueueCount > MaxQueues ? MaxQueues : backend.QueueCount;
            int max = backend.QueueSizeMax;
            _queueNumMax = (uint)(max < 1 ? 1 : max > Virtqueue.MaxQueueSize ? Virtqueue.MaxQueueSize : max);
            _configSize = backend.ConfigSize > 0x100 ? 0x100 : backend.ConfigSize;
            _queues = new Virtqueue[_queueCount];
            for (int i = 0; i < _queueCount; i++) _queues[i] = new Virtqueue(memory);
            _queueNum = new uint[_queueCount];
            _queueDesc = new ulong[_queueCount];
            _queueDriver = new ulong[_queueCount];
            _queueDevice = new ulong[_queueCount];
            backend.Attach(this);
            ResetState();
        }

        public int QueueCount => _queueCount;
        public Virtqueue Queue(int index) => (uint)index < (uint)_queueCount ? _queues[index] : null;
        public uint Status => _status;
        public uint InterruptStatus => _interruptStatus;
        public uint ConfigGeneration => _configGeneration;
        public ulong OfferedFeatures => _offered;
        public ulong DriverFeatures => _driverFeatures;
        public ulong NegotiatedFeatures => _negotiated;        // 0 until FEATURES_OK is accepted
        public bool DriverOk => (_status & VirtioStatusBit.DriverOk) != 0;

        public override bool Read(VirtualMachine vm, ulong offset, int size, out ulong value)
        {
            value = 0;
            if (offset >= VirtioMmioRegister.Config) return ReadConfig(offset - VirtioMmioRegister.Config, size, out value);
            if (size != 4 || (offset & 3) != 0) { Counters.BadAccesses++; return false; }
            switch (offset)
            {
                case VirtioMmioRegister.MagicValue: value = Virtio.MagicValue; break;
                case VirtioMmioRegister.Version: value = Virtio.Version; break;
                case VirtioMmioRegister.DeviceId: value = _deviceId; break;
                case VirtioMmioRegister.VendorId: value = Virtio.VendorId; break;
                case VirtioMmioRegister.DeviceFeatures: value = Half(_offered, _deviceFeaturesSel); break;
                case VirtioMmioRegister.DeviceFeaturesSel: value = _deviceFeaturesSel; break;
                case VirtioMmioRegister.DriverFeatures: value = Half(_driverFeatures, _driverFeaturesSel); break;
                case VirtioMmioRegister.DriverFeaturesSel: value = _driverFeaturesSel; break;
                case VirtioMmioRegister.QueueSel: value = _queueSel; break;
                // 0 for a queue that does not exist: that is how a driver
                // learns how many queues there are.
                case VirtioMmioRegister.QueueNumMax: value = _queueSel < (uint)_queueCount ? _queueNumMax : 0; break;
                case VirtioMmioRegister.QueueNum: if (_queueSel < (uint)_queueCount) value = _queueNum[_queueSel]; break;
                case VirtioMmioRegister.QueueReady: if (_queueSel < (uint)_queueCount && _queues[_queueSel].Ready) value = 1; break;
                case VirtioMmioRegister.InterruptStatus: value = _interruptStatus; break;
                case VirtioMmioRegister.Status: value = _status; break;
                case VirtioMmioRegister.QueueDescLow: case VirtioMmioRegister.QueueDescHigh: value = AddressHalf(_queueDesc, offset); break;
                case VirtioMmioRegister.QueueDriverLow: case VirtioMmioRegister.QueueDriverHigh: value = AddressHalf(_queueDriver, offset); break;
                case VirtioMmioRegister.QueueDeviceLow: case VirtioMmioRegister.QueueDeviceHigh: value = AddressHalf(_queueDevice, offset); break;
                case VirtioMmioRegister.ShmSel: value = _shmSel; break;
                // No shared-memory regions: length and base read as -1.
                case VirtioMmioRegister.ShmLenLow: case VirtioMmioRegister.ShmLenHigh:
                case VirtioMmioRegister.ShmBaseLow: case VirtioMmioRegister.ShmBaseHigh: value = 0xffffffff; break;
                case VirtioMmioRegister.ConfigGeneration: value = _configGeneration; break;
                case VirtioMmioRegister.QueueNotify: case VirtioMmioRegister.InterruptAck: break; // write-only
                default: Counters.IgnoredAccesses++; break;
            }
            return true;
        }

        public override bool Write(VirtualMachine vm, ulong offset, int size, ulong value)
        {
            if (offset >= VirtioMmioRegister.Config) return WriteConfig(offset - VirtioMmioRegister.Config, size, (uint)value);
            if (size != 4 || (offset & 3) != 0) { Counters.BadAccesses++; return false; }
            uint v = (uint)value;
            switch (offset)
            {
                case VirtioMmioRegister.DeviceFeaturesSel: _deviceFeaturesSel = v; break;
                case VirtioMmioRegister.DriverFeaturesSel: _driverFeaturesSel = v; break;
                case VirtioMmioRegister.DriverFeatures: WriteDriverFeatures(v); break;
                case VirtioMmioRegister.QueueSel: _queueSel = v; break;
                case VirtioMmioRegister.QueueNum: WriteQueueNum(v); break;
                case VirtioMmioRegister.QueueReady: WriteQueueReady(v); break;
                case VirtioMmioRegister.QueueNotify: Notify(vm, v); break;
                case VirtioMmioRegister.InterruptAck: _interruptStatus &= ~v; DriveLine(); break;
                case VirtioMmioRegister.Status: WriteStatus(vm, v); break;
                case VirtioMmioRegister.QueueDescLow: case VirtioMmioRegister.QueueDescHigh: WriteQueueAddress(_queueDesc, v, offset); break;
                case VirtioMmioRegister.QueueDriverLow: case VirtioMmioRegister.QueueDriverHigh: WriteQueueAddress(_queueDriver, v, offset); break;
                case VirtioMmioRegister.QueueDeviceLow: case VirtioMmioRegister.QueueDeviceHigh: WriteQueueAddress(_queueDevice, v, offset); break;
                case VirtioMmioRegister.ShmSel: _shmSel = v; break;
                default: Counters.IgnoredAccesses++; break;   // read-only or unknown
            }
            return true;
        }

        // Device reset: what writing 0 to Status does, and what the hypervisor
        // calls when it rebuilds a VM.
        public void Reset(VirtualMachine vm)
        {
            ResetState();
            Counters.Resets++;
            Backend.OnReset(vm);
        }

        // InterruptStatus |= bits, and the SPI follows it: asserted while any
        // bit is set, deasserted by the driver's InterruptACK of the last one
        // (the device tree says rising edge: each new assertion is one interrupt).
        public void RaiseInterrupt(uint bits)
        {
            _interruptStatus |= bits & (Virtio.InterruptUsedBuffer | Virtio.InterruptConfigChange);
            DriveLine();
        }

        private void DriveLine()
        {
            if (Irq != null) Irq.Set(_interruptStatus != 0);
        }

        // The config space changed: a driver reading it across the change sees
        // a different ConfigGeneration and retries. The notification itself
        // is only sent to a live driver (2.1.2: not before DRIVER_OK).
        public void ConfigChanged()
        {
            _configGeneration++;
            if (DriverOk) RaiseInterrupt(Virtio.InterruptConfigChange);
        }

        // DEVICE_NEEDS_RESET (2.1.2): the device is unusable until the driver
        // resets it; a live driver is told with a config-change notification.
        public void SetNeedsReset()
        {
            if ((_status & VirtioStatusBit.DeviceNeedsReset) != 0) return;
            _status |= VirtioStatusBit.DeviceNeedsReset;
            Counters.NeedsReset++;
            if (DriverOk) RaiseInterrupt(Virtio.InterruptConfigChange);
        }

        private void ResetState()
        {
            _status = _interruptStatus = 0;
            DriveLine();
            _deviceFeaturesSel = _driverFeaturesSel = _queueSel = _shmSel = 0;
            _driverFeatures = _negotiated = 0;
            for (int i = 0; i < _queueCount; i++)
            {
                _queues[i].Reset();
                _queueNum[i] = _queueNumMax;    // as QEMU: a driver that never writes QueueNum gets the maximum
                _queueDesc[i] = _queueDriver[i] = _queueDevice[i] = 0;
            }
        }

        private static uint Half(ulong features, uint select) =>
            select == 0 ? (uint)features : select == 1 ? (uint)(features >> 32) : 0;

        private void WriteDriverFeatures(uint v)
        {
            // Features are fixed once FEATURES_OK was accepted (3.1.1 step 5).
            if ((_status & VirtioStatusBit.FeaturesOk) != 0) { Counters.LateFeatureWrites++; return; }
            if (_driverFeaturesSel == 0) _driverFeatures = (_driverFeatures & 0xffffffff00000000) | v;
            else if (_driverFeaturesSel == 1) _driverFeatures = (_driverFeatures & 0xffffffff) | ((ulong)v << 32);
            else Counters.IgnoredAccesses++;   // only 64 feature bits exist here
        }

        private void WriteStatus(VirtualMachine vm, uint v)
        {
            v &= 0xff;
            if (v == 0) { Reset(vm); return; }
            // A driver only ever adds bits (2.1.1: it must not clear any);
            // clearing takes a reset. DEVICE_NEEDS_RESET belongs to the device.
            uint old = _status;
            uint next = (old | v) & ~VirtioStatusBit.DeviceNeedsReset;
            next |= old & VirtioStatusBit.DeviceNeedsReset;
            if (IsNew(next, old, VirtioStatusBit.FeaturesOk) && !FeaturesAcceptable())
            {
                // Not kept: the driver reads Status back, sees FEATURES_OK
                // missing, and knows the device rejected its feature set.
                next &= ~VirtioStatusBit.FeaturesOk;
                Counters.FeaturesRefused++;
            }
            if (IsNew(next, old, VirtioStatusBit.DriverOk) && (next & VirtioStatusBit.FeaturesOk) == 0)
            {
                next &= ~VirtioStatusBit.DriverOk;
                Counters.DriverOkRefused++;
            }
            _status = next;
            if (IsNew(next, old, VirtioStatusBit.FeaturesOk)) _negotiated = _driverFeatures;
            if (IsNew(next, old, VirtioStatusBit.DriverOk)) Backend.OnDriverOk(vm);
        }

        private static bool IsNew(uint next, uint old, uint bit) => (next & bit) != 0 && (old & bit) == 0;

        // Only features we offered, and VERSION_1: without it the driver
        // expects the legacy interface, which this transport does not have.
        private bool FeaturesAcceptable() =>
            (_driverFeatures & ~_offered) == 0 && (_driverFeatures & Virtio.FeatureVersion1) != 0;

        // The selected queue if its set-up registers may be written now.
        private bool QueueWritable()
        {
            if (_queueSel >= (uint)_queueCount) { Counters.QueueSelectInvalid++; return false; }
            // The device may be using the rings: moving them under it would
            // let the driver swap memory the device already validated.
            if (_queues[_queueSel].Ready) { Counters.QueueWriteWhileReady++; return false; }
            return true;
        }

        // Each 64-bit queue address is two registers: Low at a multiple of 8, High 4 above.
        private ulong AddressHalf(ulong[] addresses, ulong offset)
        {
            if (_queueSel >= (uint)_queueCount) return 0;
            return (offset & 4) != 0 ? addresses[_queueSel] >> 32 : addresses[_queueSel] & 0xffffffff;
        }

        private void WriteQueueAddress(ulong[] addresses, uint v, ulong offset)
        {
            if (!QueueWritable()) return;
            ulong a = addresses[_queueSel];
            addresses[_queueSel] = (offset & 4) != 0 ? (a & 0xffffffff) | ((ulong)v << 32) : (a & 0xffffffff00000000) | v;
        }

        private void WriteQueueNum(uint v)
        {
            if (!QueueWritable()) return;
            if (v > _queueNumMax) { Counters.QueueNumTooLarge++; return; }
            _queueNum[_queueSel] = v;
        }

        private void WriteQueueReady(uint v)
        {
            if (_queueSel >= (uint)_queueCount) { Counters.QueueSelectInvalid++; return; }
            int q = (int)_queueSel;
            if ((v & 1) == 0) { _queues[q].Reset(); return; }   // the driver stops using the queue
            if (_queues[q].Ready) return;                       // already set up: nothing changes
            VirtqStatus s = _queues[q].Configure(_queueNum[q], _queueDesc[q], _queueDriver[q], _queueDevice[q]);
            if (s != VirtqStatus.Ok)
            {
                // QueueReady stays 0; a driver that reads it back sees the refusal.
                LastQueueError = s;
                Counters.QueueConfigureFailed++;
            }
        }

        private void Notify(VirtualMachine vm, uint index)
        {
            // Without VIRTIO_F_NOTIFICATION_DATA the value is just the queue index.
            if (index >= (uint)_queueCount) { Counters.NotifyBadQueue++; return; }
            // 2.1: no buffers are used before DRIVER_OK or after the device
            // failed; a broken device serves nothing until reset.
            if (!DriverOk || (_status & (VirtioStatusBit.DeviceNeedsReset | VirtioStatusBit.Failed)) != 0)
            {
                Counters.NotifyDeviceNotLive++;
                return;
            }
            Virtqueue queue = _queues[index];
            if (!queue.Ready) { Counters.NotifyNotReady++; return; }
            Counters.Notifies++;
            if (!Backend.OnQueueNotify(vm, (int)index, queue, _memory))
            {
                Counters.NotifyRepeats++;
                RepeatAccess = true;
            }
        }

        private bool ReadConfig(ulong offset, int size, out ulong value)
        {
            value = 0;
            if (!ConfigAccessValid(offset, size)) return false;
            if (offset + (ulong)size > _configSize) { Counters.ConfigOutOfRange++; return true; }
            if (!Backend.ReadConfig((uint)offset, size, out uint v)) { Counters.BadAccesses++; return false; }
            value = size == 4 ? v : v & ((1u << (size * 8)) - 1);
            return true;
        }

        private bool WriteConfig(ulong offset, int size, uint value)
        {
            if (!ConfigAccessValid(offset, size)) return false;
            if (offset + (ulong)size > _configSize) { Counters.ConfigOutOfRange++; return true; }
            if (size != 4) value &= (1u << (size * 8)) - 1;
            if (!Backend.WriteConfig((uint)offset, size, value)) { Counters.BadAccesses++; return false; }
            return true;
        }

        // 4.2.2.2: 8-, 16- and 32-bit fields are accessed with their own width,
        // naturally aligned (a 64-bit field as two 32-bit accesses).
        private bool ConfigAccessValid(ulong offset, int size)
        {
            if ((size == 1 || size == 2 || size == 4) && (offset & (ulong)(size - 1)) == 0) return true;
            Counters.BadAccesses++;
            return false;
        }
    }
}
