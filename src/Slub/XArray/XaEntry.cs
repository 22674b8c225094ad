using System.Runtime.CompilerServices;

namespace Slub.XArray;

/// <summary>
/// One XArray entry: a 64-bit word encoded as in Linux (the bottom two bits tell the kind).
/// </summary>
/// <remarks>
/// <list type="table">
/// <item><term><c>…00</c></term><description>a <b>pointer</b> (4-byte aligned, opaque to the array); 0 is <see cref="Null"/>.</description></item>
/// <item><term><c>…x1</c></term><description>a <b>value</b> entry: <c>(v &lt;&lt; 1) | 1</c> for v in 0..<see cref="long.MaxValue"/>.</description></item>
/// <item><term><c>…10</c></term><description>an <b>internal</b> entry <c>(v &lt;&lt; 2) | 2</c>: sibling (v 0..62), retry (256), zero/reserved (257),
/// node pointers (address | 2, above 4096) and errors (−errno). Only <see cref="Zero"/> may be stored through the
/// normal API; the others are produced by the array itself and are visible only through <see cref="XaState"/>.</description></item>
/// </list>
/// <para>An immutable value: every member is thread-safe.</para>
/// </remarks>
public readonly struct XaEntry : IEquatable<XaEntry>
{
    /// <summary>The raw encoded word.</summary>
    public readonly ulong Raw;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal XaEntry(ulong raw) => Raw = raw;

    /// <summary>Nothing stored.</summary>
    public static XaEntry Null => default;

    /// <summary>The reserved entry (<c>XA_ZERO_ENTRY</c>): occupies an index but reads as <see cref="Null"/> through the normal API.</summary>
    public static XaEntry Zero => new(XaCodec.ZeroEntry);

    /// <summary>The retry entry (<c>XA_RETRY_ENTRY</c>) readers find in nodes being freed or moved.</summary>
    public static XaEntry Retry => new(XaCodec.RetryEntry);

    /// <summary>A value entry (<c>xa_mk_value</c>).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="value"/> exceeds <see cref="long.MaxValue"/>.</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static XaEntry FromValue(ulong value)
    {
        if (value > long.MaxValue) ThrowValueRange(value);
        return new((value << 1) | 1);
    }

    /// <summary>A pointer entry. 0 gives <see cref="Null"/>.</summary>
    /// <exception cref="ArgumentException"><paramref name="pointer"/> is not 4-byte aligned.</exception>
    public static XaEntry FromPointer(nint pointer)
    {
        if ((pointer & 3) != 0) throw new ArgumentException($"pointer 0x{pointer:x} is not 4-byte aligned", nameof(pointer));
        return new((ulong)pointer);
    }

    /// <summary>An entry from its raw encoding (for advanced users; any kind).</summary>
    public static XaEntry FromRaw(ulong raw) => new(raw);

    /// <summary>True for <see cref="Null"/>: nothing stored.</summary>
    public bool IsNull => Raw == 0;
    /// <summary>True for a value entry (bottom bit set, <c>xa_is_value</c>).</summary>
    public bool IsValue => (Raw & 1) != 0;
    /// <summary>True for a non-null pointer entry (bottom two bits clear).</summary>
    public bool IsPointer => (Raw & 3) == 0 && Raw != 0;
    /// <summary>True for any internal entry (<c>xa_is_internal</c>): zero, retry, sibling, node or error.</summary>
    public bool IsInternal => (Raw & 3) == 2;
    /// <summary>True for <see cref="Zero"/> (<c>xa_is_zero</c>).</summary>
    public bool IsZero => Raw == XaCodec.ZeroEntry;
    /// <summary>True for <see cref="Retry"/> (<c>xa_is_retry</c>).</summary>
    public bool IsRetry => Raw == XaCodec.RetryEntry;
    /// <summary>True for a sibling entry: a slot of a multi-index entry naming its canonical slot (<c>xa_is_sibling</c>).</summary>
    public bool IsSibling => XaCodec.IsSibling(Raw);
    /// <summary>True for an entry pointing at a child node (<c>xa_is_node</c>).</summary>
    public bool IsNode => XaCodec.IsNode(Raw);
    /// <summary>True for an error entry, a negative errno (<c>xa_is_err</c>).</summary>
    public bool IsError => XaCodec.IsError(Raw);

    /// <summary>The value of a value entry.</summary>
    /// <exception cref="InvalidOperationException">Not a value entry.</exception>
    public ulong Value
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get
        {
            if ((Raw & 1) == 0) ThrowNotValue();
            return Raw >> 1;
        }
    }

    /// <summary>The pointer of a pointer entry (0 for <see cref="Null"/>).</summary>
    public nint Pointer => IsPointer || Raw == 0 ? (nint)Raw : throw new InvalidOperationException($"{this} is not a pointer entry");

    /// <summary>True if both entries have the same raw word: same kind and content (pointers compare by address).</summary>
    public bool Equals(XaEntry other) => Raw == other.Raw;
    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is XaEntry e && e.Raw == Raw;
    /// <inheritdoc/>
    public override int GetHashCode() => Raw.GetHashCode();
    /// <summary>True if the raw words are equal (see <see cref="Equals(XaEntry)"/>).</summary>
    public static bool operator ==(XaEntry a, XaEntry b) => a.Raw == b.Raw;
    /// <summary>True if the raw words differ.</summary>
    public static bool operator !=(XaEntry a, XaEntry b) => a.Raw != b.Raw;

    /// <summary>The kind and content, e.g. <c>null</c>, <c>value(5)</c>, <c>ptr(0x…)</c>, <c>sibling(3)</c>, <c>node(0x…)</c>.</summary>
    public override string ToString() => Raw switch
    {
        0 => "null",
        XaCodec.ZeroEntry => "zero",
        XaCodec.RetryEntry => "retry",
        _ when IsValue => $"value({Raw >> 1})",
        _ when IsSibling => $"sibling({Raw >> 2})",
        _ when IsError => $"error({(long)Raw >> 2})",
        _ when IsNode => $"node(0x{Raw - 2:x})",
        _ when IsInternal => $"internal({Raw >> 2})",
        _ => $"ptr(0x{Raw:x})",
    };

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowValueRange(ulong value) => throw new ArgumentOutOfRangeException(nameof(value), value, "value entries hold 0..long.MaxValue");

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowNotValue() => throw new InvalidOperationException($"{this} is not a value entry");
}

