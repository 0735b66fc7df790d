using System.Runtime;

namespace Guest
{
    // The frame guest/boot/vectors.s saves.
    public unsafe struct GuestFrame
    {
        public fixed ulong X[31];
        public ulong Elr, Spsr, Esr, Far;
    }

    // Exceptions the guest takes at EL1. A self-test that expects one arms
    // Expect(); the handler records it and steps over the faulting instruction.
    // Anything unexpected ends the guest with a FAIL line.
    public static unsafe class Traps
    {
        public static bool Armed;
        public static int Taken;
        public static ulong LastEsr, LastFar, LastElr, LastKind;

        public static void Expect() { Armed = true; Taken = 0; LastEsr = LastFar = LastElr = 0; }

        [RuntimeExport("guest_trap")]
        private static void OnTrap(GuestFrame* frame, ulong kind)
        {
            if (SmpTests.CatchSecondaryFault(frame)) return;
            if (!Armed)
            {
                Console.Write("TEST trap FAIL unexpected exception kind=");
                Console.Dec(kind);
                Console.Write(" esr=");
                Console.Hex(frame->Esr);
                Console.Write(" far=");
                Console.Hex(frame->Far);
                Console.Write(" elr=");
                Console.Hex(frame->Elr);
                Console.Put('\n');
                Program.PowerOff();
            }
            Armed = false;
            Taken++;
            LastEsr = frame->Esr;
            LastFar = frame->Far;
            LastElr = frame->Elr;
            LastKind = kind;
            frame->Elr += 4;
        }
    }
}
