namespace Hypervisor.Paging
{
    // What SCTLR_EL1 and TCR_EL1 may say while a shadow or direct VM has its
    // MMU on. In those two modes the MMU walks tables whose entries the
    // hypervisor wrote (shadow) or checked one by one (direct), over a stage 2
    // that maps host RAM one to one. That is safe only if the MMU reads each
    // entry exactly as the hypervisor wrote or checked it: same bytes, same
    // byte order, same format. Every field that changes how a walk reads an
    // entry is therefore decided here, in one place:
    //
    //   refused (the MSR gets an undefined-instruction exception):
    //     SCTLR_EL1.EE = 1   walks read big-endian: 0x0000_0000_4000_0003
    //                        checked little-endian becomes another descriptor
    //                        (a guest stored a "harmless" invalid entry whose
    //                        byte-swap is a table to a page it controls)
    //     SCTLR_EL1.C  = 0   walks are non-cacheable: the MMU reads DRAM, which
    //                        may still hold what the page held before the
    //                        hypervisor's (cached) writes reached it
    //     IRGNn/ORGNn = 0    the same, per half, through TCR_EL1
    //     SHn = 0 or 1       non-shareable (or reserved) walks: not coherent with
    //                        the hypervisor's inner-shareable writes
    //     TGn not 4 KiB      the tables are laid out, checked and shadowed for
    //                        the 4 KiB granule only
    //     TCR_EL1.DS = 1     52-bit addresses (FEAT_LPA2): bits 9:8 of every
    //                        entry become address bits 51:50 instead of SH
    //   allowed, because they change no table entry's meaning:
    //     SCTLR_EL1.E0E      EL0's data endianness; walks follow EE alone
    //     TBIn, TBIDn        which VA bits are ignored, not how entries are read
    //     HPDn               hierarchical permissions off: the hypervisor never
    //                        relies on APTable/XNTable, it checks every leaf
    //     IPS, AS, A1, TxSZ  address sizes and ASIDs (direct mode adds its own
    //                        TxSZ rule, shadow mode reads TxSZ to find levels)
    //   the mode's own business: HA/HD (direct refuses them, shadow strips
    //   them from the real TCR so the MMU never writes a shadow).
    //
    // A VM in stage-2 mode is not asked: its walks go through its own stage 2,
    // which only maps its own frames, whatever the MMU makes of an entry.
    public static class WalkRules
    {
        public const ulong SctlrM = 1, SctlrC = 1UL << 2, SctlrEe = 1UL << 25;
        public const ulong TcrEpd0 = 1UL << 7, TcrEpd1 = 1UL << 23, TcrDs = 1UL << 59;

        // Null when the MMU may walk with these settings, else why not.
        public static string Refusal(ulong sctlr, ulong tcr)
        {
            if ((sctlr & SctlrM) == 0) return null;   // no walks
            if ((sctlr & SctlrEe) != 0) return "SCTLR_EL1.EE=1 (big-endian table walks)";
            if ((sctlr & SctlrC) == 0) return "SCTLR_EL1.C=0 (non-cacheable table walks)";
            if ((tcr & TcrDs) != 0) return "TCR_EL1.DS=1 (the 52-bit descriptor format)";
            if ((tcr & TcrEpd0) == 0)
            {
                string half = HalfRefusal(tcr, 0);
                if (half != null) return half;
            }
            if ((tcr & TcrEpd1) == 0)
            {
                string half = HalfRefusal(tcr >> 16, 2);
                if (half != null) return half;
            }
            return null;
        }

        // One half's IRGN (bits 9:8), ORGN (11:10), SH (13:12) and TG
        // (15:14), the upper half's shifted down by 16 by the caller.
        private static string HalfRefusal(ulong fields, ulong fourKib)
        {
            ulong irgn = (fields >> 8) & 3, orgn = (fields >> 10) & 3, sh = (fields >> 12) & 3;
            if (irgn == 0 || orgn == 0) return "TCR_EL1 IRGN/ORGN=0 (non-cacheable table walks)";
            if (sh < 2) return "TCR_EL1 SH=0 (non-shareable table walks)";
            if (((fields >> 14) & 3) != fourKib) return "TCR_EL1 TG0/TG1 (only the 4 KiB granule)";
            return null;
        }
    }
}
