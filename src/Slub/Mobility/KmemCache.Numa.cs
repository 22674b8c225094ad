using System.Diagnostics;

namespace Slub;

// Moving objects between NUMA nodes and balancing a cache across nodes (the series' patches 14 and 15),
// with the validation and the balance algorithm the series lacked.
public sealed unsafe partial class KmemCache
{
    /// <summary>
    /// Moves every object on node <paramref name="from"/> to node <paramref name="to"/> (the <c>move</c>
    /// attribute's <c>N&lt;from&gt; N&lt;to&gt;</c>). With <paramref name="from"/> == <paramref name="to"/> it
    /// compacts the node instead: like shrink, restricted to that node. Objects the callback leaves stay
    /// where they are. Returns the objects still on <paramref name="from"/>. Thread-safe.
    /// </summary>
    /// <exception cref="InvalidOperationException">The cache has no mobility.</exception>
    public long MoveNode(int from, int to)
    {
        RequireMobility();
        CheckNode(from);
        CheckNode(to);
        _allocator.ThrowIfDisposed(Name);
        using var run = EnterDefragRun();
        FlushAll();
        if (from == to)
        {
            DefragNode(from, from, 100, DefragPolicy.FillFullestFirst, shrinking: true);
        }
        else
        {
            MoveObjects(from, to, long.MaxValue);
        }
        FlushAll();
        return GetStatistics().Nodes[from].Objects;
    }

    /// <summary>Moves every object of every other node to <paramref name="node"/> (the <c>move</c> attribute's <c>N&lt;node&gt;</c>). Returns objects left elsewhere. Thread-safe, like <see cref="MoveNode"/>.</summary>
    public long MoveToNode(int node)
    {
        RequireMobility();
        CheckNode(node);
        _allocator.ThrowIfDisposed(Name);
        using var run = EnterDefragRun();
        FlushAll();
        for (int n = 0; n < _nodes.Length; n++)
            if (n != node) MoveObjects(n, node, long.MaxValue);
        FlushAll();
        var st = GetStatistics();
        return st.Objects - st.Nodes[node].Objects;
    }

    /// <summary>
    /// Balances the cache's objects across nodes (the <c>balance</c> attribute). Unlike the series, which
    /// moved everything to node 0 and then dealt out full slabs, this moves only each node's surplus over
    /// the mean straight to nodes below it, so the fewest objects cross nodes, and it may move part of a
    /// slab, so per-node counts end within one slab's worth of objects. Thread-safe.
    /// </summary>
    public void Balance()
    {
        RequireMobility();
        if (_nodes.Length == 1) return;
        _allocator.ThrowIfDisposed(Name);
        using var run = EnterDefragRun();
        FlushAll();
        var counts = GetStatistics().Nodes.Select(n => n.Objects).ToArray();
        long total = counts.Sum();
        long mean = total / counts.Length;
        long remainder = total % counts.Length;
        // Target per node: the mean, plus one for the first `remainder` nodes that already hold the most.
        var order = Enumerable.Range(0, counts.Length).OrderByDescending(n => counts[n]).ToArray();
        var target = new long[counts.Length];
        for (int i = 0; i < order.Length; i++) target[order[i]] = mean + (i < remainder ? 1 : 0);
        var surplus = Enumerable.Range(0, counts.Length).Where(n => counts[n] > target[n]).ToList();
        var deficit = Enumerable.Range(0, counts.Length).Where(n => counts[n] < target[n]).ToList();
        foreach (int s in surplus)
        {
            foreach (int d in deficit)
            {
                long give = Math.Min(counts[s] - target[s], target[d] - counts[d]);
                if (give <= 0) continue;
                long moved = MoveObjects(s, d, give);
                counts[s] -= moved;
                counts[d] += moved;
            }
        }
        FlushAll();
    }

    /// <summary>
    /// Isolates slabs of <paramref name="from"/> (partial slabs sparsest first, then full ones: from the full
    /// list when the cache keeps one, else found by <see cref="IsolateUntrackedFull"/>) and offers
    /// their objects to migrate with <paramref name="to"/> as the target, until <paramref name="limit"/>
    /// objects were offered. Returns the objects that left the node (moved or freed).
    /// </summary>
    private long MoveObjects(int from, int to, long limit)
    {
        var n = _nodes[from];
        var mobility = Mobility!;
        var scratch = DefragScratch.Rent();
        long started = Stopwatch.GetTimestamp();
        try { return MoveObjects(n, from, to, limit, mobility, scratch); }
        finally
        {
            scratch.Return();
            // A move is a pass of the same core as a per-node defrag: counted (and timed) the same way.
            Interlocked.Increment(ref Defrag._runs);
            Interlocked.Add(ref Defrag._ticks, Stopwatch.GetElapsedTime(started).Ticks);
        }
    }

