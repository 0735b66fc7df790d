using System.Runtime;
using System.Runtime.CompilerServices;
using Hypervisor.Trap;

namespace Guest
{
    // The whole op0 = 3 system-register space from EL1, read and written with
    // random values (guest/boot/sysregs.s has an MRS and an MSR for each of
    // its 16384 encodings), beside a VM that keeps its own values in the
    // registers a guest may write and checks them after every switch. The
    // hypervisor must answer each access as the architecture says for a
    // register that is absent (an undefined instruction), trapped (emulated:
    // the ID registers, the physical timer, SGIs, translation registers in
    // shadow and direct paging) or passed through (the guest's own, moved on
    // every switch), never stop or hang, and let nothing reach the other VM.
    public static unsafe class SysRegFuzz
    {
        [RuntimeImport("*", "sysreg_read")][MethodImpl(MethodImplOptions.InternalCall)] private static extern ulong Read(ulong index);
        [RuntimeImport("*", "sysreg_write")][MethodImpl(MethodImplOptions.InternalCall)] private static extern void Write(ulong index, ulong value);

        private const int Encodings = 16384;

        private static ulong Index(int op1, int crn, int crm, int op2) => (ulong)(op1 << 11 | crn << 7 | crm << 3 | op2);

        // Registers whose random values would break this guest rather than
        // test the hypervisor (its MMU, vectors, FP access, interrupt masks,
        // stack selection, PAN/UAO, FP modes, its own GIC interface switch):
        // they get their own value written back instead.
        private static bool KeepsItsValue(ulong i) =>
            i == Index(0, 1, 0, 0) || i == Index(0, 1, 0, 2) ||                          // SCTLR, CPACR
            i == Index(0, 2, 0, 0) || i == Index(0, 2, 0, 1) || i == Index(0, 2, 0, 2) || // TTBR0, TTBR1, TCR
            i == Index(0, 10, 2, 0) || i == Index(0, 12, 0, 0) ||                         // MAIR, VBAR
            i == Index(0, 4, 0, 0) || i == Index(0, 4, 0, 1) ||                           // SPSR_EL1, ELR_EL1
            i == Index(0, 4, 2, 0) || i == Index(0, 4, 2, 3) || i == Index(0, 4, 2, 4) || // SPSel, PAN, UAO
            i == Index(3, 4, 2, 1) || i == Index(3, 4, 4, 0) || i == Index(3, 4, 4, 1) || // DAIF, FPCR, FPSR
            i == Index(0, 12, 12, 5) || i == Index(0, 13, 0, 4);                          // ICC_SRE_EL1, TPIDR_EL1

        private static bool IsId(ulong i) => (i >> 7) == 0 && ((i >> 3) & 15) >= 1 && ((i >> 3) & 15) <= 7;   // op1 0, CRn 0, CRm 1-7
        private static bool IsImplementationDefined(ulong i) => ((i >> 7) & 15) == 11 || ((i >> 7) & 15) == 15;
        private static bool IsPmu(ulong i)
        {
            int op1 = (int)(i >> 11), crn = (int)(i >> 7) & 15, crm = (int)(i >> 3) & 15, op2 = (int)i & 7;
            return (op1 == 3 && crn == 9 && crm >= 12 && crm <= 14) || (op1 == 3 && crn == 14 && crm >= 8)
                || (op1 == 0 && crn == 9 && crm == 14 && (op2 == 1 || op2 == 2 || op2 == 6));
        }

        // role=regfuzz
        public static void Fuzz()
        {
            ulong seed = 0x9e37_79b9_7f4a_7c15;
            ulong readOk = 0, readUndef = 0, writeOk = 0, writeUndef = 0, other = 0, wrong = 0, impdef = 0;
            for (ulong i = 0; i < Encodings; i++)
            {
                Traps.Expect();
                ulong value = Read(i);
                int kind = Outcome();
                if (kind == 0) readOk++; else if (kind == 1) readUndef++; else other++;
                // What the architecture requires of the hypervisor's answers:
                // ID registers always read (TID3, reserved ones as zero); the
                // PMU never does. The implementation-defined space (CRn 11,
                // 15) traps with HCR_EL2.TIDCP where the CPU implements that
                // trap; QEMU 7.2 does not, and lets its cortex-a72's few
                // constant ones be read, so they are counted, not judged.
                if ((IsId(i) && kind != 0) || (IsPmu(i) && kind != 1)) Wrong(ref wrong, i, "read", kind);
                if (IsImplementationDefined(i) && kind == 0) impdef++;

                ulong written = KeepsItsValue(i) ? value : IsolationTests.Next(ref seed);
                if (KeepsItsValue(i) && kind != 0) continue;
                Traps.Expect();
                Write(i, written);
                kind = Outcome();
                if (kind == 0) writeOk++; else if (kind == 1) writeUndef++; else other++;
                if ((IsId(i) || IsPmu(i)) && kind != 1) Wrong(ref wrong, i, "write", kind);
                if ((i & 511) == 511) Cpu.Yield();          // let the keeper look
            }
            Traps.Armed = false;
            bool alive = (long)Hvc.Call(HypercallAbi.Null).X0 == 0;
            SelfTests.Verdict("regfuzz", alive && wrong == 0 && other == 0);
            Console.Write("encodings=");
            Console.Dec(Encodings);
            Console.Write(" read_ok=");
            Console.Dec(readOk);
            Console.Write(" read_undef=");
            Console.Dec(readUndef);
            Console.Write(" write_ok=");
            Console.Dec(writeOk);
            Console.Write(" write_undef=");
            Console.Dec(writeUndef);
            Console.Write(" other_exceptions=");
            Console.Dec(other);
            Console.Write(" impdef_read=");
            Console.Dec(impdef);
            Console.Write(" wrong=");
            Console.Dec(wrong);
            Console.Put('\n');
        }

