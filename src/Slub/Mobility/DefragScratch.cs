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
/// Not thread-safe: used by the renting thread only.
/// </remarks>
internal sealed class DefragScratch
{
    private const int KeepCapacity = 4096;
    [ThreadStatic] private static DefragScratch? t_spare;

    public readonly List<Slab> Sources = new(), Empty = new(), Discard = new();
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

    public void Return()
    {
        Reset(Sources); Reset(Empty); Reset(Discard);
        t_spare = this;
    }

    private static void Reset(List<Slab> list)
    {
        list.Clear();   // drops the references, so a recycled buffer keeps no slab alive
        if (list.Capacity > KeepCapacity) list.Capacity = 0;
    }
}