/// <summary>Encoding helpers on raw entry words (the <c>xa_mk_*</c> / <c>xa_is_*</c> family).</summary>
internal static class XaCodec
{
    public const ulong RetryEntry = (256UL << 2) | 2;
    public const ulong ZeroEntry = (257UL << 2) | 2;
    public const int ChunkShift = 6, ChunkSize = 64, ChunkMask = 63;
    public const int MaxShift = 60;

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static bool IsInternal(ulong e) => (e & 3) == 2;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static ulong MkInternal(ulong v) => (v << 2) | 2;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static bool IsValue(ulong e) => (e & 1) != 0;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static ulong MkSibling(int offset) => MkInternal((ulong)offset);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static bool IsSibling(ulong e) => (e & 3) == 2 && e < MkInternal(63);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static int SiblingOffset(ulong e) => (int)(e >> 2);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static bool IsError(ulong e) => (e & 3) == 2 && e >= MkInternal(unchecked((ulong)-4095L));
    /// <summary>Node entries: internal, above 4096, and not an error (user-space addresses are far below the error range).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static bool IsNode(ulong e) => (e & 3) == 2 && e > 4096 && !IsError(e);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static ulong MkNode(nint node) => (ulong)node | 2;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static nint ToNode(ulong e) => (nint)(e - 2);
    /// <summary>
    /// <see cref="IsNode"/> in one test, for the lock-free fast paths: for a node entry (address | 2, above 4096,
    /// below 2^63) e − 4098 is a non-negative multiple of 4; for null, values, pointers, small internal entries
    /// (siblings, retry, zero) and errors it is negative or not a multiple of 4.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static bool IsNodeFast(ulong e) => ((e - 4098) & 0x8000_0000_0000_0003) == 0;
    /// <summary>Internal entries the normal API refuses to store (<c>xa_is_advanced</c>): siblings, retry, nodes, errors.</summary>
    public static bool IsAdvanced(ulong e) => (e & 3) == 2 && e != ZeroEntry;
    public static ulong MkError(XaError error) => MkInternal(unchecked((ulong)-(long)error.ToErrno()));
}
