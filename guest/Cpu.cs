using System.Runtime;
using System.Runtime.CompilerServices;

namespace Guest
{
    // System registers and special instructions (guest/boot/cpu.s).
    public static unsafe class Cpu
    {
        [RuntimeImport("*", "read_sctlr_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadSctlr();
        [RuntimeImport("*", "write_sctlr_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteSctlr(ulong v);
        [RuntimeImport("*", "read_tcr_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadTcr();
        [RuntimeImport("*", "write_tcr_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteTcr(ulong v);
        [RuntimeImport("*", "write_ttbr0_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteTtbr0(ulong v);
        [RuntimeImport("*", "write_mair_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteMair(ulong v);
        [RuntimeImport("*", "write_pmcr_el0")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WritePmcr(ulong v);
        [RuntimeImport("*", "write_pmcntenset_el0")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WritePmcntenset(ulong v);
        [RuntimeImport("*", "write_pmccfiltr_el0")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WritePmccfiltr(ulong v);
        [RuntimeImport("*", "read_pmccntr_el0")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadPmccntr();
        [RuntimeImport("*", "read_pmevcntr0_el0")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadPmevcntr0();
        [RuntimeImport("*", "write_pmevcntr0_el0")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WritePmevcntr0(ulong v);
        [RuntimeImport("*", "read_id_aa64dfr0_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadIdAa64Dfr0();
        [RuntimeImport("*", "read_id_aa64pfr0_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadIdAa64Pfr0();
        // The hypervisor's cycle counter (the ReadCycles hypercall, for a VM
        // with hv_counter=on): guests have no PMU of their own.
        public static ulong ReadCycles() => Hvc.Call(Hypervisor.Trap.HypercallAbi.ReadCycles).X1;
        [RuntimeImport("*", "read_cntfrq_el0")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadCounterFrequency();
        [RuntimeImport("*", "read_cntvct_el0")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadVirtualCount();
        [RuntimeImport("*", "write_cntv_ctl_el0")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteCntvCtl(ulong v);
        [RuntimeImport("*", "write_cntv_cval_el0")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteCntvCval(ulong v);
        [RuntimeImport("*", "write_icc_pmr_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteIccPmr(ulong v);
        [RuntimeImport("*", "write_icc_igrpen1_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteIccIgrpen1(ulong v);
        [RuntimeImport("*", "read_icc_iar1_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadIccIar1();
        [RuntimeImport("*", "write_icc_eoir1_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteIccEoir1(ulong v);
        [RuntimeImport("*", "cpu_wfi")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WaitForInterrupt();
        [RuntimeImport("*", "read_currentel")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadCurrentEl();
        [RuntimeImport("*", "hvc_call")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void HvcCall(ulong* args);
        [RuntimeImport("*", "smc_call")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void SmcCall(ulong* args);
        [RuntimeImport("*", "read_cntp_ctl_el0")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadCntpCtl();
        [RuntimeImport("*", "write_cntp_ctl_el0")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteCntpCtl(ulong v);
        [RuntimeImport("*", "write_icc_sgi1r_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteSgi1r(ulong v);
        [RuntimeImport("*", "write_icc_asgi1r_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteAsgi1r(ulong v);
        [RuntimeImport("*", "write_icc_sgi0r_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteSgi0r(ulong v);
        [RuntimeImport("*", "tlb_flush_va")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void TlbFlushVa(ulong va);
        [RuntimeImport("*", "read_ttbr0_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadTtbr0();
        [RuntimeImport("*", "tlb_flush_all")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void TlbFlushAll();
        [RuntimeImport("*", "barrier_full")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void Barrier();
        [RuntimeImport("*", "mmio_store_pair")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void StorePair32(ulong address, uint a, uint b);
        [RuntimeImport("*", "mmio_store_post_index")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong StorePostIndex32(ulong address, uint value);
        [RuntimeImport("*", "mmio_load_pair_pre_index")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong LoadPairPreIndex32(ulong addressPlus8);
        [RuntimeImport("*", "mmio_store_simd")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void StoreSimd128(ulong address, ulong value);
        [RuntimeImport("*", "fp_survives_exits")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong FpSurvivesExits(ulong uart);
        // Lets other VMs run (the Yield hypercall): this guest polls, and takes
        // no interrupts, so WFI would leave it waiting.
        public static void Yield() => Hvc.Call(Hypervisor.Trap.HypercallAbi.Yield);
        [RuntimeImport("*", "cpu_undefined")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void Undefined();
        [RuntimeImport("*", "write_vbar_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteVbar(ulong v);
        [RuntimeImport("*", "fp_survives_switches")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong FpSurvivesSwitches(ulong seed, ulong rounds);
        [RuntimeImport("*", "load64")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong Load64(ulong address);
        [RuntimeImport("*", "load32")][MethodImpl(MethodImplOptions.InternalCall)] public static extern uint Load32(ulong address);
        [RuntimeImport("*", "store64")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void Store64(ulong address, ulong value);
    }

    // A hypercall's four argument/result registers.
    public unsafe struct HvcArgs
    {
        public ulong X0, X1, X2, X3;
    }

    public static unsafe class Hvc
    {
        public static HvcArgs Call(ulong function, ulong a1 = 0, ulong a2 = 0, ulong a3 = 0)
        {
            HvcArgs r;
            r.X0 = function; r.X1 = a1; r.X2 = a2; r.X3 = a3;
            Cpu.HvcCall(&r.X0);
            return r;
        }

        public static HvcArgs Smc(ulong function, ulong a1 = 0, ulong a2 = 0, ulong a3 = 0)
        {
            HvcArgs r;
            r.X0 = function; r.X1 = a1; r.X2 = a2; r.X3 = a3;
            Cpu.SmcCall(&r.X0);
            return r;
        }

        public static ulong Counter(ulong id) => Call(Hypervisor.Trap.HypercallAbi.ReadCounter, id).X1;
    }
}
