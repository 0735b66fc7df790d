using System;
using Hypervisor.Devices;
using Hypervisor.Mm;
using Hypervisor.Paging;
using Hypervisor.Trap;

namespace Hypervisor.Vm
{
    // One guest: its memory (a stage-2 address space with its own VMID), its
    // vCPUs (kernel/Vm/Vcpu.cs), its devices, its virtual GIC's distributor
    // and its counters.
    public sealed class VirtualMachine
    {
        public const ulong GuestRamBase = 0x40000000;   // as on QEMU virt, so standard guests run unmodified
        public const int MaxDevices = 8;

        public readonly int Index;
        public readonly ushort Owner;                   // frame-owner tag of its RAM frames
        public readonly byte[] NameBytes;
        public readonly ulong RamBase = GuestRamBase;
        public readonly ulong RamSize;

        public VmState State;
        public Vcpu[] Vcpus;                            // 1..VmConfig.MaxCpus; Vcpus[0] boots
        public ulong VmidTag;                           // generation << 16 | VMID (VmidAllocator)
        public ulong CntvOffset;                        // CNTVOFF_EL2: the guest's virtual time starts at 0
        public Stage2Table Stage2;
        public VmTlb Tlb;
        public ulong Stage2Root;                        // PA of the 8 KiB concatenated level-1 root
        public ulong ActiveStage2Root;                  // what VTTBR_EL2 names: Stage2Root, or the identity map
                                                        // while shadow or direct paging runs the guest's MMU
        public uint Stage2RootFrames;
        public ushort Vmid;
        public ulong Vttbr;
        public ulong Vtcr;
        public ulong Hcr;

        // Everything of this VM an exit handler touches (kernel/Smp/LockOrder.cs, rank Vm).
        public readonly Hypervisor.Smp.SpinLock Lock = new Hypervisor.Smp.SpinLock(Hypervisor.Smp.LockRank.Vm);

        public readonly VmCounters Counters = new VmCounters();
        public readonly MmioDevice[] Devices = new MmioDevice[MaxDevices];
        public int DeviceCount;
        public VirtualPl011 Uart;
        public VgicState Vgic;                          // the virtual GIC's SPIs (vCPU 0's state holds them)
        public VirtioBalloon Balloon;                   // null unless balloon=on (or boot_balloon) in vms.conf
        public HostPageTableMemory TableMemory;

        // How the guest's own translation is virtualized (vms.conf paging=).
        public Hypervisor.Boot.PagingMode Paging;
        public bool MayReadCycles;                      // vms.conf hv_counter=on (the ReadCycles hypercall)
        public Hypervisor.Boot.RamBacking Backing;      // vms.conf backing= (kernel/Vm/VmBuilder.cs BackRam)
        public int FaultAround = 1;                     // pages one demand fault maps (vms.conf fault_around)
        public ShadowPaging Shadow;                     // paging=shadow
        public DirectPaging Direct;                     // paging=direct

        public ulong EntryPoint;
        public ulong DtbIpa;                            // where the device tree is (x0 at entry)
        public ulong DtbSize;                           // its bytes (the room kept is Layout's)
        public Hypervisor.Boot.BootLayoutInfo Layout;   // image, initrd and tree: the same after every reset

        // What it was built from, to build it again on SYSTEM_RESET: the image
        // stays in the guest bundle, which the hypervisor keeps.
        public ulong ImageAddress;
        public int ImageLength;
        public ulong InitrdAddress;                     // initrd= in the bundle (0: none)
        public int InitrdLength;
        public Hypervisor.Boot.GuestKind Kind;
        public byte[] BootArgs;
        public int MaxResets;                           // -1: no limit
        public ulong Resets;
        public ulong FramesOwned;
        public ulong PeakFrames;

        // Set when something found that this VM must stop, or asked for a
        // reset; the run loop acts on it once the exit's handler has returned
        // (kernel/Vm/ExitAction.cs), on every vCPU of the VM: each leaves its
        // physical CPU, and the last one out tears the VM down or rebuilds it.
        public string StopReason;
        public bool ResetPending;
        public bool HasRequest;                         // either of the two: one test on every exit

        public ExitAction RequestStop(string reason)
        {
            if (StopReason == null) StopReason = reason;   // the first reason is the one logged
            HasRequest = true;
            return ExitAction.Stop;
        }

        // PSCI SYSTEM_RESET: a reset, unless the vms.conf `resets=` allowance is used up.
        public ExitAction RequestReset()
        {
            if (MaxResets >= 0 && Resets >= (ulong)MaxResets) return RequestStop("SYSTEM_RESET (resets= allowance used up)");
            ResetPending = true;
            HasRequest = true;
            return ExitAction.Reset;
        }

        public Vcpu VcpuByMpidr(ulong mpidr)
        {
            for (int i = 0; i < Vcpus.Length; i++)
                if (Vcpus[i].Mpidr == (mpidr & Hypervisor.Smp.Cpus.AffinityMask)) return Vcpus[i];
            return null;
        }

        public VirtualMachine(int index, ReadOnlySpan<byte> name, ulong ramSize)
        {
            Index = index;
            Owner = (ushort)(FrameOwner.FirstVm + index);
            NameBytes = new byte[name.Length];
            for (int i = 0; i < name.Length; i++) NameBytes[i] = name[i];
            RamSize = ramSize;
        }

        public ReadOnlySpan<byte> Name => NameBytes;

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        public bool IsRam(ulong ipa) => ipa >= RamBase && ipa - RamBase < RamSize;

        // Switches the stage-2 table this VM runs on. Both tables carry the same
        // VMID and map some IPAs differently, so nothing cached for the VMID
        // may survive: TLBI VMALLS12E1IS.
        public void UseStage2Root(ulong root)
        {
            if (root == ActiveStage2Root) return;
            ActiveStage2Root = root;
            Vttbr = Stage2Layout.Vttbr(root, Vmid);
            // (Shadow and direct paging VMs have one vCPU: vms.conf refuses more.)
            if (Hypervisor.Vm.Scheduler.Current != null && Hypervisor.Vm.Scheduler.Current.Vm == this)
            {
                Hypervisor.Arch.SysReg.WriteVttbrEl2(Vttbr);
                Hypervisor.Mm.Tlb.FlushVm(this);
            }
        }

        // A counter by HypercallAbi.Counter id: the exit counts, or the shadow
        // tables' own (0 without shadow paging). False for an unknown id.
        public bool TryGetCounter(ulong id, out ulong value)
        {
            if (id == HypercallAbi.Counter.ShadowPages || id == HypercallAbi.Counter.ShadowRootHits)
            {
                value = Shadow == null ? 0 : id == HypercallAbi.Counter.ShadowPages ? Shadow.Tables.PagesBuilt : Shadow.Tables.RootHits;
                return true;
            }
            if (id == HypercallAbi.Counter.Stage2Blocks || id == HypercallAbi.Counter.RamBacking)
            {
                value = id == HypercallAbi.Counter.Stage2Blocks ? Stage2.LiveBlocks : (ulong)Backing;
                return true;
            }
            return Counters.TryGet(id, out value);
        }

        public void AddDevice(MmioDevice device)
        {
            if (DeviceCount < MaxDevices) Devices[DeviceCount++] = device;
        }

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        public MmioDevice FindDevice(ulong ipa)
        {
            for (int i = 0; i < DeviceCount; i++)
                if (Devices[i].Contains(ipa)) return Devices[i];
            return null;
        }
    }
}
