namespace Hypervisor.Labs
{
    // The course's labs (docs/labs/) are cut from this tree: in the solution
    // a function a lab asks for sits between two marker lines,
    //     // LAB 1 BEGIN Stage2Table.MapAt | return Stage2Status.OutOfTables;
    //     ...the solution...
    //     // LAB 1 END
    // and `make student` (scripts/make-student) writes a student tree in
    // which the code between them is replaced by a call to Todo and the
    // placeholder after the bar. A hole left open is loud, never a hang:
    // the hypervisor prints `[hv] LAB 1 TODO Stage2Table.MapAt` and stops;
    // a host test fails with the same words.
    public static class Lab
    {
        public static void Todo(int lab, string function)
        {
#if HOST_TESTS
            throw new System.NotImplementedException("LAB " + lab + " TODO " + function);
#else
            Hypervisor.Console.Log.Write("[hv] LAB ");
            Hypervisor.Console.Log.Dec((ulong)lab);
            Hypervisor.Console.Log.Write(" TODO ");
            Hypervisor.Console.Log.Line(function);
            Hypervisor.Trap.Panic.Message("a lab's function is still a stub (docs/labs/)");
#endif
        }
    }
}
