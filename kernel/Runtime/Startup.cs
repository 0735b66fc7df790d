namespace Hypervisor.Runtime
{
    // Static fields that hold object references (GC statics) live in heap
    // objects that the runtime must create before any C# touches them. ILCompiler
    // lists every module's ReadyToRun header in the __modules section; each
    // header names its GC-static region, a table of blocks to allocate.
    public static unsafe class Startup
    {
        private const uint ReadyToRunSignature = 0x00525452; // "RTR"
        private const int GCStaticRegionSection = 201;
        private const int EagerClassConstructorSection = 205;

        // Low bits of a block's type pointer: still to be allocated; has
        // preinitialised contents to copy in.
        private const long Uninitialized = 1;
        private const long HasPreinitializedData = 2;
        private const long FlagMask = 3;

        private struct ReadyToRunHeader
        {
            public uint Signature;
            public ushort MajorVersion;
            public ushort MinorVersion;
            public uint Flags;
            public ushort NumberOfSections;
            public byte EntrySize;
            public byte EntryType;
        }

        private struct ModuleInfoRow
        {
            public int SectionId;
            public int Flags;
            public byte* Start;
            public byte* End;
        }

        public static void InitializeModules(ulong modulesStart, ulong modulesEnd)
        {
            for (ulong* m = (ulong*)modulesStart; m < (ulong*)modulesEnd; m++)
            {
                if (*m == 0) continue;
                var header = (ReadyToRunHeader*)*m;
                if (header->Signature != ReadyToRunSignature) Fatal.Stop("bad ReadyToRun header in __modules");
                var rows = (ModuleInfoRow*)(header + 1);
                for (int i = 0; i < header->NumberOfSections; i++)
                {
                    if (rows[i].SectionId == GCStaticRegionSection)
                        InitializeStatics(rows[i].Start, rows[i].End);
                }
                for (int i = 0; i < header->NumberOfSections; i++)
                {
                    if (rows[i].SectionId == EagerClassConstructorSection)
                        RunEagerConstructors((int*)rows[i].Start, (int*)rows[i].End);
                }
            }
        }

        private static byte* ReadRelative(int* p) => (byte*)p + *p;

        // The region is a list of 32-bit self-relative pointers to blocks; each
        // block starts with a self-relative pointer to the statics type (plus the
        // flags above) and is overwritten with the address of the new object.
        private static void InitializeStatics(byte* start, byte* end)
        {
            for (int* entry = (int*)start; entry < (int*)end; entry++)
            {
                long* block = (long*)ReadRelative(entry);
                long typeAndFlags = (long)ReadRelative((int*)block);
                if ((typeAndFlags & Uninitialized) == 0) continue;

                var type = (Internal.Runtime.MethodTable*)(typeAndFlags & ~FlagMask);
                byte* obj = Heap.Allocate(type->BaseSize);
                *(Internal.Runtime.MethodTable**)obj = type;
                if ((typeAndFlags & HasPreinitializedData) != 0)
                {
                    byte* data = ReadRelative((int*)block + 1);
                    Memory.Copy(obj + 8, data, type->BaseSize - 8);
                }
                *block = (long)obj;
            }
        }

        private static void RunEagerConstructors(int* start, int* end)
        {
            for (int* p = start; p < end; p++)
                ((delegate*<void>)ReadRelative(p))();
        }
    }
}

namespace System.Runtime.CompilerServices
{
    // ILCompiler calls these before the first use of a type whose static
    // constructor it could not run at compile time.
    public struct StaticClassConstructionContext
    {
        public System.IntPtr CctorMethodAddress;
    }

    internal static unsafe class ClassConstructorRunner
    {
        private static object CheckStaticClassConstructionReturnGCStaticBase(StaticClassConstructionContext* context, object gcStaticBase)
        {
            EnsureClassConstructorRun(context);
            return gcStaticBase;
        }

        private static System.IntPtr CheckStaticClassConstructionReturnNonGCStaticBase(StaticClassConstructionContext* context, System.IntPtr nonGcStaticBase)
        {
            EnsureClassConstructorRun(context);
            return nonGcStaticBase;
        }

        // Single CPU at boot: run once, marking it done before the call so a
        // constructor that touches its own type does not recurse.
        private static void EnsureClassConstructorRun(StaticClassConstructionContext* context)
        {
            System.IntPtr cctor = context->CctorMethodAddress;
            if (*(long*)&cctor == 0) return;
            context->CctorMethodAddress = default;
            ((delegate*<void>)*(void**)&cctor)();
        }
    }
}
