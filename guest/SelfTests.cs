using System;
using Hypervisor.Boot;
using Hypervisor.Trap;

namespace Guest
{
    // Each self-test observes one hypervisor property from inside the VM and
    // prints one verdict line. A broken property shows as FAIL, not as a hang:
    // faults the guest does not expect end it with a FAIL line (Traps.cs).
    public static unsafe class SelfTests
    {
        public static void Run(ReadOnlySpan<byte> list)
        {
            if (Listed(list, "uart")) Uart();
            if (Listed(list, "demand")) DemandPaging();
            if (Listed(list, "remap")) RemapVisible();
            if (Listed(list, "abort")) AbortOutsideRam();
            if (Listed(list, "isv0")) DecodedMmio();
            if (Listed(list, "psci")) Psci();
            if (Listed(list, "walk")) Walk();
            if (Listed(list, "hvc")) UnknownHypercalls();
            if (Listed(list, "badmmio")) UnemulatableMmio();
            if (Listed(list, "fpregs")) FpRegistersSurvive();
            if (Listed(list, "ptimer")) Interrupts.PhysicalTimer();
            if (Listed(list, "timerlevel")) Interrupts.VirtualTimerLevel();
            if (Listed(list, "dtbabove")) DtbAboveImage();
            // Only by name: it needs a VM with an initrd (tests/Integration/InitrdTests.cs).
            if (!Fdt.BytesEqual(list, "all") && Listed(list, "initrd")) Initrd();
        }

        // What the test wrote into the initrd file: byte i of it.
        public static byte InitrdPattern(ulong i) => (byte)((i >> 12) * 13 + i * 7 + 0x5a);

        // The hypervisor copied the initrd named in vms.conf into RAM and gave
        // its range in /chosen: page-aligned, inside RAM, clear of this image,
        // every byte as written. Then the first and last bytes are overwritten,
        // so a reset shows whether the hypervisor loads it again.
        private static void Initrd()
        {
            FdtInfo f = Program.Fdt;
            ulong start = f.InitrdStart, end = f.InitrdEnd;
            ulong ramEnd = f.MemoryBase + f.MemorySize;
            bool placed = f.HasInitrd && (start & 0xfff) == 0 && start >= f.MemoryBase + (4UL << 20) && end <= ramEnd && end > start;
            ulong bad = 0, firstBad = ulong.MaxValue;
            if (placed)
            {
                byte* p = (byte*)start;
                for (ulong i = 0; i < end - start; i++)
                {
                    if (p[i] == InitrdPattern(i)) continue;
                    if (bad == 0) firstBad = i;
                    bad++;
                }
                p[0] ^= 0xff;
                p[end - start - 1] ^= 0xff;
            }
            Verdict("initrd", placed && bad == 0);
            Console.Write("start=");
            Console.Hex(start);
            Console.Write(" end=");
            Console.Hex(end);
            Console.Write(" size=");
            Console.Dec(end - start);
            Console.Write(" ram_end=");
            Console.Hex(ramEnd);
            Console.Write(" mismatches=");
            Console.Dec(bad);
            if (bad != 0)
            {
                Console.Write(" first_mismatch=");
                Console.Dec(firstBad);
            }
            Console.Put('\n');
        }

        // The boot layout QEMU's loader makes and guests written for it rely
        // on (kernel/Boot/BootLayout.cs): the device tree (x0) above the end
        // of this image as linked, .bss included, and the tree and the initrd
        // (if any) inside RAM, clear of the image and of each other.
        private static void DtbAboveImage()
        {
            FdtInfo f = Program.Fdt;
            ulong ramStart = f.MemoryBase, ramEnd = f.MemoryBase + f.MemorySize;
            ulong dtb = Program.DtbAddress, dtbEnd = dtb + Program.DtbSize;
            bool above = dtb >= Program.ImageEnd;
            bool dtbInRam = dtb >= ramStart && dtbEnd <= ramEnd && dtbEnd > dtb;
            bool initrdOk = true;
            if (f.HasInitrd)
            {
                initrdOk = f.InitrdStart >= ramStart && f.InitrdEnd <= ramEnd && f.InitrdEnd > f.InitrdStart
                    && !Overlap(f.InitrdStart, f.InitrdEnd, Program.ImageStart, Program.ImageEnd)
                    && !Overlap(f.InitrdStart, f.InitrdEnd, dtb, dtbEnd);
            }
            Verdict("dtbabove", above && dtbInRam && initrdOk);
            WriteRange("dtb=", dtb, dtbEnd);
            WriteRange(" image=", Program.ImageStart, Program.ImageEnd);
            WriteRange(" initrd=", f.HasInitrd ? f.InitrdStart : 0, f.HasInitrd ? f.InitrdEnd : 0);
            WriteRange(" ram=", ramStart, ramEnd);
            Console.Put('\n');
        }

