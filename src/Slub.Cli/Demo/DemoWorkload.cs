using System.Diagnostics;

namespace Slub.Cli.Demo;

/// <summary>
/// The demo's workload: fill caches, free a random 70% (the shape tmpfs churn leaves in the dentry cache),
/// fragment the XArray's <c>xa_node</c> cache (<see cref="XaNodeWorkload"/>), report the fragmentation,
/// defragment, report again and verify every surviving object.
/// </summary>
internal sealed unsafe class DemoWorkload
{
    private readonly SlabAllocator _allocator;
    private readonly Random _random;
    private readonly int _seed;
    private readonly double _scale;

    public DemoWorkload(SlabAllocator allocator, int seed, double scale)
    {
        _allocator = allocator;
        _seed = seed;
        _random = new Random(seed);
        _scale = scale;
    }

    /// <summary>One movable cache of the demo: its handle table and the handles still alive.</summary>
    private sealed record MovableSet(MovableHandleTable Table, List<long> Live);

    public DemoReport Run(Action<string, double> progress)
    {
        long rssStart = SlabAllocator.ResidentBytes();
        var movable = new List<MovableSet>
        {
            Fill(new MovableHandleTable(_allocator, "smo_object_192", 192 - 8), (int)(300_000 * _scale), progress),
            Fill(new MovableHandleTable(_allocator, "smo_object_752", 752 - 8), (int)(60_000 * _scale), progress),
        };
        // A cache without mobility: kmalloc-64 keeps its holes, which is the contrast SMO removes.
        var kmalloc = _allocator.Kmalloc.CacheFor(64)!;
        var plain = new List<nint>();
        int nPlain = (int)(200_000 * _scale);
        for (int i = 0; i < nPlain; i++) { nint p = kmalloc.Alloc(); *(long*)p = Checksum(i); plain.Add(p); }
        progress("fill kmalloc-64", 1);
        using var xarray = new XaNodeWorkload(_allocator);
        xarray.Fill((int)(400_000 * _scale), new Random(_seed + 1), progress);   // own stream: the other caches keep their figures for a seed

        foreach (var set in movable) FreeRandom(set);
        var keptPlain = new List<(int, nint)>();
        for (int i = 0; i < plain.Count; i++)
        {
            if (_random.NextDouble() < 0.7) kmalloc.Free(plain[i]); else keptPlain.Add((i, plain[i]));
        }
        progress("free a random 70%", 1);

        var caches = new List<KmemCache> { movable[0].Table.Cache, movable[1].Table.Cache, kmalloc, xarray.Cache };
        var verifiers = new List<Func<bool>>
        {
            () => Verify(movable[0]), () => Verify(movable[1]),
            () => keptPlain.All(t => *(long*)t.Item2 == Checksum(t.Item1)), xarray.Verify,
        };
        // Flush the CPUs so "objects" is the exact live count (sysfs counts per-CPU free objects as used).
        foreach (var c in caches) c.FlushAll();
        var reports = caches.Select(Snapshot).ToList();
        _allocator.ReportFreePages();   // both resident figures count only memory in use (see below)
        long rss = SlabAllocator.ResidentBytes();
        var buddy = Buddy();

        for (int i = 0; i < caches.Count; i++)
        {
            var cache = caches[i];
            long moved0 = cache.Defrag.ObjectsMoved, freed0 = cache.Defrag.ObjectsFreed, slabs0 = cache.Defrag.SlabsFreed;
            var sw = Stopwatch.StartNew();   // the compile-time interval lies inside the timed one
            var compiled = System.Runtime.JitInfo.GetCompilationTime(currentThread: true);
            cache.Shrink();
            compiled = System.Runtime.JitInfo.GetCompilationTime(currentThread: true) - compiled;
            sw.Stop();
            cache.FlushAll();
            bool verified = verifiers[i]();
            var st = cache.GetStatistics();
            reports[i].AfterDefrag = new AfterDefrag(st.Objects, st.Slabs, st.Partial, st.OptimalSlabs,
                cache.Defrag.ObjectsMoved - moved0, cache.Defrag.ObjectsFreed - freed0, cache.Defrag.SlabsFreed - slabs0,
                st.Pages, sw.Elapsed.TotalMilliseconds, verified) { CompileMilliseconds = compiled.TotalMilliseconds };
            progress($"defragment {cache.Name}", 1);
        }
        MoveAndBalance(movable[0], reports[0], progress);
        var dcache = RunDcache(reports, progress);
        // Freed slabs stay resident for SlabOptions.FreePageReportingDelay; report them now so the figure below
        // shows what the OS got back rather than how far the timer had got.
        _allocator.ReportFreePages();
        return new DemoReport(reports, rss, buddy, SlabAllocator.ResidentBytes(), Buddy(), rssStart, _seed) { Dcache = dcache };
    }

