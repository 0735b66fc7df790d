namespace System
{
    public abstract class Attribute { }

    [Flags]
    public enum AttributeTargets
    {
        Assembly = 1, Module = 2, Class = 4, Struct = 8, Enum = 16, Constructor = 32,
        Method = 64, Property = 128, Field = 256, Event = 512, Interface = 1024,
        Parameter = 2048, Delegate = 4096, ReturnValue = 8192, GenericParameter = 16384,
        All = 32767,
    }

    [AttributeUsage(AttributeTargets.Class, Inherited = true)]
    public sealed class AttributeUsageAttribute : Attribute
    {
        public AttributeUsageAttribute(AttributeTargets validOn) { }
        public bool AllowMultiple { get; set; }
        public bool Inherited { get; set; }
    }

    public sealed class FlagsAttribute : Attribute { }
    public sealed class ParamArrayAttribute : Attribute { }
    public sealed class ObsoleteAttribute : Attribute { }
    public sealed class CLSCompliantAttribute : Attribute { public CLSCompliantAttribute(bool isCompliant) { } }
}

namespace System.Runtime
{
    // [RuntimeExport("name")]: ILCompiler emits the method under that symbol name
    // (assembly and the runtime's own helper calls reach C# this way).
    [AttributeUsage(AttributeTargets.Method)]
    public sealed class RuntimeExportAttribute : Attribute { public RuntimeExportAttribute(string entry) { } }

    // [RuntimeImport("*", "name")] on an extern method: a direct call to that symbol.
    [AttributeUsage(AttributeTargets.Method)]
    public sealed class RuntimeImportAttribute : Attribute
    {
        public RuntimeImportAttribute(string lib) { }
        public RuntimeImportAttribute(string lib, string entry) { }
    }
}

namespace System.Runtime.CompilerServices
{
    public sealed class IntrinsicAttribute : Attribute { }
    public sealed class IsVolatile { }
    public sealed class IsByRefLikeAttribute : Attribute { }
    public sealed class IsReadOnlyAttribute : Attribute { }
    public sealed class IsUnmanagedAttribute : Attribute { }
    public sealed class ExtensionAttribute : Attribute { }
    public sealed class CompilerGeneratedAttribute : Attribute { }
    public sealed class RefSafetyRulesAttribute : Attribute { public RefSafetyRulesAttribute(int version) { } }
    public sealed class ScopedRefAttribute : Attribute { }
    public sealed class UnscopedRefAttribute : Attribute { }
    public sealed class NullableAttribute : Attribute { public NullableAttribute(byte b) { } }
    public sealed class NullableContextAttribute : Attribute { public NullableContextAttribute(byte b) { } }
    public sealed class IndexerNameAttribute : Attribute { public IndexerNameAttribute(string name) { } }
    public sealed class UnsafeValueTypeAttribute : Attribute { }

    public sealed class FixedBufferAttribute : Attribute
    {
        public FixedBufferAttribute(Type elementType, int length) { }
    }

    [AttributeUsage(AttributeTargets.Struct)]
    public sealed class InlineArrayAttribute : Attribute { public InlineArrayAttribute(int length) { } }

    public enum MethodImplOptions
    {
        NoInlining = 0x0008, NoOptimization = 0x0040, AggressiveInlining = 0x0100,
        InternalCall = 0x1000,
    }

    [AttributeUsage(AttributeTargets.Method | AttributeTargets.Constructor)]
    public sealed class MethodImplAttribute : Attribute
    {
        public MethodImplAttribute(MethodImplOptions options) { }
    }

    // Roslyn checks these names before it allows ref fields and static abstracts.
    public static class RuntimeFeature
    {
        public const string ByRefFields = nameof(ByRefFields);
        public const string UnmanagedSignatureCallingConvention = nameof(UnmanagedSignatureCallingConvention);
        public const string NumericIntPtr = nameof(NumericIntPtr);
    }

    public static class RuntimeHelpers
    {
        // Where a string's characters start, relative to the object pointer.
        public static int OffsetToStringData => 12;
    }
}

namespace System.Runtime.InteropServices
{
    public enum LayoutKind { Sequential = 0, Explicit = 2, Auto = 3 }
    public enum CharSet { None = 1, Ansi = 2, Unicode = 3, Auto = 4 }
    public enum CallingConvention { Winapi = 1, Cdecl = 2, StdCall = 3 }

    public sealed class StructLayoutAttribute : Attribute
    {
        public StructLayoutAttribute(LayoutKind layoutKind) { }
        public int Pack;
        public int Size;
        public CharSet CharSet;
    }

    public sealed class FieldOffsetAttribute : Attribute { public FieldOffsetAttribute(int offset) { } }
    public sealed class InAttribute : Attribute { }
    public sealed class OutAttribute : Attribute { }
    public sealed class SuppressGCTransitionAttribute : Attribute { }

    public sealed class DllImportAttribute : Attribute
    {
        public DllImportAttribute(string dllName) { }
        public string EntryPoint;
        public CallingConvention CallingConvention;
    }

    public sealed class UnmanagedCallersOnlyAttribute : Attribute
    {
        public string EntryPoint;
    }
}

namespace System.Reflection
{
    public sealed class DefaultMemberAttribute : Attribute { public DefaultMemberAttribute(string memberName) { } }
}

namespace System.Runtime.InteropServices
{
    // Named by ILCompiler's type system; nothing here implements it.
    public interface IDynamicInterfaceCastable
    {
        RuntimeTypeHandle GetDynamicInterfaceImplementation(RuntimeTypeHandle interfaceType);
    }
}
