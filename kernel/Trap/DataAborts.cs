using System;
using Hypervisor.Arch;
using Hypervisor.Console;
using Hypervisor.Devices;
using Hypervisor.Mm;
using Hypervisor.Paging;
using Hypervisor.Vm;

namespace Hypervisor.Trap
{
    // Stage-2 aborts: the guest touched an IPA that stage 2 does not map (or
    // maps without the access it tried). Three answers:
    //   RAM      -> map a frame on first touch and let the guest retry;
    //   a device -> emulate the access, step over the instruction;
    //   anything else -> inject a synchronous external abort into the guest.
    //
    // While shadow or direct paging runs the guest's MMU, the VM is on the
    // identity map (kernel/Paging/IdentityMap.cs) and the IPA is not a GPA:
    //   trap window (shadow)  -> IPA - TrapBase is the GPA: the three answers
    //                            above, then the shadow leaf learns the frame;
    //   a guest table page    -> the guest wrote its page table (shadow);
    //   below RAM (direct)    -> a device the guest mapped: emulate or abort.
    public static unsafe class DataAborts
    {
        // The stage-2 path (no shadow or direct paging) decides RAM or device
        // with two compares; everything else is in the methods it calls.
        public static void Handle(VirtualMachine vm, TrapFrame* frame)
        {
            var syndrome = new DataAbortSyndrome(frame->Esr);
            ulong ipa = DataAbortSyndrome.IntermediatePhysicalAddress(frame->Hpfar, frame->Far);
            if (vm.ActiveStage2Root != vm.Stage2Root) OnIdentityMap(vm, frame, syndrome, ipa);
            else if (vm.IsRam(ipa)) RamFault(vm, frame, syndrome, ipa, false);
            else MmioOrAbort(vm, frame, syndrome, ipa);
        }

        // Shadow or direct paging: the IPA came through the identity map.
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
        private static void OnIdentityMap(VirtualMachine vm, TrapFrame* frame, DataAbortSyndrome syndrome, ulong ipa)
        {
            if (!FromTrapWindow(vm, ref ipa))
            {
                IdentityMapFault(vm, frame, syndrome, ipa);
                return;
            }
            // The walk met a shadow entry left for later (kernel/Paging/ShadowBudget.cs).
            if (syndrome.OnStage1TableWalk && vm.Shadow.FillDeferred(frame->Far, ipa)) return;
            if (vm.IsRam(ipa)) RamFault(vm, frame, syndrome, ipa, true);
            else MmioOrAbort(vm, frame, syndrome, ipa);
        }

        // A fault on the VM's RAM: a demand fault maps a frame (shadowLeaf: the
        // IPA came through a shadow leaf into the trap window).
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
        private static void RamFault(VirtualMachine vm, TrapFrame* frame, DataAbortSyndrome syndrome, ulong ipa, bool shadowLeaf)
        {
            if (vm.Balloon != null && vm.Balloon.IsBallooned(ipa))
            {
                // The guest gave this page away: it is not its memory now.
                vm.Counters.BalloonedTouches++;
                Injection.DataAbort(vm, frame, syndrome.IsWrite);
                return;
            }
            if (vm.Balloon != null && syndrome.IsTranslationFault && vm.Balloon.Headroom(vm.FramesOwned) == 0)
            {
                // It owns all it was given (boot_balloon not inflated yet).
                vm.Balloon.OwedRefused++;
                Injection.DataAbort(vm, frame, syndrome.IsWrite);
                return;
            }
            if (syndrome.IsTranslationFault)
            {
                if (shadowLeaf)
                {
                    ShadowDemandFault(vm, frame, ipa);
                    return;
                }
                // A balloon VM's faults are timed (the Linux inflate's parts, make bench).
                uint mark = vm.Balloon != null ? El2Clock.Mark() : 0;
                if (!GuestMemory.MapOnDemand(vm, ipa)) vm.RequestStop("host out of memory on a demand fault");
                if (vm.Balloon != null) vm.Counters.El2Faults += El2Clock.Since(mark);
                return;   // ELR unchanged: the guest retries the access
            }
            Unexpected(vm, frame, syndrome, " on RAM at IPA ", ipa);
        }

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        private static void MmioOrAbort(VirtualMachine vm, TrapFrame* frame, DataAbortSyndrome syndrome, ulong ipa)
        {
            MmioDevice device = vm.FindDevice(ipa);
            if (device == null || syndrome.OnStage1TableWalk || syndrome.CacheMaintenance)
            {
                // Not RAM, no device, or the guest's page tables point at MMIO.
                Injection.DataAbort(vm, frame, syndrome.IsWrite);
                return;
            }
            vm.Counters.MmioExits++;
            if (!EmulateMmio(vm, frame, device, syndrome, ipa)) Injection.DataAbort(vm, frame, syndrome.IsWrite);
        }

