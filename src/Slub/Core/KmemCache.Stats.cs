namespace Slub;

// Statistics, shrink and the partial-list order.
public sealed partial class KmemCache
{
    internal readonly CacheEventCounters Stats = new();

    /// <summary>Slow-path event counters (approximate).</summary>
    public CacheEventCounters Events => Stats;

    /// <summary>Counts as /sys/kernel/slab computes them. Thread-safe; a consistent snapshot per node list, not across the whole cache.</summary>
    public CacheStatistics GetStatistics()
    {
        int nodes = _nodes.Length;
        var cpuSlabs = new long[nodes];
        var cpuPartial = new List<CpuPartialStatistics>();
        foreach (var c in _cpus)
        {
            SpinLockWord.Enter(ref c.LockWord);
            if (c.Slab is { } s) cpuSlabs[s.Node]++;
            int slabs = 0, objects = 0, freeAtJoin = 0;
            for (var p = c.Partial; p is not null; p = p.Next) { cpuSlabs[p.Node]++; slabs++; objects += p.Objects; freeAtJoin += p.CpuPartialFree; }
            SpinLockWord.Exit(ref c.LockWord);
            if (slabs > 0) cpuPartial.Add(new CpuPartialStatistics(c.Cpu, slabs, objects, freeAtJoin));
        }
        var result = new NodeStatistics[nodes];
        for (int i = 0; i < nodes; i++)
        {
            // The node's running counters (see KmemCacheNode), not a walk of the partial list: O(1) and no
            // list lock, so reading statistics never makes an allocating thread wait.
            var n = _nodes[i];
            long partial = Volatile.Read(ref n.Partial.Count);
            long full = Volatile.Read(ref n.Full.Count);
            long freePartial = Volatile.Read(ref n.PartialFree);
            long inusePartial = Volatile.Read(ref n.PartialCapacity) - freePartial;
            long total = Volatile.Read(ref n.TotalObjects);
            result[i] = new NodeStatistics(i, Volatile.Read(ref n.NrSlabs), partial, cpuSlabs[i],
                total - freePartial, inusePartial, total, full);
        }
        return new CacheStatistics(Name, ObjectSize, SlabSize, ObjectsPerSlab, Order, result, cpuPartial);
    }

    /// <summary>
    /// <c>kmem_cache_shrink</c>: flush every CPU, free every empty slab and promote the slabs with at most 32 free
    /// objects to the head of each partial list, fullest first (mainline's <c>SHRINK_PROMOTE_MAX</c>). For a cache with mobility this then defragments every node unconditionally (ratio 100, as
    /// the series does). Returns the partial slabs left. Thread-safe, also against <see cref="SlabAllocator.DestroyCache"/> on another thread.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The cache is destroyed or its allocator disposed.</exception>
    public long Shrink()
    {
        _allocator.ThrowIfDisposed(Name);
        using var run = EnterDefragRun();   // throws once the cache is destroyed; a concurrent destroy waits for it
        FlushAll();
        if (Mobility is not null)
        {
            long left = 0;
            for (int n = 0; n < _nodes.Length; n++) left += DefragNode(n, n, 100, DefragPolicy.FillFullestFirst, shrinking: true);
            return left;
        }
        return DiscardEmptyAndSort();
    }

    /// <summary>Slabs with at most this many free objects are promoted to the head of the partial list by a shrink (the kernel's <c>SHRINK_PROMOTE_MAX</c>).</summary>
    internal const int ShrinkPromoteMax = 32;

    /// <summary>
    /// Frees empty partial slabs (ignoring min_partial) and reorders each partial list as mainline
    /// <c>__kmem_cache_shrink</c> does: slabs with 1..<see cref="ShrinkPromoteMax"/> free objects go to the head,
    /// fewest free first (within one count, in the reverse of their order on the list: the kernel moves each to the
    /// front of its bucket), and the sparser slabs follow in the order they had. (The SMO series dropped this
    /// promotion for every cache; for caches without mobility the library keeps mainline's.)
    /// </summary>
    internal long DiscardEmptyAndSort()
    {
        long left = 0;
        foreach (var n in _nodes)
        {
            var empty = new List<Slab>();
            lock (n.ListLock)
            {
                var promote = new List<Slab>[ShrinkPromoteMax];
                var rest = new List<Slab>((int)n.Partial.Count);
                for (var s = n.Partial.Head; s is not null; s = s.Next)
                {
                    int free = s.Objects - Volatile.Read(ref s.Inuse);   // read once: a free may change it meanwhile
                    if (free >= 1 && free <= ShrinkPromoteMax) (promote[free - 1] ??= new List<Slab>()).Add(s);
                    else rest.Add(s);
                }
                n.Partial.Clear();   // relinked below; the slabs stay members (and counted) unless they leave
                foreach (var bucket in promote)
                {
                    if (bucket is null) continue;
                    for (int i = bucket.Count - 1; i >= 0; i--) Relink(n, bucket[i], empty);
                }
                foreach (var s in rest) Relink(n, s, empty);
                left += n.Partial.Count;
            }
            foreach (var s in empty) DiscardSlab(s);
        }
        return left;
    }

