using System;
using Hypervisor.Arch;
using Hypervisor.Boot;
using Hypervisor.Console;
using Hypervisor.Devices;
using Hypervisor.Mm;
using Hypervisor.Paging;

namespace Hypervisor.Vm
{
    // Creates the VMs the guest bundle describes: the bundle is the initrd QEMU
    // (or a boot loader) hands the hypervisor, a newc cpio with vms.conf and
    // the guest images. A bad line or a missing image costs that VM only.
    public static unsafe class VmBuilder
    {
        private const int MaxSegments = 8;
        // The device tree is written into this buffer; its size is also the
        // room BootLayout keeps for it in each VM, so the tree's actual size
        // (which only GuestDtb.Build knows) never decides where things go.
        private const int DtbBufferSize = 64 * 1024;
        public static GuestSeeds Seeds;   // set at boot (Kernel.TakeSeeds)

        private static Stage2Layout s_layout;
        public static ulong RootTableBytes => s_layout.RootTableBytes;
        private static byte[] s_dtb;

        public static void CreateFromBundle(in FdtInfo host)
        {
            if (!host.HasInitrd)
            {
                Scheduler.Init(VmidBits(0), VmConfig.DefaultSliceMs);
                return;
            }
            var bundle = new ReadOnlySpan<byte>((void*)host.InitrdStart, (int)(host.InitrdEnd - host.InitrdStart));
            CpioStatus found = Cpio.Find(bundle, "vms.conf", out CpioEntry confEntry);
            if (found != CpioStatus.Ok)
            {
                Log.Write("[hv] guest bundle: no vms.conf (");
                Log.Write(Cpio.Message(found));
                Log.Line(")");
                Scheduler.Init(VmidBits(0), VmConfig.DefaultSliceMs);
                return;
            }
            ReadOnlySpan<byte> conf = Cpio.EntryData(bundle, confEntry);

            var specs = new VmSpec[VmConfig.MaxVms];
            var errors = new VmConfigError[32];
            VmConfigResult parsed = VmConfig.Parse(conf, specs, errors, out HvSettings settings);
            int vmidBits = VmidBits(settings.VmidBits);
            Scheduler.Init(vmidBits, settings.SliceMs > 0 ? settings.SliceMs : VmConfig.DefaultSliceMs);

            Stage2LayoutStatus layoutStatus = Stage2Layout.Compute(Stage2Layout.GuestIpaBits, (uint)(SysReg.ReadIdAa64Mmfr0El1() & 0xf), vmidBits > 8, out s_layout);
            if (layoutStatus != Stage2LayoutStatus.Ok)
            {
                Log.Line("[hv] this CPU cannot give guests a 40-bit IPA space; no VMs");
                return;
            }
            s_dtb = new byte[DtbBufferSize];
            Log.Write("[hv] vmid=");
            Log.Dec((ulong)vmidBits);
            Log.Write("-bit");
            Log.Write(vmidBits > 8 ? " (VTCR_EL2.VS=1)" : " (VTCR_EL2.VS=0)");
            Log.Write(" slice_ms=");
            Log.Dec((ulong)(settings.SliceMs > 0 ? settings.SliceMs : VmConfig.DefaultSliceMs));
            Log.NewLine();
            for (int i = 0; i < parsed.ErrorCount && i < errors.Length; i++)
            {
                Log.Write("[hv] vms.conf:");
                Log.Dec((ulong)errors[i].Line);
                Log.Write(": ");
                Log.Write(VmConfig.Message(errors[i].Kind));
                if (!errors[i].Token.IsEmpty)
                {
                    Log.Write(" '");
                    Log.Write(errors[i].Token.Of(conf));
                    Log.Write("'");
                }
                Log.Line("; line ignored");
            }
            for (int i = 0; i < parsed.VmCount; i++) Create(specs[i], conf, bundle);
            BalloonPolicy.Configure(settings.BalloonMove.Of(conf));
        }

