using System;
using System.Collections.Generic;
using Hypervisor.Vm;
using Xunit;

namespace Hypervisor.Tests.Unit
{
    // VMIDs with several CPUs (kernel/Vm/VmidAllocator.cs): a VM that is
    // running on one CPU while another CPU rolls the generation over keeps its
    // VMID, and no other VM is ever handed that VMID meanwhile.
    public class VmidSmpTests
    {
        // A model of the scheduler's use: `cpus` CPUs, each loading VMs in
        // turn from a pool, with a random order. Checked after every load: no
        // two CPUs run with the same VMID (a stale translation of one VM would
        // then be found by the other).
        [Theory]
        [InlineData(2, 4, 16, 1)]
        [InlineData(2, 4, 16, 2)]
        [InlineData(2, 4, 8, 3)]
        [InlineData(3, 8, 8, 4)]
        [InlineData(4, 8, 40, 5)]
        public void NoTwoCpusEverRunWithTheSameVmid(int bits, int cpus, int vms, int seed)
        {
            var a = new VmidAllocator(bits);
            var tags = new ulong[vms];
            var running = new int[cpus];          // VM index per CPU, -1 none
            var vmidOn = new ushort[cpus];
            for (int c = 0; c < cpus; c++) running[c] = -1;
            var rng = new Random(seed);
            ulong rolloversSeen = 0;
            for (int step = 0; step < 20000; step++)
            {
                int cpu = rng.Next(cpus);
                // Put down what it runs (its registers saved).
                if (running[cpu] >= 0) { running[cpu] = -1; a.SetActive(cpu, 0); }
                // Pick a VM that is not running elsewhere and may get a VMID.
                int vm = rng.Next(vms);
                if (Array.IndexOf(running, vm) >= 0 || !a.CanRun(tags[vm], cpu)) continue;
                ushort vmid = a.Assign(ref tags[vm], out bool flush);
                Assert.NotEqual(VmidAllocator.NoVmid, vmid);
                if (flush) rolloversSeen++;
                running[cpu] = vm;
                vmidOn[cpu] = vmid;
                a.SetActive(cpu, tags[vm]);
                for (int c = 0; c < cpus; c++)
                    if (c != cpu && running[c] >= 0) Assert.NotEqual(vmidOn[c], vmid);
            }
            Assert.True(rolloversSeen > 10, $"only {rolloversSeen} rollovers: the test did not test them");
            Assert.Equal(rolloversSeen, a.Rollovers);
        }

        [Fact]
        public void ARunningVmKeepsItsVmidAcrossARolloverAndTheNextLoad()
        {
            var a = new VmidAllocator(2);             // VMIDs 1..3
            ulong running = 0, x = 0, y = 0, z = 0;
            ushort kept = a.Assign(ref running, out _);
            a.SetActive(1, running);                  // CPU 1 runs it
            a.Assign(ref x, out _);
            a.Assign(ref y, out _);
            a.Assign(ref z, out bool flush);          // CPU 0: no VMID left, a new generation
            Assert.True(flush);
            Assert.NotEqual(kept, VmidAllocator.VmidOf(z));
            Assert.False(a.IsCurrent(running));       // its tag is old, but its number is reserved
            a.SetActive(1, 0);                        // CPU 1 puts it down; later it is loaded again
            Assert.Equal(kept, a.Assign(ref running, out flush));
            Assert.False(flush);
            Assert.True(a.IsCurrent(running));
        }

        [Fact]
        public void WithMoreCpusThanVmidsTheLastCpuMustWait()
        {
            var a = new VmidAllocator(1);             // one VMID
            ulong p = 0, q = 0;
            a.Assign(ref p, out _);
            a.SetActive(0, p);
            Assert.False(a.CanRun(q, 1));             // CPU 1 cannot run a second VM now
            Assert.True(a.CanRun(p, 1));
            a.SetActive(0, 0);
            Assert.True(a.CanRun(q, 1));              // a rollover would free it
            Assert.Equal(1, a.Assign(ref q, out bool flush));
            Assert.True(flush);
        }

        // Two vCPUs of one VM on two CPUs hold one VMID, not two: with three
        // VMIDs, CPUs 1-3 running VMs p, p and r leave room for a third VM
        // on CPU 0 after a rollover. (Counting CPUs instead of VMIDs held
        // every other VM back while two 2-vCPU VMs ran.)
        [Fact]
        public void AVmOnSeveralCpusHoldsOneVmid()
        {
            var a = new VmidAllocator(2);             // VMIDs 1..3
            ulong p = 0, q = 0, r = 0, s = 0;
            a.Assign(ref p, out _);
            a.Assign(ref q, out _);
            a.Assign(ref r, out _);
            a.SetActive(1, p);
            a.SetActive(2, p);
            a.SetActive(3, r);
            Assert.True(a.CanRun(s, 0));
            a.Assign(ref s, out bool flush);
            Assert.True(flush);
            Assert.NotEqual(VmidAllocator.VmidOf(p), VmidAllocator.VmidOf(s));
            Assert.NotEqual(VmidAllocator.VmidOf(r), VmidAllocator.VmidOf(s));
            a.SetActive(2, q);                        // three distinct VMs elsewhere: no room
            Assert.False(a.CanRun(0x7777_0001, 0));
        }

        [Fact]
        public void ReleasingAReservedVmidFreesIt()
        {
            var a = new VmidAllocator(1);
            ulong p = 0, q = 0;
            a.Assign(ref p, out _);
            a.SetActive(1, p);
            a.SetActive(1, 0);
            a.SetActive(1, p);
            Assert.False(a.CanRun(q, 0));
            a.SetActive(1, 0);
            a.Release(ref p);
            Assert.Equal(0, a.VmidsInUse);
            Assert.True(a.CanRun(q, 0));
        }
    }
}
