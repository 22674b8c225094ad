namespace Slub.XArray;

/// <summary>Array flags (<c>xa_flags</c>, minus lock flavours and memcg accounting, which have no meaning here).</summary>
[Flags]
public enum XaFlags
{
    /// <summary>A plain array: no ID allocation, all three marks free for use.</summary>
    None = 0,
    /// <summary><c>XA_FLAGS_TRACK_FREE</c>: mark 0 tracks free indices (internal to allocating arrays).</summary>
    TrackFree = 4,
    /// <summary><c>XA_FLAGS_ZERO_BUSY</c>: index 0 is never handed out by <see cref="XArray.TryAlloc"/>.</summary>
    ZeroBusy = 8,
    /// <summary><c>XA_FLAGS_ALLOC</c>: an allocating array handing out IDs from 0. Mark 0 is reserved.</summary>
    Alloc = TrackFree,
    /// <summary><c>XA_FLAGS_ALLOC1</c>: an allocating array handing out IDs from 1. Mark 0 is reserved.</summary>
    Alloc1 = TrackFree | ZeroBusy,
}

/// <summary>An ID range for allocation (<c>struct xa_limit</c>), both ends inclusive.</summary>
public readonly record struct XaLimit(uint Min, uint Max)
{
    /// <summary><c>xa_limit_32b</c>: [0, uint.MaxValue].</summary>
    public static XaLimit Limit32 => new(0, uint.MaxValue);
    /// <summary><c>xa_limit_31b</c>: [0, int.MaxValue].</summary>
    public static XaLimit Limit31 => new(0, int.MaxValue);
    /// <summary><c>xa_limit_16b</c>: [0, ushort.MaxValue].</summary>
    public static XaLimit Limit16 => new(0, ushort.MaxValue);
}
