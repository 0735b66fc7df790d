// The minimal corelib: only the types the C# compiler and ILCompiler insist on,
// plus the few the kernel uses. There is no garbage collector, no reflection and
// no exception unwinding underneath; see Runtime/README in the top-level README.
namespace System
{
    public class Object
    {
        // The first word of every object: a pointer to its MethodTable (the type).
#pragma warning disable 169
        private IntPtr _methodTable;
#pragma warning restore 169

        public Object() { }
        public virtual bool Equals(object o) => (object)this == o;
        public virtual int GetHashCode() => 0;
        public virtual string ToString() => null;
    }

    public abstract class ValueType { }
    public abstract class Enum : ValueType { }
    public struct Void { }

    public struct Nullable<T> where T : struct
    {
        private readonly bool _hasValue;
        private readonly T _value;
        public Nullable(T value) { _hasValue = true; _value = value; }
        public bool HasValue => _hasValue;
        public T Value => _value;
        public T GetValueOrDefault() => _value;
        public static implicit operator Nullable<T>(T value) => new Nullable<T>(value);
    }

    public abstract class Delegate { }
    public abstract class MulticastDelegate : Delegate { }

    public struct RuntimeTypeHandle { }
    public struct RuntimeMethodHandle { }
    public struct RuntimeFieldHandle { }

    public class Type { }
    internal sealed class RuntimeType : Type { }

    public interface IDisposable { void Dispose(); }
}