        private static void WriteRange(string label, ulong start, ulong end)
        {
            Console.Write(label);
            Console.Hex(start);
            Console.Write("-");
            Console.Hex(end);
        }

        private static bool Overlap(ulong a, ulong aEnd, ulong b, ulong bEnd) => a < bEnd && b < aEnd;

        // tests=all, or a comma-separated list of names.
        private static bool Listed(ReadOnlySpan<byte> list, string name)
        {
            if (Fdt.BytesEqual(list, "all")) return true;
            int start = 0;
            for (int i = 0; i <= list.Length; i++)
            {
                if (i == list.Length || list[i] == ',')
                {
                    if (Fdt.BytesEqual(list.Slice(start, i - start), name)) return true;
                    start = i + 1;
                }
            }
            return false;
        }

        // `TEST <name> PASS|FAIL ` and the caller's detail, the serial-line contract.
        public static void Verdict(string name, bool pass)
        {
            Console.Write("TEST ");
            Console.Write(name);
            Console.Write(pass ? " PASS " : " FAIL ");
        }

        // Every byte written to the UART data register is one MMIO exit.
        private static void Uart()
        {
            ulong before = Hvc.Counter(HypercallAbi.Counter.MmioExits);
            Console.Line("uart-probe: hello from EL1");
            ulong exits = Hvc.Counter(HypercallAbi.Counter.MmioExits) - before;
            // 27 characters including the newline; reading the counter itself is a hypercall, not MMIO.
            uint flags = Hypervisor.Arch.Mmio.Read32(Console.UartBase + 0x18);
            bool txEmpty = (flags & (1 << 7)) != 0;
            Verdict("uart", exits == 27 && txEmpty);
            Console.Write("mmio_exits=");
            Console.Dec(exits);
            Console.Write(" fr=");
            Console.Hex(flags);
            Console.Put('\n');
        }

        // RAM pages are mapped on first touch; each one holds what was written.
        // Direct paging has no first touch to see: the guest maps machine
        // frames it was handed (zeroed) itself, and the hypervisor sees no fault.
        // With fault_around=N a fault maps its whole window of N pages, so
        // faults and pages mapped ahead of a touch still add up to 256.
        // With backing=blocks RAM is all mapped before the guest starts, in
        // blocks: no fault at all, the same contents.
        private static void DemandPaging()
        {
            const int Pages = 256;
            ulong region = Program.Fdt.MemoryBase + Program.Fdt.MemorySize - (1UL << 20);  // the top MiB of RAM
            bool upFront = Hvc.Counter(HypercallAbi.Counter.RamBacking) == 1;
            ulong faultsBefore = Hvc.Counter(HypercallAbi.Counter.Stage2Faults);
            ulong aheadBefore = Hvc.Counter(HypercallAbi.Counter.PagesPrefaulted);
            bool zeroed = true;
            for (int i = 0; i < Pages; i++)
            {
                ulong* p = (ulong*)(region + (ulong)i * 4096);
                if (p[0] != 0 || p[511] != 0) zeroed = false;
                for (int j = 0; j < 512; j += 64) p[j] = Pattern(i, j);
            }
            bool same = true;
            for (int i = 0; i < Pages; i++)
            {
                ulong* p = (ulong*)(region + (ulong)i * 4096);
                for (int j = 0; j < 512; j += 64) if (p[j] != Pattern(i, j)) same = false;
            }
            ulong faults = Hvc.Counter(HypercallAbi.Counter.Stage2Faults) - faultsBefore;
            ulong ahead = Hvc.Counter(HypercallAbi.Counter.PagesPrefaulted) - aheadBefore;
            Verdict("demand", same && zeroed && faults + ahead == (Mmu.IsDirect || upFront ? 0UL : Pages));
            Console.Write("pages=");
            Console.Dec(Pages);
            Console.Write(" stage2_faults=");
            Console.Dec(faults);
            Console.Write(" prefaulted=");
            Console.Dec(ahead);
            Console.Write(zeroed ? " zeroed=yes" : " zeroed=NO");
            Console.Line(same ? " readback=ok" : " readback=MISMATCH");
        }

