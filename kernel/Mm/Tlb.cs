using System;
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
    //   a batch of stage-2 unmaps            -> BeginBatch, BatchIpa per page up to
    //                                           a limit, EndBatch (the rule, and why:
    //                                           kernel/Mm/TlbBatchRule.cs)
    //   a VM's whole address space is gone   -> FlushVm
    public static class Tlb
    {
        public static ulong Rollovers;   // VMID generations ended with TLBI ALLE1IS (kernel/Vm/Scheduler.cs)

        [RuntimeImport("*", "tlb_flush_ipa")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void TlbiIpaThenVmallE1(ulong ipa);
        [RuntimeImport("*", "tlb_flush_ipa_stage2_only")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void TlbiIpa(ulong ipa);
        [RuntimeImport("*", "tlb_flush_ipa_run_stage2_only")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void TlbiIpaRun(ulong ipa, ulong pages);
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

        // A batch: BeginBatch loads the VM's VMID once; the `ordinal`-th page
        // unmapped gets its own TLBI IPAS2E1IS (no DSB yet) while the rule
        // says so; CompleteBatch finishes what was unmapped so far with one
        // VMID-wide TLBI; EndBatch puts the previous VTTBR back.
        public static ulong BeginBatch(VirtualMachine vm) => EnterVmid(vm);

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        public static void BatchIpa(ulong ipa, ulong ordinal)
        {
            if (TlbBatchRule.PerPage(ordinal)) TlbiIpa(ipa);
        }

        // The same for `pages` (at least 1) consecutive pages from `ipa`,
        // all within the rule's limit (TlbBatchRule.PerPageOf).
        public static void BatchIpaRun(ulong ipa, ulong pages) => TlbiIpaRun(ipa, pages);

        // `unmapped` pages since the batch began (or since the last
        // CompleteBatch): once this returns none of them is in any TLB.
        public static void CompleteBatch(VirtualMachine vm, ulong unmapped)
        {
            switch (TlbBatchRule.AtEnd(unmapped))
            {
                case BatchFlush.StageOne:
                    TlbiVmallE1();
                    vm.Counters.TlbiVmallE1++;
                    break;
                case BatchFlush.WholeVmid:
                    TlbiVmallS12E1();
                    vm.Counters.TlbiVmallS12E1++;
                    break;
            }
            vm.Counters.TlbiIpa += TlbBatchRule.PerPageIssued(unmapped);
        }

        public static void EndBatch(ulong saved) => LeaveVmid(saved);

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

    // The stage-2 table code's hook into the functions above. Every change
    // gets the full sequence at once, except an unmap inside a batch (the
    // balloon unmapping hundreds of pages): that one follows
    // TlbBatchRule, and the batch's end completes it (GuestMemory.EndBatch).
    public sealed class VmTlb : TlbMaintenance
    {
        private readonly VirtualMachine _vm;
        public bool Batching;
        public ulong PendingInBatch;
        public ulong SavedVttbr;

        public VmTlb(VirtualMachine vm) { _vm = vm; }

        public override void InvalidateIpa(ulong ipa) => Tlb.FlushIpa(_vm, ipa);

        public override void Unmapped(ulong ipa)
        {
            if (!Batching)
            {
                Tlb.FlushIpa(_vm, ipa);
                return;
            }
            Tlb.BatchIpa(ipa, ++PendingInBatch);
        }

        // Inside a batch, the run's first pages (up to the rule's limit) get
        // their TLBI IPAS2E1IS after one DSB ISHST for all of the run's
        // writes: one call for a run whose every page was valid (the
        // balloon's usual case), none past the limit, page by page otherwise.
        public override void UnmappedRun(ulong ipa, ReadOnlySpan<ulong> frames, int valid)
        {
            if (!Batching)
            {
                base.UnmappedRun(ipa, frames, valid);
                return;
            }
            ulong own = TlbBatchRule.PerPageOf(PendingInBatch, (ulong)valid);
            if (own == 0 || valid == frames.Length)
            {
                PendingInBatch += (ulong)valid;
                if (own != 0) Tlb.BatchIpaRun(ipa, own);
                return;
            }
            for (int i = 0; i < frames.Length; i++)
                if (frames[i] != 0) Tlb.BatchIpa(ipa + ((ulong)i << 12), ++PendingInBatch);
        }
    }
}
