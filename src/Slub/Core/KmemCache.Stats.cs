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
            int slabs = 0, objects = 0;
            for (var p = c.Partial; p is not null; p = p.Next) { cpuSlabs[p.Node]++; slabs++; objects += p.Objects; }
            SpinLockWord.Exit(ref c.LockWord);
            if (slabs > 0) cpuPartial.Add(new CpuPartialStatistics(c.Cpu, slabs, objects));
        }
        var result = new NodeStatistics[nodes];
        for (int i = 0; i < nodes; i++)
        {
            var n = _nodes[i];
            long partial, inusePartial, freePartial, full;
            lock (n.ListLock)
            {
                partial = n.Partial.Count;
                full = n.Full.Count;
                inusePartial = 0; freePartial = 0;
                for (var s = n.Partial.Head; s is not null; s = s.Next)
                {
                    int inuse = Volatile.Read(ref s.Inuse);
                    inusePartial += inuse;
                    freePartial += s.Objects - inuse;
                }
            }
            long total = Volatile.Read(ref n.TotalObjects);
            result[i] = new NodeStatistics(i, Volatile.Read(ref n.NrSlabs), partial, cpuSlabs[i],
                total - freePartial, inusePartial, total, full);
        }
        return new CacheStatistics(Name, ObjectSize, SlabSize, ObjectsPerSlab, Order, result, cpuPartial);
    }

    /// <summary>
    /// <c>kmem_cache_shrink</c>: flush every CPU, free every empty slab and order each partial list fullest
    /// first. For a cache with mobility this then defragments every node unconditionally (ratio 100, as
    /// the series does). Returns the partial slabs left. Thread-safe.
    /// </summary>
    public long Shrink()
    {
        FlushAll();
        if (Mobility is not null)
        {
            long left = 0;
            for (int n = 0; n < _nodes.Length; n++) left += DefragNode(n, n, 100, DefragPolicy.FillFullestFirst, shrinking: true);
            return left;
        }
        return DiscardEmptyAndSort();
    }

    /// <summary>Frees empty partial slabs (ignoring min_partial) and sorts each partial list by objects in use, fullest first.</summary>
    internal long DiscardEmptyAndSort()
    {
        long left = 0;
        foreach (var n in _nodes)
        {
            var empty = new List<Slab>();
            lock (n.ListLock)
            {
                var slabs = new List<Slab>((int)n.Partial.Count);
                for (var s = n.Partial.Head; s is not null; s = s.Next) slabs.Add(s);
                foreach (var s in slabs) n.Partial.Remove(s);
                // Stable sort by free slots, fewest first, so allocation fills the fullest slabs and
                // sparse ones get the chance to empty.
                var ordered = slabs.OrderBy(s => s.Objects - Volatile.Read(ref s.Inuse)).ToList();
                foreach (var s in ordered)
                {
                    SpinLockWord.Enter(ref s.LockWord);
                    if (s.Inuse == 0) { s.List = SlabList.None; empty.Add(s); }
                    else n.Partial.AddTail(s);
                    SpinLockWord.Exit(ref s.LockWord);
                }
                left += n.Partial.Count;
            }
            foreach (var s in empty) DiscardSlab(s);
        }
        return left;
    }

    /// <summary>Objects currently allocated (what the kernel's <c>objects</c> shows after a flush).</summary>
    public long CountObjects() => GetStatistics().Objects;

    /// <summary>The number of objects in use in each slab, node by node (partial then full slabs), after flushing the CPUs. For occupancy maps.</summary>
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
