namespace Hypervisor.Devices
{
    // One interrupt output of an emulated device, as the device sees it: a wire
    // it drives high or low. What is on the other end (the virtual GIC, a test
    // recorder) is not the device's business. Set may be called with the level
    // the line already has; the receiver must treat that as no change.
    public abstract class InterruptLine
    {
        public abstract void Set(bool high);
    }
}
