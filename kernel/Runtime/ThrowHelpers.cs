namespace Internal.Runtime.CompilerHelpers
{
    // ILCompiler calls these where managed code would throw. There is no
    // unwinder here, so each one is a kernel panic that names what went wrong.
    internal static class ThrowHelpers
    {
        public static void ThrowIndexOutOfRangeException() => Hypervisor.Runtime.Fatal.Stop("index out of range");
        public static void ThrowNullReferenceException() => Hypervisor.Runtime.Fatal.Stop("null reference");
        public static void ThrowDivideByZeroException() => Hypervisor.Runtime.Fatal.Stop("divide by zero");
        public static void ThrowOverflowException() => Hypervisor.Runtime.Fatal.Stop("arithmetic overflow");
        public static void ThrowArgumentOutOfRangeException() => Hypervisor.Runtime.Fatal.Stop("argument out of range");
        public static void ThrowArgumentException() => Hypervisor.Runtime.Fatal.Stop("bad argument");
        public static void ThrowPlatformNotSupportedException() => Hypervisor.Runtime.Fatal.Stop("platform not supported");
        public static void ThrowNotImplementedException() => Hypervisor.Runtime.Fatal.Stop("not implemented");
        public static void ThrowInvalidProgramException() => Hypervisor.Runtime.Fatal.Stop("invalid program");
        public static void ThrowTypeLoadException() => Hypervisor.Runtime.Fatal.Stop("type load");
        public static void ThrowFeatureBodyRemoved() => Hypervisor.Runtime.Fatal.Stop("feature body removed");
        public static void ThrowInvalidCastException() => Hypervisor.Runtime.Fatal.Stop("invalid cast");
        public static void ThrowArrayTypeMismatchException() => Hypervisor.Runtime.Fatal.Stop("array type mismatch");
        public static void ThrowMissingMethodException() => Hypervisor.Runtime.Fatal.Stop("missing method");
        public static void ThrowMissingFieldException() => Hypervisor.Runtime.Fatal.Stop("missing field");
        public static void ThrowBadImageFormatException() => Hypervisor.Runtime.Fatal.Stop("bad image format");
    }
}