    // One slab back onto its node's partial list (at the tail, in the order the caller decided), or onto
    // empty if it holds no object. List lock held.
    private static void Relink(KmemCacheNode n, Slab s, List<Slab> empty)
    {
        SpinLockWord.Enter(ref s.LockWord);
        if (s.Inuse == 0) { n.LeavePartial(s); empty.Add(s); }
        else n.Partial.AddTail(s);
        SpinLockWord.Exit(ref s.LockWord);
    }

    /// <summary>
    /// Fragmentation figures from the running counters alone, for the background defragmenter: slabs, object
    /// capacity, and free objects — free slots on node partial slabs plus objects parked in thread magazines
    /// (free as far as the program is concerned; <see cref="GetStatistics"/> counts them as in use until a
    /// flush, as sysfs does). O(nodes + magazines); takes no list, CPU or slab lock. Thread-safe.
    /// </summary>
    internal (long Slabs, long TotalObjects, long FreeObjects) ReadFragmentation()
    {
        long slabs = 0, total = 0, free = MagazineObjects();
        foreach (var n in _nodes)
        {
            slabs += Volatile.Read(ref n.NrSlabs);
            total += Volatile.Read(ref n.TotalObjects);
            free += Volatile.Read(ref n.PartialFree);
        }
        return (slabs, total, Math.Min(free, total));
    }

    /// <summary>
    /// Walks node <paramref name="node"/>'s partial list under its list lock and recounts what the running
    /// counters hold, checking the list's links and bucket order as well. For tests: exact only while no
    /// other thread frees into the cache. Returns (slabs, free slots, slots, problem or null).
    /// </summary>
    internal (long Slabs, long Free, long Capacity, string? Problem) RecountPartial(int node)
    {
        var n = _nodes[node];
        lock (n.ListLock)
        {
            long slabs = 0, free = 0, capacity = 0;
            string? problem = n.Partial.CheckInvariants();
            for (var s = n.Partial.Head; s is not null; s = s.Next)
            {
                slabs++;
                free += s.Objects - Volatile.Read(ref s.Inuse);
                capacity += s.Objects;
                if (s.List != SlabList.Partial) problem ??= $"{s} is linked on the partial list but marked {s.List}";
                if (n.Partial.BucketOf(s.Objects - s.Inuse, s.Objects) != s.Bucket) problem ??= $"{s} is in bucket {s.Bucket} of {n.Partial.Buckets}, its fill says {n.Partial.BucketOf(s.Objects - s.Inuse, s.Objects)}";
            }
            return (slabs, free, capacity, problem);
        }
    }

    /// <summary>Objects currently allocated (what the kernel's <c>objects</c> shows after a flush). Thread-safe (a snapshot).</summary>
    public long CountObjects() => GetStatistics().Objects;

    /// <summary>The number of objects in use in each slab, node by node (partial then full slabs), after flushing the CPUs. For occupancy maps. Thread-safe (a snapshot).</summary>
    public IReadOnlyList<(int Node, int Inuse, int Objects)> SlabOccupancy()
    {
        FlushAll();
        var list = new List<(int, int, int)>();
        foreach (var n in _nodes)
        {
            lock (n.ListLock)
            {
                for (var s = n.Partial.Head; s is not null; s = s.Next) list.Add((n.Node, Volatile.Read(ref s.Inuse), s.Objects));
                for (var s = n.Full.Head; s is not null; s = s.Next) list.Add((n.Node, s.Objects, s.Objects));
            }
            // Untracked full slabs are on no list; they still count.
            long tracked = list.Count(t => t.Item1 == n.Node);
            long untracked = Volatile.Read(ref n.NrSlabs) - tracked - IsolatedSlabs(n.Node);
            for (long i = 0; i < untracked; i++) list.Add((n.Node, ObjectsPerSlab, ObjectsPerSlab));
        }
        return list;
    }
}
