using Hypervisor.Arch;
using Hypervisor.Mm;
using Hypervisor.Vm;

namespace Hypervisor.Paging
{
    // The stage 2 a VM runs on while shadow or direct paging is in charge of
    // its MMU: IPA == HPA over host RAM, in 2 MiB blocks, except what the
    // hypervisor reserved at boot (its image, heap, stacks, the frame tables,
    // the device tree, the guest bundle): a second wall, so that even a stage-1
    // entry that got past the checks cannot reach the hypervisor's code.
    //
    // Why keep stage 2 at all? On Arm a stage-1 fault (translation, permission)
    // is taken by the guest at EL1; only stage-2 faults come to EL2. So stage 2
    // is the one place the hypervisor can make a page read-only *for itself*:
    // guest page-table pages become read-only 4 KiB entries here, and every
    // write the guest makes to them exits with the page's HPA. Large blocks
    // keep this layer cheap for the MMU: a stage-1 walk of 4 reads costs
    // 2 stage-2 reads each (level 1, then the block), and the TLB caches them.
    //
    // Why is mapping the rest of host RAM safe? The guest never chooses an address
    // this table sees: with its MMU on, every access goes through stage-1
    // tables the hypervisor built (shadow) or validated entry by entry
    // (direct), which only name the VM's own frames. With its MMU off the VM
    // runs on its ordinary GPA -> HPA stage 2 instead (VirtualMachine.UseStage2Root).
    public sealed class IdentityMap
    {
        public readonly ulong Root;
        public readonly Stage2Table Table;
        private readonly uint _rootFrames;

        private IdentityMap(ulong root, uint rootFrames, Stage2Table table)
        {
            Root = root;
            _rootFrames = rootFrames;
            Table = table;
        }

        // Null when the host has no frames for the tables.
        public static IdentityMap Create(VirtualMachine vm)
        {
            uint rootFrames = (uint)(VmBuilder.RootTableBytes / FrameAllocator.FrameSize);
            ulong root = Kernel.Frames.AllocateContiguous(rootFrames, rootFrames, FrameOwner.Hypervisor);
            if (root == 0) return null;   // zeroed, as every free frame
            var map = new IdentityMap(root, rootFrames, new Stage2Table(vm.TableMemory, vm.Tlb, root));

            ulong start = Kernel.Frames.Base;
            ulong end = start + (ulong)Kernel.Frames.TotalFrames * FrameAllocator.FrameSize;
            for (ulong pa = start; pa < end;)
            {
                bool block = (pa & (Stage2Table.BlockSize - 1)) == 0 && end - pa >= Stage2Table.BlockSize
                             && !Kernel.Frames.IsBootReserved(pa, pa + Stage2Table.BlockSize);
                ulong size = block ? Stage2Table.BlockSize : Stage2Table.PageSize;
                Stage2Status s = Stage2Status.Ok;
                if (block) s = map.Table.Map2M(pa, pa, Stage2.NormalReadWriteExecute);
                else if (!Kernel.Frames.IsBootReserved(pa, pa + size)) s = map.Table.Map4K(pa, pa, Stage2.NormalReadWriteExecute);
                if (s != Stage2Status.Ok)
                {
                    map.Destroy();
                    return null;
                }
                pa += size;
            }
            return map;
        }

        // A guest page-table page becomes read-only (its 2 MiB block is split
        // around it the first time), or writable again.
        public bool Protect(ulong hpa, bool readOnly)
        {
            ulong attributes = readOnly
                ? Stage2.Attributes(Stage2MemoryType.NormalWriteBack, Stage2Access.ReadOnly, true)
                : Stage2.NormalReadWriteExecute;
            return Table.Map4K(hpa & ~0xfffUL, hpa & ~0xfffUL, attributes) == Stage2Status.Ok;
        }

        // Tables and root back to the host. The caller has flushed the VMID.
        public void Destroy()
        {
            Table.Destroy(out _);
            for (uint i = 0; i < _rootFrames; i++)
            {
                Kernel.Frames.Free(Root + i * FrameAllocator.FrameSize, FrameOwner.Hypervisor);
            }
        }
    }
}