        // The first few answers the architecture does not allow are named.
        private static void Wrong(ref ulong wrong, ulong index, string access, int kind)
        {
            if (wrong++ >= 8) return;
            Console.Write("regfuzz: ");
            Console.Write(access);
            Console.Write(" of S3_");
            Console.Dec(index >> 11);
            Console.Write("_C");
            Console.Dec((index >> 7) & 15);
            Console.Write("_C");
            Console.Dec((index >> 3) & 15);
            Console.Write("_");
            Console.Dec(index & 7);
            Console.Line(kind == 0 ? " completed" : kind == 1 ? " was undefined" : " took another exception");
        }

        // 0: completed, 1: undefined instruction, 2: any other exception.
        private static int Outcome()
        {
            if (Traps.Taken == 0) return 0;
            Traps.Armed = false;
            return ((Traps.LastEsr >> 26) & 0x3f) == 0 ? 1 : 2;
        }

        // role=actlr: ACTLR_EL1, the CPU's implementation-defined auxiliary
        // control, is answered by the hypervisor (HCR_EL2.TACR): it reads
        // zero, before and after the guest writes all ones to it.
        public static void AuxiliaryControl()
        {
            ulong actlr = Index(0, 1, 0, 1), seen = 0;
            const int Rounds = 100;
            for (int i = 0; i < Rounds; i++)
            {
                seen |= Read(actlr);
                Write(actlr, ~0UL);
            }
            seen |= Read(actlr);
            SelfTests.Verdict("actlr", seen == 0);
            Console.Write("accesses=");
            Console.Dec(2 * Rounds + 1);
            Console.Write(" seen=");
            Console.Hex(seen);
            Console.Put('\n');
        }

        // role=regkeep: its own values in the EL1 registers a guest writes
        // freely (and in its virtual GIC CPU interface), then it yields until
        // it is the last VM running, checking after every switch that each
        // still reads what it read right after writing it.
        public static void Keep()
        {
            ulong* regs = stackalloc ulong[15];
            int n = 0;
            regs[n++] = Index(0, 13, 0, 1);   // CONTEXTIDR_EL1
            regs[n++] = Index(3, 13, 0, 2);   // TPIDR_EL0
            regs[n++] = Index(3, 13, 0, 3);   // TPIDRRO_EL0
            regs[n++] = Index(0, 5, 1, 0);    // AFSR0_EL1
            regs[n++] = Index(0, 5, 1, 1);    // AFSR1_EL1
            regs[n++] = Index(0, 5, 2, 0);    // ESR_EL1
            regs[n++] = Index(0, 6, 0, 0);    // FAR_EL1
            regs[n++] = Index(0, 7, 4, 0);    // PAR_EL1
            regs[n++] = Index(0, 10, 3, 0);   // AMAIR_EL1
            regs[n++] = Index(0, 14, 1, 0);   // CNTKCTL_EL1
            regs[n++] = Index(2, 0, 0, 0);    // CSSELR_EL1
            regs[n++] = Index(3, 14, 3, 2);   // CNTV_CVAL_EL0
            regs[n++] = Index(0, 4, 6, 0);    // ICC_PMR_EL1
            regs[n++] = Index(0, 12, 12, 3);  // ICC_BPR1_EL1
            regs[n++] = Index(0, 4, 1, 0);    // SP_EL0
            ulong* mine = stackalloc ulong[15];
            ulong seed = 0x0123_4567_89ab_cdef;
            for (int i = 0; i < n; i++)
            {
                ulong v = IsolationTests.Next(ref seed);
                if (regs[i] == Index(0, 4, 6, 0)) v = 0xf0;       // a priority mask
                if (regs[i] == Index(0, 12, 12, 3)) v = 3;        // a binary point
                if (regs[i] == Index(2, 0, 0, 0)) v = 2;          // a cache level
                if (regs[i] == Index(0, 14, 1, 0)) v &= 0x3;      // EL0 counter access only
                Write(regs[i], v);
                mine[i] = Read(regs[i]);
            }
            ulong rounds = 0, changed = 0;
            while (Hvc.Call(HypercallAbi.RunningVms).X1 > 1 && rounds < 1000000)
            {
                Cpu.Yield();
                rounds++;
                for (int i = 0; i < n; i++)
                {
                    if (Read(regs[i]) == mine[i]) continue;
                    if (changed++ == 0)
                    {
                        Console.Write("regkeep: register ");
                        Console.Hex(regs[i]);
                        Console.Write(" changed to ");
                        Console.Hex(Read(regs[i]));
                        Console.Put('\n');
                    }
                    mine[i] = Read(regs[i]);
                }
            }
            SelfTests.Verdict("regkeep", changed == 0 && rounds > 0);
            Console.Write("registers=");
            Console.Dec((ulong)n);
            Console.Write(" rounds=");
            Console.Dec(rounds);
            Console.Write(" changed=");
            Console.Dec(changed);
            Console.Put('\n');
        }
    }
}
