using System.Runtime;
using System.Runtime.CompilerServices;
using Hypervisor.Arch;
using Hypervisor.Trap;
using Hypervisor.Vm;

namespace Hypervisor.Mm
{
    // TLB maintenance: one function per kind of change, and the only place in
    // the kernel that issues TLBI. Each runs with the VM's VMID in VTTBR_EL2,
    // because TLBI by IPA and by VMALL act on "the current VMID".
    //
    //   one stage-2 mapping of a VM changed  -> FlushIpa
    //   a batch of stage-2 mappings changed  -> BeginBatch, BatchIpa per page, EndBatch
    //   a VM's whole address space is gone   -> FlushVm
    public static class Tlb
    {
        public static ulong Rollovers;   // VMID generations ended with TLBI ALLE1IS (kernel/Vm/Scheduler.cs)

        [RuntimeImport("*", "tlb_flush_ipa")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void TlbiIpaThenVmallE1(ulong ipa);
        [RuntimeImport("*", "tlb_flush_ipa_stage2_only")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void TlbiIpa(ulong ipa);
        [RuntimeImport("*", "tlb_flush_vm_stage1")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void TlbiVmallE1();
        [RuntimeImport("*", "tlb_flush_va")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void TlbiVaae1(ulong va);
        [RuntimeImport("*", "tlb_flush_vmid")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void TlbiVmallS12E1();

        // TLBI IPAS2E1IS, DSB, TLBI VMALLE1IS, DSB, ISB. The second TLBI is not
        // optional: the CPU may cache the guest's GVA -> HPA translation as one
        // combined entry that an IPA-based invalidation does not find.
        public static void FlushIpa(VirtualMachine vm, ulong ipa)
        {
            ulong saved = EnterVmid(vm);
            TlbiIpaThenVmallE1(ipa);
            LeaveVmid(saved);
            vm.Counters.TlbiIpa++;
            vm.Counters.TlbiVmallE1++;
        }

        // A batch: BeginBatch loads the VM's VMID once, each changed page gets
        // its TLBI IPAS2E1IS, EndBatch finishes with DSB + TLBI VMALLE1IS and
        // puts the previous VTTBR back.
        public static ulong BeginBatch(VirtualMachine vm) => EnterVmid(vm);

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        public static void BatchIpa(ulong ipa) => TlbiIpa(ipa);

        // `changed`: how many BatchIpa calls the batch made (counted here, once).
        // Mid-batch: what the batch changed so far is gone from every TLB
        // once this returns (DSB ISH, TLBI VMALLE1IS, DSB ISH).
        public static void CompleteBatch(VirtualMachine vm)
        {
            TlbiVmallE1();
            vm.Counters.TlbiVmallE1++;
        }

        public static void EndBatch(VirtualMachine vm, ulong saved, ulong changed)
        {
            if (changed != 0)
            {
                TlbiVmallE1();
                vm.Counters.TlbiIpa += changed;
                vm.Counters.TlbiVmallE1++;
            }
            LeaveVmid(saved);
        }

        // Shadow and direct paging change stage-1 entries the MMU walks: one
        // page (TLBI VAAE1IS, every ASID) or all of the VM's stage-1 entries.
        public static void FlushGuestVa(VirtualMachine vm, ulong va)
        {
            ulong saved = EnterVmid(vm);
            TlbiVaae1(va);
            LeaveVmid(saved);
            vm.Counters.TlbiVa++;
        }

        public static void FlushGuestStage1(VirtualMachine vm)
        {
            ulong saved = EnterVmid(vm);
            TlbiVmallE1();
            LeaveVmid(saved);
            vm.Counters.TlbiVmallE1++;
        }

        // TLBI VMALLS12E1IS: every stage-1 and stage-2 entry tagged with the VMID.
        public static void FlushVm(VirtualMachine vm)
        {
            ulong saved = EnterVmid(vm);
            TlbiVmallS12E1();
            LeaveVmid(saved);
            vm.Counters.TlbiVmallS12E1++;
        }

        private static ulong EnterVmid(VirtualMachine vm)
        {
            ulong current = SysReg.ReadVttbrEl2();
            if (current != vm.Vttbr) SysReg.WriteVttbrEl2(vm.Vttbr);
            return current;
        }

        private static void LeaveVmid(ulong saved)
        {
            if (SysReg.ReadVttbrEl2() != saved) SysReg.WriteVttbrEl2(saved);
        }
    }

    // The stage-2 table code's hook into the functions above. Normally every
    // changed entry gets the full sequence; inside a batch (the balloon
    // unmapping hundreds of pages) each gets only its TLBI IPAS2E1IS and the
    // batch ends with one DSB + TLBI VMALLE1IS (GuestMemory.EndBatch).
    public sealed class VmTlb : TlbMaintenance
    {
        private readonly VirtualMachine _vm;
        public bool Batching;
        public ulong PendingInBatch;
        public ulong SavedVttbr;

        public VmTlb(VirtualMachine vm) { _vm = vm; }

        public override void InvalidateIpa(ulong ipa)
        {
            if (!Batching)
            {
                Tlb.FlushIpa(_vm, ipa);
                return;
            }
            Tlb.BatchIpa(ipa);
            PendingInBatch++;
        }
    }
}