        // On the identity map an IPA is a host address, or, reached through a
        // shadow leaf, TrapBase + GPA: the latter gives the GPA back.
        private static bool FromTrapWindow(VirtualMachine vm, ref ulong ipa)
        {
            if (vm.Shadow == null || !ShadowTables.InTrapWindow(ipa)) return false;
            ipa -= ShadowTables.TrapBase;
            return true;
        }

        // A shadow leaf into the trap window met RAM: a frame for the page if it
        // has none yet (the demand fault), then the leaf names the frame so the
        // next access runs at full speed: the shadow's hidden page fault.
        private static void ShadowDemandFault(VirtualMachine vm, TrapFrame* frame, ulong gpa)
        {
            if (GuestMemory.HostAddressOf(vm, gpa & ~0xfffUL) == 0 && !GuestMemory.MapOnDemand(vm, gpa))
            {
                vm.RequestStop("host out of memory on a demand fault");
                return;
            }
            vm.Shadow.AfterDemandFault(frame->Far, gpa);
        }

        // A fault on the identity map (IPA == HPA below the trap window).
        private static void IdentityMapFault(VirtualMachine vm, TrapFrame* frame, DataAbortSyndrome syndrome, ulong ipa)
        {
            if (vm.Shadow != null && syndrome.IsWrite && !syndrome.IsTranslationFault && vm.Shadow.IsGuestTable(ipa))
            {
                if (!EmulateMmio(vm, frame, vm.Shadow.Writes, syndrome, ipa)) Injection.DataAbort(vm, frame, syndrome.IsWrite);
                return;
            }
            if (vm.Direct != null && !DirectPaging.IsHostRam(ipa))
            {
                MmioOrAbort(vm, frame, syndrome, ipa);   // a device window the guest mapped
                return;
            }
            Unexpected(vm, frame, syndrome, " on the identity map at ", ipa);
        }

        // A fault this VM should not be able to cause: say so, and the guest
        // gets the abort.
        private static void Unexpected(VirtualMachine vm, TrapFrame* frame, DataAbortSyndrome syndrome, string where, ulong ipa)
        {
            Log.Write("[hv] vm ");
            Log.Write(vm.Name);
            Log.Write(": unexpected ");
            Log.Write(FaultStatusCode.Name(syndrome.StatusCode));
            Log.Write(where);
            Log.Hex(ipa);
            Log.NewLine();
            Injection.DataAbort(vm, frame, syndrome.IsWrite);
        }

        // Instruction fetch from an unmapped IPA: RAM is mapped on demand (a guest
        // runs code it has just loaded); fetching from anything else aborts.
        public static void HandleInstructionFetch(VirtualMachine vm, TrapFrame* frame)
        {
            var syndrome = new DataAbortSyndrome(frame->Esr);
            ulong ipa = DataAbortSyndrome.IntermediatePhysicalAddress(frame->Hpfar, frame->Far);
            if (vm.ActiveStage2Root != vm.Stage2Root)
            {
                bool window = FromTrapWindow(vm, ref ipa);
                if (window && syndrome.OnStage1TableWalk && vm.Shadow.FillDeferred(frame->Far, ipa)) return;
                if (window && vm.IsRam(ipa) && syndrome.IsTranslationFault)
                    ShadowDemandFault(vm, frame, ipa);
                else
                    Injection.InstructionAbort(vm, frame);
                return;
            }
            if (vm.IsRam(ipa) && syndrome.IsTranslationFault)
            {
                if (!GuestMemory.MapOnDemand(vm, ipa)) vm.RequestStop("host out of memory on a demand fault");
                return;
            }
            Injection.InstructionAbort(vm, frame);
        }

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        private static bool EmulateMmio(VirtualMachine vm, TrapFrame* frame, MmioDevice device, DataAbortSyndrome syndrome, ulong ipa)
        {
            if (syndrome.IsInstructionSyndromeValid) return EmulateWithSyndrome(vm, frame, device, syndrome, ipa);
            return EmulateDecoded(vm, frame, device, syndrome, ipa);
        }

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
        private static bool EmulateDecoded(VirtualMachine vm, TrapFrame* frame, MmioDevice device, DataAbortSyndrome syndrome, ulong ipa)
        {
            // The decoder reads A64 only: an AArch32 (EL0) instruction
            // without a syndrome gets the abort.
            if (ExceptionVectors.FromAarch32(frame->Spsr)) return false;

            // ISV=0 (pairs, writeback forms): read the instruction itself.
            var registers = new Span<ulong>(frame->X, 31);
            ulong sp = StackPointer(frame);
            if (!FetchInstruction(vm, frame->Elr, out uint instruction)) return false;
            LoadStoreInstruction access = LoadStoreDecoder.Decode(instruction);
            if (!access.IsSupported || !MmioEmulation.AgreesWithSyndrome(access, syndrome)) return false;
            // FAR may name the second element of a pair: find the first.
            if (MmioEmulation.ComputeAddress(access, registers, sp, out ulong firstVa) != EmulationStatus.Done) return false;
            ulong firstIpa = ipa - (frame->Far - firstVa);

            ulong offset = firstIpa - device.Base;
            ulong first = 0, second = 0;
            if (access.IsStore)
            {
                if (MmioEmulation.ReadStoreData(access, registers, out first, out second) != EmulationStatus.Done) return false;
                if (!device.Write(vm, offset, access.AccessSize, first)) return false;
                if (Unfinished(device)) return true;
                if (access.RegisterCount == 2 && !device.Write(vm, offset + (ulong)access.AccessSize, access.AccessSize, second)) return false;
                // Repeating a pair writes its first register again: the
                // registers that ask for repeats (QueueNotify) are idempotent.
                if (Unfinished(device)) return true;
            }
            else
            {
                if (!device.Read(vm, offset, access.AccessSize, out first)) return false;
                if (access.RegisterCount == 2 && !device.Read(vm, offset + (ulong)access.AccessSize, access.AccessSize, out second)) return false;
            }
            if (MmioEmulation.Finish(access, registers, ref sp, first, second) != EmulationStatus.Done) return false;
            SetStackPointer(frame, sp);
            frame->Elr += 4;
            return true;
        }

