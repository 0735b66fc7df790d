namespace Hypervisor.Devices
{
    // An emulated device's interrupt output wired to one input of its VM's
    // virtual GIC (the PL011 to SPI 1 = INTID 33, a virtio-mmio slot to SPI
    // 16 + n = INTID 48 + n).
    public sealed class VgicLine : InterruptLine
    {
        private readonly VgicState _gic;
        private readonly int _intid;

        public VgicLine(VgicState gic, int intid)
        {
            _gic = gic;
            _intid = intid;
        }

        public override void Set(bool high) => _gic.SetLevel(_intid, high);
    }
}
