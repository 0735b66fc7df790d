using Internal.Runtime;

namespace System.Runtime
{
    // Casts and type tests. The kernel uses only class hierarchies (abstract
    // base classes, no interface casts), so a cast walks the chain of base types:
    // MethodTable word 1 points to the parent type.
    internal static unsafe class TypeCast
    {
        private static MethodTable* ParentOf(MethodTable* type) => *(MethodTable**)((byte*)type + 8);

        private static bool IsSameOrDerived(MethodTable* type, MethodTable* target)
        {
            for (MethodTable* t = type; t != null; t = ParentOf(t))
                if (t == target) return true;
            return false;
        }

        private static MethodTable* TypeOf(object obj) => **(MethodTable***)&obj;

        [RuntimeExport("RhTypeCast_IsInstanceOfClass")]
        public static object IsInstanceOfClass(MethodTable* target, object obj)
        {
            if (obj == null || IsSameOrDerived(TypeOf(obj), target)) return obj;
            return null;
        }

        [RuntimeExport("RhTypeCast_CheckCastClass")]
        public static object CheckCastClass(MethodTable* target, object obj)
        {
            if (obj == null || IsSameOrDerived(TypeOf(obj), target)) return obj;
            Hypervisor.Runtime.Fatal.Stop("invalid cast");
            return null;
        }

        [RuntimeExport("RhTypeCast_CheckCastClassSpecial")]
        public static object CheckCastClassSpecial(MethodTable* target, object obj) => CheckCastClass(target, obj);

        [RuntimeExport("RhTypeCast_IsInstanceOfAny")]
        public static object IsInstanceOfAny(MethodTable* target, object obj) => IsInstanceOfClass(target, obj);

        [RuntimeExport("RhTypeCast_CheckCastAny")]
        public static object CheckCastAny(MethodTable* target, object obj) => CheckCastClass(target, obj);

        [RuntimeExport("RhTypeCast_IsInstanceOfInterface")]
        public static object IsInstanceOfInterface(MethodTable* target, object obj)
        {
            Hypervisor.Runtime.Fatal.Stop("interface casts are not supported");
            return null;
        }

        [RuntimeExport("RhTypeCast_CheckCastInterface")]
        public static object CheckCastInterface(MethodTable* target, object obj) => IsInstanceOfInterface(target, obj);

        // Storing into an object array: arrays of exact class types only.
        [RuntimeExport("RhpStelemRef")]
        public static void StelemRef(object[] array, nint index, object obj)
        {
            if ((nuint)index >= (nuint)array.Length) Internal.Runtime.CompilerHelpers.ThrowHelpers.ThrowIndexOutOfRangeException();
            ElementAt(array, index) = obj;
        }

        [RuntimeExport("RhpLdelemaRef")]
        public static ref object LdelemaRef(object[] array, nint index, MethodTable* elementType)
        {
            if ((nuint)index >= (nuint)array.Length) Internal.Runtime.CompilerHelpers.ThrowHelpers.ThrowIndexOutOfRangeException();
            return ref ElementAt(array, index);
        }

        // Element address without going through ldelema (which would call back here).
        private static ref object ElementAt(object[] array, nint index) =>
            ref System.Runtime.CompilerServices.Unsafe.Add(
                ref System.Runtime.CompilerServices.Unsafe.As<byte, object>(
                    ref System.Runtime.CompilerServices.Unsafe.As<RawArrayData>(array).Data), (int)index);

        [RuntimeExport("RhTypeCast_IsInstanceOfException")]
        public static bool IsInstanceOfException(MethodTable* target, object obj) => false;
    }
}
