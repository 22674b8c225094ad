namespace Slub.XArray;

/// <summary>
/// Errors of XArray operations, the three the kernel's XArray produces. <c>Try*</c> methods return them;
/// the plain methods throw <see cref="XArrayException"/> carrying one.
/// </summary>
public enum XaError
{
    /// <summary>Success.</summary>
    None = 0,
    /// <summary><c>-EBUSY</c>: the index is occupied (insert), or no free index in the limit (alloc).</summary>
    Busy,
    /// <summary><c>-ENOMEM</c>: a node could not be allocated from the <c>xa_node</c> cache.</summary>
    NoMemory,
    /// <summary><c>-EINVAL</c>: an internal entry given to the normal API, a bad range, or alloc on a non-allocating array.</summary>
    Invalid,
}

/// <summary>Errno mapping, for the error-entry encoding.</summary>
public static class XaErrorExtensions
{
    /// <summary>The kernel errno of an error (EBUSY 16, ENOMEM 12, EINVAL 22; 0 for none).</summary>
    public static int ToErrno(this XaError e) => e switch
    {
        XaError.Busy => 16,
        XaError.NoMemory => 12,
        XaError.Invalid => 22,
        _ => 0,
    };
}

/// <summary>An XArray operation failed.</summary>
public sealed class XArrayException : Exception
{
    /// <summary>The error the operation failed with.</summary>
    public XaError Error { get; }

    /// <summary>Creates the exception.</summary>
    /// <param name="error">The error the operation failed with.</param>
    /// <param name="message">The error message.</param>
    public XArrayException(XaError error, string message) : base(message) => Error = error;

    /// <summary>Throws for an error; <paramref name="what"/> names the call and its index, range or limit (<c>Insert(42)</c>).</summary>
    [System.Diagnostics.CodeAnalysis.DoesNotReturn, System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    internal static void Throw(XaError e, string what) => throw new XArrayException(e, $"{what}: {Describe(e)}");

    /// <summary>As <see cref="Throw"/> for the id allocators, whose EBUSY means the limit has no free id.</summary>
    [System.Diagnostics.CodeAnalysis.DoesNotReturn, System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    internal static void ThrowAlloc(XaError e, string op, XaLimit limit) =>
        throw new XArrayException(e, $"{op}(ids {limit.Min}..{limit.Max}): {(e == XaError.Busy ? "no free id (EBUSY)" : Describe(e))}");

    internal static string Describe(XaError e) => e switch
    {
        XaError.Busy => "index busy (EBUSY)",
        XaError.NoMemory => "out of memory for xa_node (ENOMEM)",
        XaError.Invalid => "invalid argument or entry (EINVAL)",
        _ => "no error",
    };
}