        private static ulong Pattern(int page, int word) => 0x5eed000000000000UL ^ ((ulong)page << 16) ^ (ulong)word;

        // The hypervisor moves one IPA to a new frame. The guest, whose TLB
        // holds GVA -> old HPA, must see the new contents at once: this fails
        // if the hypervisor's TLB maintenance leaves out TLBI VMALLE1IS.
        private static void RemapVisible()
        {
            ulong* gva = (ulong*)(Mmu.WindowGva + 3 * 4096);
            ulong gpa = Mmu.WindowGpa(3);
            const ulong Old = 0x0101010101010101, New = 0xabcdef0123456789;
            for (int i = 0; i < 512; i++) gva[i] = Old;
            ulong warm = 0;
            for (int i = 0; i < 512; i++) warm += gva[i];   // the TLB now holds the translation
            var r = Hvc.Call(HypercallAbi.TestRemap, gpa, New);
            ulong seen0 = gva[0], seen511 = gva[511];
            bool ok = (long)r.X0 == HypercallAbi.Ok && seen0 == New && seen511 == New && warm == unchecked(Old * 512);
            // Direct paging: this guest's tables hold machine addresses, so the
            // hypervisor must refuse to move the page, and nothing changes.
            if (Mmu.IsDirect) ok = (long)r.X0 == HypercallAbi.Denied && seen0 == Old && seen511 == Old;
            Verdict("remap", ok);
            Console.Write("gva=");
            Console.Hex((ulong)gva);
            Console.Write(" gpa=");
            Console.Hex(gpa);
            Console.Write(" saw=");
            Console.Hex(seen0);
            Console.Put('\n');
        }

        // An IPA that is neither RAM nor a device: the hypervisor injects a
        // synchronous external abort, which this guest catches in its vectors.
        // Direct paging: the hypervisor refuses to let the guest map the hole at
        // all, so the access is a stage-1 translation fault the guest takes itself.
        private static void AbortOutsideRam()
        {
            Traps.Expect();
            ulong v = Cpu.Load64(Mmu.HoleGva + 0x123 * 8);
            uint ec = (uint)(Traps.LastEsr >> 26) & 0x3f;
            uint fsc = (uint)Traps.LastEsr & 0x3f;
            bool expectedStatus = Mmu.IsDirect ? (fsc & 0x3c) == 0x04 && Mmu.HoleStatus == HypercallAbi.Denied : fsc == 0x10;
            bool ok = Traps.Taken == 1 && ec == 0x25 && expectedStatus && Traps.LastFar == Mmu.HoleGva + 0x123 * 8;
            Traps.Expect();
            Cpu.Store64(Mmu.HoleGva, v);
            bool wnr = ((Traps.LastEsr >> 6) & 1) == 1;
            ok = ok && Traps.Taken == 1 && wnr;
            Traps.Armed = false;
            Verdict("abort", ok);
            Console.Write("esr=");
            Console.Hex(Traps.LastEsr);
            Console.Write(" far=");
            Console.Hex(Traps.LastFar);
            Console.Write(" aborts=");
            Console.Dec(Hvc.Counter(HypercallAbi.Counter.InjectedAborts));
            Console.Put('\n');
        }

        // Load/store pair and writeback forms give the hypervisor no syndrome
        // (ISV=0): it must fetch and decode the instruction itself.
        private static void DecodedMmio()
        {
            Console.Write("isv0: ");
            Cpu.StorePair32(Console.UartBase, 'X', 0);          // DR <- 'X', RSR/ECR <- 0
            ulong next = Cpu.StorePostIndex32(Console.UartBase, 'Y');
            Console.Put('\n');
            ulong pair = Cpu.LoadPairPreIndex32(Console.UartBase + 0x18 + 8); // FR and ILPR
            uint fr = (uint)pair;
            bool ok = next == Console.UartBase + 4 && (fr & (1 << 7)) != 0;
            Verdict("isv0", ok);
            Console.Write("post_index_base=");
            Console.Hex(next);
            Console.Write(" fr=");
            Console.Hex(fr);
            Console.Put('\n');
        }