        private static void Create(in VmSpec spec, ReadOnlySpan<byte> conf, ReadOnlySpan<byte> bundle)
        {
            ReadOnlySpan<byte> name = spec.Name.Of(conf);
            ReadOnlySpan<byte> imageName = BaseName(spec.Image.Of(conf));
            if (Cpio.Find(bundle, imageName, out CpioEntry imageEntry) != CpioStatus.Ok)
            {
                Refuse(spec, name, "image not in the bundle: ", imageName);
                return;
            }
            // Admission: what the VM may use at boot (its memory minus what starts
            // in the balloon) must be free now. With a balloon, the configured
            // memory can exceed that: the overcommit the balloon makes safe.
            // Keys that are parsed but whose machinery does not exist yet: say
            // so instead of silently running something else.
            if (spec.Paging != PagingMode.Stage2 && (spec.Balloon || spec.BootBalloonBytes != 0))
            {
                // The balloon takes frames away behind the guest's back; the
                // shadow and direct tables would have to follow. Not done.
                Refuse(spec, name, "balloon=on needs paging=stage2", default);
                return;
            }
            if (spec.Paging != PagingMode.Stage2 && spec.FaultAround > 1)
            {
                // Shadow and direct paging learn about frames one fault at a time.
                Refuse(spec, name, "fault_around needs paging=stage2", default);
                return;
            }
            if (spec.Backing == RamBacking.Blocks && (spec.Paging != PagingMode.Stage2 || spec.BootBalloonBytes != 0))
            {
                // Shadow and direct paging run the guest on the identity map,
                // and a boot balloon is memory the VM must not have up front.
                Refuse(spec, name, "backing=blocks needs paging=stage2 and no boot_balloon", default);
                return;
            }
            if (spec.Paging != PagingMode.Stage2 && spec.Cpus > 1)
            {
                // Shadow paging keeps one set of shadow roots for the guest's
                // TTBRs and direct paging validates against one vCPU's tables:
                // several vCPUs would each need their own. Not done.
                Refuse(spec, name, "cpus= above 1 needs paging=stage2", default);
                return;
            }
            ReadOnlySpan<byte> initrdName = BaseName(spec.Initrd.Of(conf));
            scoped ReadOnlySpan<byte> initrd = default;
            CpioEntry initrdEntry = default;
            if (spec.HasInitrd)
            {
                if (Cpio.Find(bundle, initrdName, out initrdEntry) != CpioStatus.Ok)
                {
                    Refuse(spec, name, "initrd not in the bundle: ", initrdName);
                    return;
                }
                initrd = Cpio.EntryData(bundle, initrdEntry);
                if (initrd.IsEmpty)
                {
                    Refuse(spec, name, "initrd file is empty: ", initrdName);
                    return;
                }
            }

            ulong available = (ulong)Kernel.Frames.FreeFrames * FrameAllocator.FrameSize;
            if (spec.MemoryBytes - spec.BootBalloonBytes > available)
            {
                Refuse(spec, name, "more memory than the host has free", default);
                return;
            }
            ReadOnlySpan<byte> image = Cpio.EntryData(bundle, imageEntry);
            Span<GuestSegment> segments = stackalloc GuestSegment[MaxSegments];
            GuestImageStatus imageStatus = GuestImage.Describe(image, spec.Kind, VirtualMachine.GuestRamBase, spec.MemoryBytes, segments, out GuestImageInfo info);
            if (imageStatus != GuestImageStatus.Ok)
            {
                Refuse(spec, name, GuestImage.Message(imageStatus), default);
                return;
            }
            BootLayoutStatus placed = Layout(VirtualMachine.GuestRamBase, spec.MemoryBytes, info, initrd.Length, out BootLayoutInfo layout);
            if (placed != BootLayoutStatus.Ok)
            {
                bool namesInitrd = placed == BootLayoutStatus.InitrdDoesNotFit || placed == BootLayoutStatus.InitrdLargerThanRam;
                Refuse(spec, name, BootLayout.Message(placed), namesInitrd ? initrdName : default);
                return;
            }

            var vm = new VirtualMachine(Scheduler.Count, name, spec.MemoryBytes);
            fixed (byte* p = image) vm.ImageAddress = (ulong)p;
            vm.ImageLength = image.Length;
            if (spec.HasInitrd)
            {
                fixed (byte* p = initrd) vm.InitrdAddress = (ulong)p;
                vm.InitrdLength = initrd.Length;
            }
            vm.Kind = spec.Kind;
            ReadOnlySpan<byte> args = spec.Args.Of(conf);
            vm.BootArgs = new byte[args.Length];
            for (int i = 0; i < args.Length; i++) vm.BootArgs[i] = args[i];
            vm.MaxResets = spec.MaxResets;
            vm.Paging = spec.Paging;
            vm.FaultAround = spec.FaultAround;
            vm.Backing = spec.Backing;
            vm.MayReadCycles = spec.HvCounter;
            // The vCPUs and the virtual GIC's model first: the devices'
            // interrupt lines go to its SPIs, which vCPU 0's state holds.
            CreateVcpus(vm, spec.Cpus);
            if (spec.Balloon || spec.BootBalloonBytes != 0)
            {
                // The balloon exists before the first build: the device tree
                // describes it, and its boot target is there from the start.
                vm.Balloon = new VirtioBalloon(vm, spec.BootBalloonBytes, spec.BalloonDeflateOnOom);
                var transport = new VirtioMmioDevice(VirtioMmioDevice.SlotBase(0), VirtioMmioDevice.SlotSpi(0), vm.Balloon, new VmMemoryView(vm));
                transport.Irq = new VgicLine(vm.Vgic, (int)transport.IntId);
                vm.AddDevice(transport);
            }
            if (!CreateRootTable(vm) || !CreatePaging(vm) || !Build(vm))
            {
                Refuse(spec, name, "not enough host memory to build it", default);
                VmTeardown.Destroy(vm);
                return;
            }
            vm.Uart = new VirtualPl011(VirtualPl011.DefaultBase);
            vm.Uart.Irq = new VgicLine(vm.Vgic, VirtualPl011.IntId);
            vm.AddDevice(vm.Uart);
            // The virtual GIC: distributor and one redistributor per vCPU
            // emulated at the addresses the guest's device tree gives, list
            // registers for the CPU side.
            vm.AddDevice(new VgicDistributor(vm.Vgic));
            for (int i = 0; i < vm.Vcpus.Length; i++)
                vm.AddDevice(new VgicRedistributor(vm.Vcpus[i].Gic, i, vm.Vcpus.Length, vm.Vcpus[i].Mpidr));
            if (!Scheduler.Add(vm))
            {
                Refuse(spec, name, "too many VMs or vCPUs", default);
                VmTeardown.Destroy(vm);
                return;
            }

            Log.Write("[hv] vm ");
            Log.Write(name);
            Log.Write(": mem=");
            Log.Size(spec.MemoryBytes);
            Log.Write(" image=");
            Log.Write(imageName);
            Log.Write(" (");
            Log.Write(KindName(info.Kind));
            Log.Write(", entry ");
            Log.Hex(info.Entry);
            Log.Write(") args=\"");
            Log.Write(spec.Args.Of(conf));
            Log.Write("\"");
            if (vm.Balloon != null)
            {
                Log.Write(spec.BalloonDeflateOnOom ? " balloon=oom boot_balloon=" : " balloon=on boot_balloon=");
                Log.Size(spec.BootBalloonBytes);
            }
            if (vm.FaultAround > 1)
            {
                Log.Write(" fault_around=");
                Log.Dec((ulong)vm.FaultAround);
            }
            if (vm.Backing == RamBacking.Blocks)
            {
                Log.Write(" backing=blocks (");
                Log.Dec(vm.Stage2.LiveHugeBlocks);
                Log.Write(" x 1G, ");
                Log.Dec(vm.Stage2.LiveBlocks - vm.Stage2.LiveHugeBlocks);
                Log.Write(" x 2M, ");
                Log.Dec(vm.Stage2.LivePages);
                Log.Write(" x 4K)");
            }
            Log.NewLine();
            if (spec.HasInitrd)
            {
                Log.Write("[hv] vm ");
                Log.Write(name);
                Log.Write(": initrd ");
                Log.Write(initrdName);
                Log.Write(" at ");
                Log.Hex(layout.InitrdStart);
                Log.Write(" (");
                Log.Dec((ulong)initrd.Length);
                Log.Line(" bytes)");
            }
            WriteLayout(vm);
        }

