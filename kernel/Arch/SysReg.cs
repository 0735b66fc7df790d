using System.Runtime;
using System.Runtime.CompilerServices;

namespace Hypervisor.Arch
{
    // The hardware seam: every system register the kernel touches, each a call
    // into a two-instruction function in boot/sysreg.S.
    public static class SysReg
    {
        [RuntimeImport("*", "read_currentel")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadCurrentEl();
        [RuntimeImport("*", "read_mpidr_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadMpidrEl1();
        [RuntimeImport("*", "read_midr_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadMidrEl1();
        [RuntimeImport("*", "read_id_aa64mmfr0_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadIdAa64Mmfr0El1();
        [RuntimeImport("*", "read_id_aa64mmfr1_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadIdAa64Mmfr1El1();
        [RuntimeImport("*", "read_id_aa64pfr0_el1")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadIdAa64Pfr0El1();
        [RuntimeImport("*", "read_cntfrq_el0")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadCntfrqEl0();
        [RuntimeImport("*", "read_cntpct_el0")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadCntpctEl0();
        [RuntimeImport("*", "read_sctlr_el2")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadSctlrEl2();
        [RuntimeImport("*", "read_tcr_el2")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadTcrEl2();
        [RuntimeImport("*", "read_hcr_el2")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadHcrEl2();
        [RuntimeImport("*", "write_hcr_el2")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteHcrEl2(ulong value);
        [RuntimeImport("*", "read_vtcr_el2")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadVtcrEl2();
        [RuntimeImport("*", "write_vtcr_el2")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteVtcrEl2(ulong value);
        [RuntimeImport("*", "read_vttbr_el2")][MethodImpl(MethodImplOptions.InternalCall)] public static extern ulong ReadVttbrEl2();
        [RuntimeImport("*", "write_vttbr_el2")][MethodImpl(MethodImplOptions.InternalCall)] public static extern void WriteVttbrEl2(ulong value);
    }

    public static class Cpu
    {
        [RuntimeImport("*", "smc_call")][MethodImpl(MethodImplOptions.InternalCall)]
        public static extern ulong SmcCall(ulong function, ulong arg1, ulong arg2, ulong arg3);

        [RuntimeImport("*", "cpu_wait_for_event")][MethodImpl(MethodImplOptions.InternalCall)]
        public static extern void WaitForEvent();

        // Executes UDF #0 (boot/fault.S): an instruction that is undefined everywhere.
        [RuntimeImport("*", "cpu_undefined_instruction")][MethodImpl(MethodImplOptions.InternalCall)]
        public static extern void UndefinedInstruction();

        // Exception level the kernel runs at, from CurrentEL[3:2].
        public static uint CurrentEl => (uint)(SysReg.ReadCurrentEl() >> 2) & 3;
    }
}
