namespace Hypervisor.Smp
{
    // What a structure needs of its lock when it is also built where the
    // hypervisor's SpinLock does not exist: the frame allocator, which host
    // tests build too. The hypervisor hands it a SpinLock (kernel/Smp/
    // SpinLock.cs); a host test hands it a lock of its own.
    public abstract class Guard
    {
        public abstract void Enter();
        public abstract void Exit();
    }
}