        // One line per VM, at creation and in the monitor's `vms`: where its
        // image, initrd and device tree are (guest-physical, [start, end)).
        public static void WriteLayout(VirtualMachine vm)
        {
            Log.Write("[hv] vm ");
            Log.Write(vm.Name);
            Log.Write(": image ");
            Range(vm.Layout.ImageStart, vm.Layout.ImageEnd);
            Log.Write(" initrd ");
            if (vm.InitrdAddress == 0) Log.Write("none");
            else Range(vm.Layout.InitrdStart, vm.Layout.InitrdEnd);
            Log.Write(" dtb ");
            Range(vm.DtbIpa, vm.DtbIpa + vm.DtbSize);
            Log.NewLine();
        }

        private static void Range(ulong start, ulong end)
        {
            Log.Hex(start);
            Log.Write("-");
            Log.Hex(end);
        }

        // vCPU 0 holds the SPIs (VgicState.cs); with several vCPUs a change
        // to them is announced to all (SpiFanOut).
        private static void CreateVcpus(VirtualMachine vm, int count)
        {
            if (count < 1) count = 1;
            vm.Vcpus = new Vcpu[count];
            vm.Vcpus[0] = new Vcpu(vm, 0, null);
            vm.Vgic = vm.Vcpus[0].Gic;
            vm.Vgic.VcpuCount = count;
            for (int i = 1; i < count; i++) vm.Vcpus[i] = new Vcpu(vm, i, vm.Vgic);
            if (count > 1) vm.Vgic.SpiListener = new SpiFanOut(vm);
        }

