using Hypervisor.Trap;

namespace Guest
{
    // Memory a VM was not given must stay out of its reach:
    //   remapballooned: the remap test service asked to map a page this VM
    //                   put in its balloon (its frame went back to the host);
    //   bootballoon:    a VM booted with boot_balloon touches every page it
    //                   has without ever inflating: once it owns what it was
    //                   given, further first touches get an abort.
    public static unsafe class BalloonDebts
    {
        public static void RemapBallooned()
        {
            PagePool.Init();
            if (!VirtioBalloonDriver.Probe(Program.Fdt.VirtioBase)) { SelfTests.Verdict("remap-ballooned", false); Console.Line("no device"); return; }
            uint* pfns = stackalloc uint[1];
            PagePool.TryTake(out pfns[0]);
            ulong page = (ulong)pfns[0] << 12;
            Cpu.Store64(page, 7);
            VirtioBalloonDriver.InflatePfns(pfns, 1);
            long refused = (long)Hvc.Call(HypercallAbi.TestRemap, page, 0x5a5a).X0;
            Traps.Expect();
            Cpu.Load64(page);
            bool stillGone = Traps.Taken == 1;
            Traps.Armed = false;
            VirtioBalloonDriver.DeflatePfns(pfns, 1);
            long allowed = (long)Hvc.Call(HypercallAbi.TestRemap, page, 0x5a5a).X0;
            bool refilled = Cpu.Load64(page) == 0x5a5a;
            SelfTests.Verdict("remap-ballooned", refused == HypercallAbi.Denied && stillGone && allowed == HypercallAbi.Ok && refilled);
            Console.Write(refused == HypercallAbi.Denied ? "ballooned=denied" : "ballooned=REMAPPED");
            Console.Write(stillGone ? " touch=abort" : " touch=MAPPED");
            Console.Line(allowed == HypercallAbi.Ok && refilled ? " deflated=remapped" : " deflated=REFUSED");
        }

        public static void BootBalloonTouch()
        {
            PagePool.Init();
            ulong touched = 0, refused = 0;
            for (int i = 0; i < PagePool.FreePages; i++)
            {
                ulong page = (ulong)PagePool.At(i) << 12;
                Traps.Expect();
                Cpu.Store64(page, 1);
                if (Traps.Taken != 0) refused++;
                else touched++;
            }
            Traps.Armed = false;
            // Remapping an untouched page would be a frame too.
            long remap = refused == 0 ? HypercallAbi.Ok
                : (long)Hvc.Call(HypercallAbi.TestRemap, (ulong)PagePool.At(PagePool.FreePages - 1) << 12, 1).X0;
            SelfTests.Verdict("boot-balloon", refused > 0 && remap == HypercallAbi.Denied);
            Console.Write("touched=");
            Console.Dec(touched);
            Console.Write(" refused=");
            Console.Dec(refused);
            Console.Line(remap == HypercallAbi.Denied ? " remap=denied" : " remap=ALLOWED");
        }
    }
}