    private long MoveObjects(KmemCacheNode n, int from, int to, long limit, Mobility mobility, DefragScratch scratch)
    {
        var sources = scratch.Sources;
        var empty = scratch.Empty;
        long offered = 0;
        lock (n.ListLock)
        {
            var candidates = new List<Slab>();
            for (var s = n.Partial.Head; s is not null; s = s.Next) candidates.Add(s);
            candidates.Sort((a, b) => Volatile.Read(ref a.Inuse).CompareTo(Volatile.Read(ref b.Inuse)));
            for (var s = n.Full.Head; s is not null; s = s.Next) candidates.Add(s);
            foreach (var s in candidates)
            {
                if (offered >= limit) break;
                if (!SpinLockWord.TryEnter(ref s.LockWord)) continue;
                RemoveFromNodeList(n, s);
                if (s.Inuse == 0) { empty.Add(s); SpinLockWord.Exit(ref s.LockWord); continue; }
                s.Frozen = true;
                s.List = SlabList.Isolated;
                offered += s.Inuse;
                sources.Add(s);
                SpinLockWord.Exit(ref s.LockWord);
            }
            if (sources.Count > 0) Interlocked.Add(ref _isolated![from], sources.Count);
        }
        if (!_trackFull && offered < limit)
        {
            int tracked = sources.Count;
            IsolateUntrackedFull(from, sources, ref offered, limit);
            if (sources.Count > tracked) Interlocked.Add(ref _isolated![from], sources.Count - tracked);
        }
        DiscardSlabs(empty);
        Interlocked.Add(ref Defrag._slabsFreed, empty.Count);
        if (sources.Count == 0) return 0;
        long before = sources.Sum(s => (long)Volatile.Read(ref s.Inuse));
        scratch.EnsureObjects(sources.Max(s => s.Objects));
        var vector = scratch.Vector;
        var results = scratch.Results;
        long budget = limit;
        Exception? failure = null;
        var ctx = MigrationContext.Enter(this, to);
        try
        {
            foreach (var s in sources)
            {
                if (budget <= 0) break;
                budget -= MoveSlab(s, ctx, vector, results, to, mobility, out _, (int)Math.Min(budget, int.MaxValue));
            }
        }
        catch (DefragmentationException e) { failure = e; Interlocked.Increment(ref Defrag._failures); }
        finally
        {
            EndMigration(ctx);
        }
        long after = sources.Sum(s => (long)Volatile.Read(ref s.Inuse));
        PutBackIsolated(n, sources, default, default, scratch.Discard);
        if (failure is not null) throw failure;
        return before - after;
    }

    /// <summary>
    /// Finds and isolates the full slabs of <paramref name="node"/> when the cache keeps no full list (a
    /// full slab of such a cache is on no list and not frozen), until <paramref name="limit"/> objects are
    /// offered. It walks the node's page owners: paid per move, not on every slab turning full or un-full.
    /// Under the slab lock, a slab that is unfrozen, on no list and full cannot change hands except through
    /// that lock: a free into it re-checks <see cref="Slab.Frozen"/> under the slab lock (SlabFree) and, once
    /// it is isolated, only returns the slot. A new slab is frozen from birth (NewSlab), and a discarded one
    /// is empty, so neither matches; a recycled descriptor is judged as the slab it now describes (see
    /// KmemCache.SlabRecycling.cs). No lock held on entry (the page arena's lock comes before the slab locks here).
    /// </summary>
    private void IsolateUntrackedFull(int node, List<Slab> sources, ref long offered, long limit)
    {
        foreach (var block in _pages.Arenas[node].AllocatedBlocks())
        {
            if (offered >= limit) break;
            if (block is not Slab s || s.Cache != this) continue;
            SpinLockWord.Enter(ref s.LockWord);
            // Node re-checked: a recycled descriptor may now describe a slab on another node.
            if (s.Node == node && s.List == SlabList.None && !s.Frozen && s.Freelist == 0 && s.Inuse == s.Objects && s.Objects > 0)
            {
                s.Frozen = true;
                s.List = SlabList.Isolated;
                offered += s.Inuse;
                sources.Add(s);
            }
            SpinLockWord.Exit(ref s.LockWord);
        }
    }

    private void RequireMobility()
    {
        if (Mobility is null) throw new InvalidOperationException($"{Name} SMO not enabled, cannot move objects");
    }

    private void CheckNode(int node)
    {
        if ((uint)node >= (uint)_nodes.Length)
            throw new ArgumentOutOfRangeException(nameof(node), node, $"{Name}: no node {node} (nodes 0..{_nodes.Length - 1})");
    }
}