        // Memory, image, device tree and a reset vCPU: at creation and again on
        // every SYSTEM_RESET (after VmTeardown.ReleaseMemory). Allocates no
        // heap memory, so resetting a VM forever does not grow the heap.
        public static bool Rebuild(VirtualMachine vm)
        {
            VmTeardown.ReleaseMemory(vm);
            return Build(vm);
        }

        private static bool Build(VirtualMachine vm)
        {
            var image = new ReadOnlySpan<byte>((void*)vm.ImageAddress, vm.ImageLength);
            Span<GuestSegment> segments = stackalloc GuestSegment[MaxSegments];
            if (GuestImage.Describe(image, vm.Kind, vm.RamBase, vm.RamSize, segments, out GuestImageInfo info) != GuestImageStatus.Ok)
                return false;
            if (vm.Balloon != null) vm.Balloon.ResetForReboot();
            if (vm.Uart != null) vm.Uart.Reset();
            // Creation checked the layout; the same inputs give the same answer.
            if (Layout(vm.RamBase, vm.RamSize, info, vm.InitrdLength, out vm.Layout) != BootLayoutStatus.Ok) return false;
            if (!BackRam(vm) || !Load(vm, image, segments, info) || !LoadInitrd(vm) || !WriteDeviceTree(vm, vm.BootArgs))
                return false;
            // What was copied in has been cleaned to PoC line by line: complete
            // that, then drop stale instructions, since the guest will fetch
            // the image (possibly non-cacheably, with its MMU off).
            Kernel.Cache.Barrier();
            Kernel.Cache.InvalidateInstructions();
            vm.EntryPoint = info.Entry;
            // The guest starts with its MMU off, on its GPA -> HPA stage 2.
            vm.ActiveStage2Root = vm.Stage2Root;
            vm.Vttbr = Stage2Layout.Vttbr(vm.Stage2Root, vm.Vmid);
            // vCPU 0 at the entry point with x0 = the device tree (arm64
            // Linux boot protocol); the others off until PSCI CPU_ON. Each
            // vCPU's GIC state, timers and debug registers as after reset
            // (vCPU 0's GIC reset first: it holds the SPIs).
            for (int i = 0; i < vm.Vcpus.Length; i++)
            {
                Vcpu vcpu = vm.Vcpus[i];
                vcpu.Context.Reset(i == 0 ? vm.EntryPoint : 0, i == 0 ? vm.DtbIpa : 0);
                vcpu.VgicCpu.Reset();
                vcpu.Timers.Reset();
                vcpu.Debug.Reset();
                vcpu.State = i == 0 ? VmState.Runnable : VmState.Off;
                vcpu.PoweredOn = i == 0;
            }
            if (vm.Shadow != null && !vm.Shadow.Start()) return false;
            if (vm.Direct != null && !vm.Direct.Start()) return false;
            vm.CntvOffset = SysReg.ReadCntpctEl0();
            vm.State = VmState.Runnable;
            return true;
        }