    /// <summary>The dentry cache over a real tree (/usr when present): LRU pressure scatters survivors, SMO partial shrink frees slabs.</summary>
    private DcacheReport? RunDcache(List<CacheReport> reports, Action<string, double> progress)
    {
        const string root = "/usr";
        if (!Directory.Exists(root)) return null;
        var r = Slub.Dcache.DcacheWorkload.Run(_allocator, new Slub.Dcache.DcacheWorkloadOptions
        {
            Root = root,
            MaxEntries = Math.Max(1000, (int)(20_000 * _scale)),
            Seed = _seed,
        });
        // The workload unmounts its cache when done, so the figures come from its result.
        reports.Add(new CacheReport("dentry", r.ObjectSize, r.ObjectsPerSlab, r.Order, Movable: true,
            r.DentriesAfterPressure, r.SlabsAfterPressure, r.PartialAfterPressure, r.OptimalAfterPressure, r.SlabsAfterPressure << r.Order, [])
        {
            AfterDefrag = new AfterDefrag(r.DentriesAfterSmo, r.SlabsAfterSmo, r.PartialAfterSmo, r.OptimalAfterSmo, 0, r.SmoObjectsFreed,
                r.SmoSlabsFreed, r.SlabsAfterSmo << r.Order, r.ShrinkElapsed.TotalMilliseconds, r.Mismatches == 0)
            {
                CompileMilliseconds = r.ShrinkCompileTime.TotalMilliseconds,
            },
        });
        progress("dentry cache over " + root, 1);
        return new DcacheReport(r.Root, r.Paths, r.DentriesPopulated, r.SlabsPopulated, r.HotPaths, r.HotCachedBeforeSmo,
            r.HotCachedAfterSmo, r.SmoEvictedReferenced, r.Verified, r.Mismatches);
    }

    private MovableSet Fill(MovableHandleTable table, int count, Action<string, double> progress)
    {
        var live = new List<long>(count);
        int nodes = _allocator.Topology.NodeCount;
        for (int i = 0; i < count; i++)
        {
            // With several nodes, deal objects out unevenly (node n gets n+1 shares) so balance has work.
            long h = table.Allocate(nodes == 1 ? -1 : NodeFor(i, nodes));
            using (var s = table.Access(h)) Stamp(s.Bytes, h);
            live.Add(h);
            if ((i & 0xffff) == 0) progress($"fill {table.Cache.Name}", (double)i / count);
        }
        progress($"fill {table.Cache.Name}", 1);
        return new MovableSet(table, live);
    }

    private static int NodeFor(int i, int nodes)
    {
        int shares = nodes * (nodes + 1) / 2, k = i % shares, n = 0;
        while (k >= n + 1) { k -= n + 1; n++; }
        return n;
    }

    /// <summary>With several nodes: move the first movable cache to the last node, then balance it, verifying after each.</summary>
    private void MoveAndBalance(MovableSet set, CacheReport report, Action<string, double> progress)
    {
        int nodes = _allocator.Topology.NodeCount;
        if (nodes == 1) return;
        var cache = set.Table.Cache;
        cache.MoveToNode(nodes - 1);
        report.AfterMove = new AfterMove(nodes - 1, NodeRows(cache), Verify(set));
        progress($"move {cache.Name} to node {nodes - 1}", 1);
        cache.Balance();
        report.AfterBalance = new AfterBalance(NodeRows(cache), Verify(set));
        progress($"balance {cache.Name}", 1);
    }

    private static List<NodeCounts> NodeRows(KmemCache c) =>
        c.GetStatistics().Nodes.Select(n => new NodeCounts(n.Node, n.Objects, n.Slabs, n.Partial)).ToList();

    private void FreeRandom(MovableSet set)
    {
        var kept = new List<long>(set.Live.Count / 3 + 1);
        foreach (long h in set.Live)
        {
            if (_random.NextDouble() < 0.7) set.Table.Free(h); else kept.Add(h);
        }
        set.Live.Clear();
        set.Live.AddRange(kept);
    }

    // Every payload byte is derived from the handle, so a misplaced or half-copied object cannot verify.
    private static void Stamp(Span<byte> bytes, long handle)
    {
        for (int i = 0; i < bytes.Length; i++) bytes[i] = (byte)(handle * 31 + i * 7);
    }

    private static bool Verify(MovableSet set)
    {
        foreach (long h in set.Live)
        {
            using var s = set.Table.Access(h);
            var bytes = s.Bytes;
            for (int i = 0; i < bytes.Length; i++)
                if (bytes[i] != (byte)(h * 31 + i * 7)) return false;
        }
        return true;
    }

    private static long Checksum(int i) => unchecked((long)i * (long)0x9E3779B97F4A7C15UL);

    private static CacheReport Snapshot(KmemCache c)
    {
        var st = c.GetStatistics();
        return new CacheReport(c.Name, c.ObjectSize, c.ObjectsPerSlab, c.Order, c.IsMovable,
            st.Objects, st.Slabs, st.Partial, st.OptimalSlabs, st.Pages,
            st.Nodes.Select(n => new NodeCounts(n.Node, n.Objects, n.Slabs, n.Partial)).ToList());
    }

    private List<BuddyRow> Buddy() =>
        _allocator.Pages.BuddyInfo().Select((row, node) => new BuddyRow(node, row)).ToList();
}