        // ISV=1, the common case: the syndrome names the access size, the
        // register and the direction; there is no base register to update.
        private static bool EmulateWithSyndrome(VirtualMachine vm, TrapFrame* frame, MmioDevice device, DataAbortSyndrome syndrome, ulong ipa)
        {
            if (syndrome.CacheMaintenance) return false;
            int size = syndrome.AccessSize;
            int rt = syndrome.RegisterNumber;       // 31 is XZR here
            ulong offset = ipa - device.Base;
            if (syndrome.IsWrite)
            {
                ulong value = rt == 31 ? 0 : MmioEmulation.TruncateToSize(frame->X[rt], size);
                if (!device.Write(vm, offset, size, value)) return false;
                if (Unfinished(device)) return true;
            }
            else if (!LoadWithSyndrome(vm, frame, device, syndrome, offset)) return false;
            frame->Elr += (ulong)syndrome.InstructionLength;   // 2 for a 16-bit Thumb load or store
            return true;
        }

        // Kept apart so a store, the common case, does not pay for the
        // loaded value's slot on the stack.
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
        private static bool LoadWithSyndrome(VirtualMachine vm, TrapFrame* frame, MmioDevice device, DataAbortSyndrome syndrome, ulong offset)
        {
            int size = syndrome.AccessSize;
            int rt = syndrome.RegisterNumber;
            if (!device.Read(vm, offset, size, out ulong raw)) return false;
            if (rt != 31)
                frame->X[rt] = MmioEmulation.ExtendLoadedValue(raw, size, syndrome.SignExtend, syndrome.Register64Bit ? 64 : 32);
            return true;
        }

        // The device did part of the store's work and wants it again
        // (MmioDevice.RepeatAccess): ELR_EL2 stays on the store.
        private static bool Unfinished(MmioDevice device)
        {
            if (!device.RepeatAccess) return false;
            device.RepeatAccess = false;
            return true;
        }

        // The instruction at the guest's PC: a GVA, translated through the
        // guest's own tables (when its MMU is on) and then through stage 2.
        private static bool FetchInstruction(VirtualMachine vm, ulong pc, out uint instruction)
        {
            instruction = 0;
            ulong hpa;
            if ((SysReg.ReadSctlrEl1() & 1) == 0)
            {
                hpa = GuestMemory.HostAddressOf(vm, pc);
            }
            else
            {
                GuestView.Registers(vm, true, out GuestTranslationRegisters regs);
                Span<TranslationStep> steps = stackalloc TranslationStep[TwoStageWalker.MaxSteps];
                if (TwoStageWalker.Translate(GuestView.Stage2(vm), regs, pc, steps, out TwoStageResult result) != TwoStageStatus.Ok) return false;
                hpa = result.Hpa;
            }
            if (hpa == 0 || (hpa & 3) != 0) return false;
            instruction = *(uint*)hpa;
            return true;
        }

        // The guest's SP as the instruction sees it: SP_EL1 at EL1h, else SP_EL0.
        private static ulong StackPointer(TrapFrame* frame) =>
            (frame->Spsr & 0xf) == Pstate.ModeEl1h ? SysReg.ReadSpEl1() : SysReg.ReadSpEl0();

        private static void SetStackPointer(TrapFrame* frame, ulong sp)
        {
            if ((frame->Spsr & 0xf) == Pstate.ModeEl1h) SysReg.WriteSpEl1(sp);
            else SysReg.WriteSpEl0(sp);
        }
    }
}