        private static void Psci()
        {
            bool ok = true;
            ok &= Expect("version", Hvc.Call(PsciAbi.Version).X0, PsciAbi.Version1_1);
            ok &= Expect("features(version)", Hvc.Call(PsciAbi.Features, PsciAbi.Version).X0, 0);
            ok &= Expect("features(cpu_on)", Hvc.Call(PsciAbi.Features, PsciAbi.CpuOn64).X0, 0);
            ok &= Expect("features(bogus)", Hvc.Call(PsciAbi.Features, 0x8400DEAD).X0, unchecked((ulong)PsciAbi.NotSupportedCode));
            ok &= Expect("cpu_on(0)", Hvc.Call(PsciAbi.CpuOn64, 0, 0x40080000, 0).X0, unchecked((ulong)PsciAbi.AlreadyOn));
            ok &= Expect("cpu_on(5)", Hvc.Call(PsciAbi.CpuOn64, 5, 0x40080000, 0).X0, unchecked((ulong)PsciAbi.InvalidParameters));
            ok &= Expect("affinity(0)", Hvc.Call(PsciAbi.AffinityInfo64, 0, 0).X0, PsciAbi.AffinityOn);
            ok &= Expect("affinity(7)", Hvc.Call(PsciAbi.AffinityInfo64, 7, 0).X0, unchecked((ulong)PsciAbi.InvalidParameters));
            ok &= Expect("unknown", Hvc.Call(0x8400FFFF).X0, unchecked((ulong)PsciAbi.NotSupportedCode));
            ok &= Expect("smc version", Hvc.Smc(PsciAbi.Version).X0, PsciAbi.Version1_1);
            ok &= Expect("smc unknown", Hvc.Smc(0x8400FFFF).X0, unchecked((ulong)PsciAbi.NotSupportedCode));
            Verdict("psci", ok);
            Console.Line("calls=11");
        }

        private static void UnknownHypercalls()
        {
            bool ok = true;
            ok &= Expect("vendor unknown", Hvc.Call(HypercallAbi.VendorBase + 0x1234).X0, unchecked((ulong)HypercallAbi.NotSupported));
            ok &= Expect("null", Hvc.Call(HypercallAbi.Null).X0, 0);
            ok &= Expect("counter bogus", Hvc.Call(HypercallAbi.ReadCounter, 999).X0, unchecked((ulong)HypercallAbi.InvalidParameter));
            ok &= Expect("remap outside RAM", Hvc.Call(HypercallAbi.TestRemap, 0x20000000, 1).X0, unchecked((ulong)HypercallAbi.InvalidParameter));
            ok &= Expect("remap unaligned", Hvc.Call(HypercallAbi.TestRemap, Mmu.WindowGpa(1) + 8, 1).X0, unchecked((ulong)HypercallAbi.InvalidParameter));
            ok &= Expect("console bad gpa", Hvc.Call(HypercallAbi.ConsoleWrite, 0x20000000, 16).X0, unchecked((ulong)HypercallAbi.InvalidParameter));
            ok &= Expect("walk unmapped", Hvc.Call(HypercallAbi.WalkAddress, 0x0000_1000_0000_0000).X0, unchecked((ulong)HypercallAbi.InvalidParameter));
            ok &= Expect("console too long", Hvc.Call(HypercallAbi.ConsoleWrite, Mmu.WindowGpa(0), 5000).X0, unchecked((ulong)HypercallAbi.InvalidParameter));
            // The console-write call itself: bytes from guest memory become a line.
            byte* text = (byte*)(Mmu.WindowGva + 7 * 4096);
            string message = "console-write: via hypercall\n";
            for (int i = 0; i < message.Length; i++) text[i] = (byte)message[i];
            ok &= Expect("console write", Hvc.Call(HypercallAbi.ConsoleWrite, Mmu.WindowGpa(7), (ulong)message.Length).X0, (ulong)message.Length);
            Verdict("hvc", ok);
            Console.Line("calls=9");
        }