        // Stage-2 root: two concatenated level-1 tables, 8 KiB, 8 KiB aligned.
        // The VMID comes later, lazily, when the VM first runs.
        private static bool CreateRootTable(VirtualMachine vm)
        {
            uint rootFrames = (uint)(s_layout.RootTableBytes / FrameAllocator.FrameSize);
            ulong root = Kernel.Frames.AllocateContiguous(rootFrames, rootFrames, FrameOwner.Hypervisor);
            if (root == 0) return false;
            vm.Stage2RootFrames = rootFrames;   // zeroed, as every free frame: an empty table
            vm.Stage2Root = root;
            vm.Vtcr = s_layout.Vtcr;
            vm.Vttbr = Stage2Layout.Vttbr(root, 0);
            vm.ActiveStage2Root = root;
            vm.Hcr = Hcr.GuestDefault | El2Setup.FeatureTraps;
            vm.TableMemory = new HostPageTableMemory(Kernel.Frames);
            vm.Tlb = new VmTlb(vm);
            vm.Stage2 = new Stage2Table(vm.TableMemory, vm.Tlb, root);
            return true;
        }

        // Shadow and direct paging: their state lives as long as the VM object
        // (a reset reuses it), and the guest's translation registers trap.
        private static bool CreatePaging(VirtualMachine vm)
        {
            if (vm.Paging == PagingMode.Shadow)
            {
                vm.Shadow = new ShadowPaging(vm);
                vm.Hcr |= Hcr.TVM | Hcr.TRVM | Hcr.TTLB;
            }
            else if (vm.Paging == PagingMode.Direct)
            {
                vm.Direct = new DirectPaging(vm);
                vm.Hcr |= Hcr.TVM;
            }
            return true;
        }

        // backing=blocks: all of RAM now, in the largest blocks the host's
        // free memory allows (GuestMemory.BackWithBlocks). backing=pages, the
        // default: only the first 2 MiB, where the image goes; the rest
        // comes page by page as the guest touches it. Pages are the default
        // because they are what the lecture's demand paging and balloon are
        // about, and because a VM then costs the host only what it touches;
        // blocks are for a VM that wants every TLB entry to cover 2 MiB or
        // 1 GiB and its memory reserved from the start.
        private static bool BackRam(VirtualMachine vm) =>
            vm.Backing == RamBacking.Blocks ? GuestMemory.BackWithBlocks(vm) : MapFirstBlock(vm);

        // The first 2 MiB of RAM as one stage-2 block where the host has a free,
        // aligned 2 MiB run (a raw or ELF image starts there); otherwise
        // those pages are mapped one by one like the rest.
        private static bool MapFirstBlock(VirtualMachine vm)
        {
            if (vm.RamSize >= Stage2Table.BlockSize)
            {
                ulong block = Kernel.Frames.AllocateContiguous(512, 512, vm.Owner);
                if (block != 0)
                {
                    if (vm.Stage2.Map2M(vm.RamBase, block, Hypervisor.Arch.Stage2.NormalReadWriteExecute) != Stage2Status.Ok)
                    {
                        for (ulong off = 0; off < Stage2Table.BlockSize; off += FrameAllocator.FrameSize) Kernel.Frames.Free(block + off, vm.Owner);
                        return false;
                    }
                    vm.FramesOwned += 512;
                    if (vm.FramesOwned > vm.PeakFrames) vm.PeakFrames = vm.FramesOwned;
                }
            }
            return true;
        }

        // The VMID width: what ID_AA64MMFR1_EL1.VMIDBits offers (8 or 16), or
        // narrower when `hv vmid_bits=N` asks (tests force rollovers that way).
        private static int VmidBits(int configured)
        {
            int hardware = ((SysReg.ReadIdAa64Mmfr1El1() >> 4) & 0xf) == 2 ? 16 : 8;
            return configured > 0 && configured < hardware ? configured : hardware;
        }

