namespace Slub;

/// <summary>
/// The buffers one defrag run needs (source and empty slab lists, the object vector and the results the
/// migrate callback fills), kept per thread and reused, so a background step allocates no managed memory:
/// it runs beside allocating threads, and any garbage it made would start collections that pause them.
/// </summary>
/// <remarks>
/// One spare per thread. <see cref="Rent"/> takes it (a nested run — a callback that defragments another
/// cache — finds none and gets a fresh one) and <see cref="Return"/> puts it back. Lists grown past
/// <see cref="KeepCapacity"/> by a one-off shrink are dropped rather than kept for the thread's lifetime.
/// Below that they are kept: a shrink of a cache with thousands of partial slabs grows its source and discard
/// lists to that size every time, and half a megabyte of fresh lists per shrink made the gen0 collections
/// that then fell inside later shrinks (measured: one shrink in 19 took 70 ns per moved object instead of 30).
/// Not thread-safe: used by the renting thread only.
/// </remarks>
internal sealed class DefragScratch
{
    /// <summary>Entries a kept list may hold: 32,768 slabs (256 KiB a list), the partial slabs of a 128 MiB cache of order-0 slabs.</summary>
    private const int KeepCapacity = 1 << 15;
    [ThreadStatic] private static DefragScratch? t_spare;

    public readonly List<Slab> Sources = new(), Empty = new(), Discard = new();
    /// <summary>The address of each of <see cref="Sources"/> when <see cref="AddSource"/> added it (the key <see cref="SlabAddressOrder"/> sorts by).</summary>
    public readonly List<nint> SourceAddresses = new();

    /// <summary>The most objects any of <see cref="Sources"/> holds (the object vector's length).</summary>
    public int MaxSourceObjects;

    /// <summary>Adds a chosen source, recording its address and size while its descriptor is at hand (slab lock held).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]   // per source chosen: see KmemCache.DefragNode
    public void AddSource(Slab s)
    {
        Sources.Add(s);
        SourceAddresses.Add(s.Address);
        if (s.Objects > MaxSourceObjects) MaxSourceObjects = s.Objects;
    }
    public nint[] Vector = [];
    public MigrateResult[] Results = [];

    public static DefragScratch Rent()
    {
        var s = t_spare ?? new DefragScratch();
        t_spare = null;
        return s;
    }

    /// <summary>Makes <see cref="Vector"/> and <see cref="Results"/> hold at least <paramref name="objects"/> entries.</summary>
    public void EnsureObjects(int objects)
    {
        if (Vector.Length >= objects) return;
        Vector = new nint[objects];
        Results = new MigrateResult[objects];
    }

    private bool[] _emptied = [];
    private int[] _order = [];

    /// <summary>A buffer of <paramref name="sources"/> positions: the order in which the run empties its sources.</summary>
    public Span<int> SourceOrder(int sources)
    {
        if (_order.Length < sources) _order = new int[Math.Max(sources, 2 * _order.Length)];
        return _order.AsSpan(0, sources);
    }

    /// <summary>A flag per source, by its position in <see cref="Sources"/> (cleared): did its migration leave it an emptied source (see KmemCache.PutBackIsolated)?</summary>
    public Span<bool> EmptiedFlags(int sources)
    {
        if (_emptied.Length < sources) _emptied = new bool[Math.Max(sources, 2 * _emptied.Length)];
        var flags = _emptied.AsSpan(0, sources);
        flags.Clear();
        return flags;
    }

    public void Return()
    {
        Reset(Sources); Reset(Empty); Reset(Discard);
        SourceAddresses.Clear();
        MaxSourceObjects = 0;
        if (SourceAddresses.Capacity > KeepCapacity) SourceAddresses.Capacity = 0;
        if (_emptied.Length > KeepCapacity) _emptied = [];
        if (_order.Length > KeepCapacity) _order = [];
        t_spare = this;
    }

    private static void Reset(List<Slab> list)
    {
        list.Clear();   // drops the references, so a recycled buffer keeps no slab alive
        if (list.Capacity > KeepCapacity) list.Capacity = 0;
    }
}