        // Accesses to a device that the hypervisor cannot or will not complete:
        // a SIMD store (nothing to decode into a device write) and a 64-bit
        // access to a 32-bit UART register. Each must come back as an abort
        // the guest catches, and the guest carries on.
        private static void UnemulatableMmio()
        {
            ulong abortsBefore = Hvc.Counter(HypercallAbi.Counter.InjectedAborts);
            Traps.Expect();
            Cpu.StoreSimd128(Console.UartBase, 0x41);
            bool simd = Traps.Taken == 1 && ((Traps.LastEsr >> 26) & 0x3f) == 0x25 && Traps.LastFar == Console.UartBase;
            Traps.Expect();
            Cpu.Store64(Console.UartBase + 0x38, 0);
            bool wide = Traps.Taken == 1 && ((Traps.LastEsr >> 26) & 0x3f) == 0x25;
            Traps.Armed = false;
            ulong injected = Hvc.Counter(HypercallAbi.Counter.InjectedAborts) - abortsBefore;
            Verdict("badmmio", simd && wide && injected == 2);
            Console.Write("simd=");
            Console.Write(simd ? "abort" : "WRONG");
            Console.Write(" wide=");
            Console.Write(wide ? "abort" : "WRONG");
            Console.Write(" injected=");
            Console.Dec(injected);
            Console.Put('\n');
        }

        // The world switch saves only what the hypervisor itself clobbers: all
        // 32 SIMD registers must still hold the guest's values after exits.
        private static void FpRegistersSurvive()
        {
            Console.Write("fpregs: ");
            ulong changed = Cpu.FpSurvivesExits(Console.UartBase);
            Console.Put('\n');
            Verdict("fpregs", changed == 0);
            Console.Write("changed_mask=");
            Console.Hex(changed);
            Console.Put('\n');
        }

        // The EL1 physical timer is the host's business (CNTHCTL_EL2.EL1PCEN = 0):
        // a guest that programs it gets no exception and a timer that reads
        // back as off. Guests keep time with the virtual timer.

        private static bool Expect(string what, ulong got, ulong want)
        {
            if (got == want) return true;
            Console.Write("  ");
            Console.Write(what);
            Console.Write(": got ");
            Console.Hex(got);
            Console.Write(" want ");
            Console.Hex(want);
            Console.Put('\n');
            return false;
        }

        private static ulong Stage2Reads(ulong gpa) => gpa < Program.Fdt.MemoryBase + (2UL << 20) ? 2UL : 3UL;

        // GVA -> GPA -> HPA for a window page, as the hypervisor walks it: the
        // three addresses differ, and the access count matches the table shapes.
        private static void Walk()
        {
            ulong gva = Mmu.WindowGva + 5 * 4096 + 0x128;
            ulong* p = (ulong*)gva;
            *p = 42; // make sure stage 2 maps the page
            var r = Hvc.Call(HypercallAbi.WalkAddress, gva);
            ulong expectedGpa = Mmu.WindowGpa(5) + 0x128;
            // Stage 1 has four levels. Each stage-1 table address is a GPA that
            // stage 2 translates first, and so is the final GPA. The hypervisor
            // maps the first 2 MiB of RAM as one stage-2 block (2 reads: level
            // 1, then the level-2 block) and the rest in 4 KiB pages (3 reads).
            // Loaded as ELF or raw, this guest's tables sit in that block:
            // 4 * (2 + 1) + 3 = 15. Loaded as an Image (2 MiB higher) they do
            // not: 4 * (3 + 1) + 3 = 19. On 4-level over 4-level it would be 24.
            ulong tableWalk = Stage2Reads(Mmu.WindowL3);
            ulong ExpectedAccesses = 4 * (tableWalk + 1) + Stage2Reads(expectedGpa);
            bool ok = (long)r.X0 == HypercallAbi.Ok && r.X1 == expectedGpa && r.X2 != r.X1 && r.X2 != gva
                      && (r.X2 & 0xfff) == 0x128 && r.X3 == ExpectedAccesses;
            if (Mmu.IsDirect)
            {
                // The tables hold machine addresses and stage 2 is the identity:
                // the "GPA" stage 1 produces is already the host frame. Stage 2
                // maps host RAM in 2 MiB blocks, split to pages around pinned
                // tables: 2 or 3 reads per stage-2 walk.
                ulong machine = Mmu.Tables.Address(Mmu.WindowGpa(5)) + 0x128;
                ok = (long)r.X0 == HypercallAbi.Ok && r.X1 == machine && r.X2 == machine
                     && r.X3 >= 4 * (2 + 1) + 2 && r.X3 <= 4 * (3 + 1) + 3;
            }
            Verdict("walk", ok);
            Console.Write("gva=");
            Console.Hex(gva);
            Console.Write(" gpa=");
            Console.Hex(r.X1);
            Console.Write(" hpa=");
            Console.Hex(r.X2);
            Console.Write(" accesses=");
            Console.Dec(r.X3);
            Console.Put('\n');
        }
    }
}