        private static bool Load(VirtualMachine vm, ReadOnlySpan<byte> image, Span<GuestSegment> segments, in GuestImageInfo info)
        {
            for (int i = 0; i < info.SegmentCount; i++)
            {
                GuestSegment s = segments[i];
                // Memory beyond the file part (.bss) is already zero: every
                // frame a VM gets is zeroed first.
                if (!GuestMemory.CopyIn(vm, s.PhysicalAddress, image.Slice((int)s.FileOffset, (int)s.FileSize))) return false;
            }
            return true;
        }

        // The initrd where BootLayout put it, copied from the bundle at creation
        // and again at every reset. A failure here is a failure to get host frames.
        private static bool LoadInitrd(VirtualMachine vm)
        {
            if (vm.InitrdAddress == 0) return true;
            return GuestMemory.CopyIn(vm, vm.Layout.InitrdStart, new ReadOnlySpan<byte>((void*)vm.InitrdAddress, vm.InitrdLength));
        }

        private static BootLayoutStatus Layout(ulong ramBase, ulong ramSize, in GuestImageInfo info, int initrdLength, out BootLayoutInfo layout) =>
            BootLayout.Place(ramBase, ramSize, info.LoadStart, info.LoadEnd, (ulong)initrdLength, DtbBufferSize, out layout);

        // The guest's device tree goes above the image and the initrd
        // (BootLayout), written anew at every reset.
        private static bool WriteDeviceTree(VirtualMachine vm, ReadOnlySpan<byte> bootargs)
        {
            GuestDtbSpec spec = default;
            spec.MemoryBase = vm.RamBase;
            spec.MemorySize = vm.RamSize;
            spec.CpuCount = vm.Vcpus.Length;
            if (vm.Balloon != null)
            {
                spec.HasVirtio = true;
                spec.VirtioBase = VirtioMmioDevice.SlotBase(0);
                spec.VirtioSize = VirtioMmioDevice.WindowSize;
                spec.VirtioSpi = VirtioMmioDevice.SlotSpi(0);
            }
            if (vm.InitrdAddress != 0)
            {
                spec.HasInitrd = true;
                spec.InitrdStart = vm.Layout.InitrdStart;
                spec.InitrdEnd = vm.Layout.InitrdEnd;
            }
            // Every VM has the virtual GIC: the tree names it, the timer, the
            // UART's clock and the devices' interrupts.
            spec.HasGic = true;
            // Seeds of its own, new at every reset (kernel/Boot/GuestSeeds.cs).
            Span<byte> rngSeed = stackalloc byte[GuestSeeds.RngSeedBytes];
            Seeds.RngSeed(vm.Index, vm.Resets, rngSeed);
            spec.KaslrSeed = Seeds.KaslrSeed(vm.Index, vm.Resets);
            FdtWriteStatus built = GuestDtb.Build(s_dtb, spec, bootargs, rngSeed, out int size);
            rngSeed.Clear();
            if (built != FdtWriteStatus.Ok) return false;
            vm.DtbIpa = vm.Layout.DtbStart;
            vm.DtbSize = (ulong)size;
            return GuestMemory.CopyIn(vm, vm.DtbIpa, new ReadOnlySpan<byte>(s_dtb).Slice(0, size));
        }

        private static void Refuse(in VmSpec spec, ReadOnlySpan<byte> name, string reason, ReadOnlySpan<byte> detail)
        {
            Log.Write("[hv] vms.conf:");
            Log.Dec((ulong)spec.Line);
            Log.Write(": vm ");
            Log.Write(name);
            Log.Write(" not started: ");
            Log.Write(reason);
            Log.Write(detail);
            Log.NewLine();
        }

        private static void Warn(in VmSpec spec, ReadOnlySpan<byte> name, string what)
        {
            Log.Write("[hv] vms.conf:");
            Log.Dec((ulong)spec.Line);
            Log.Write(": vm ");
            Log.Write(name);
            Log.Write(": ");
            Log.Line(what);
        }

        // scripts/mkbundle stores files under their base names.
        private static ReadOnlySpan<byte> BaseName(ReadOnlySpan<byte> path)
        {
            int start = 0;
            for (int i = 0; i < path.Length; i++) if (path[i] == '/') start = i + 1;
            return path.Slice(start);
        }

        private static string KindName(GuestKind kind)
        {
            if (kind == GuestKind.Elf) return "elf";
            if (kind == GuestKind.LinuxImage) return "arm64 Image";
            return "raw";
        }
    }
}
