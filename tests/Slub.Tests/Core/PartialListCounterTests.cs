namespace Slub.Tests.Core;

/// <summary>
/// The node's partial-list counters (free slots, slots, slabs) and fill-level buckets must agree with a full
/// walk of the list after any mix of concurrent allocation, frees, shrink, defragmentation and background
/// defragmentation: statistics and the background defragmenter read the counters instead of walking.
/// </summary>
public unsafe class PartialListCounterTests
{
    /// <summary>Every node's partial-list counters equal a walk of its list; counts the nodes seen bucketed with more than one slab.</summary>
    internal static void AssertCountersMatchRecount(KmemCache cache, ref int bucketedNodesSeen)
    {
        for (int node = 0; node < cache.Nodes.Length; node++)
        {
            var n = cache.Nodes[node];
            var (slabs, free, capacity, problem) = cache.RecountPartial(node);
            Assert.Null(problem);
            Assert.Equal(slabs, n.Partial.Count);
            Assert.Equal(free, Volatile.Read(ref n.PartialFree));
            Assert.Equal(capacity, Volatile.Read(ref n.PartialCapacity));
            if (n.Partial.Buckets > 1 && slabs > 1) bucketedNodesSeen++;
        }
    }

    [Theory]
    [InlineData("-")]
    [InlineData("FZ")]
    public void CountersMatchAFullRecountAfterAStressRun(string debug)
    {
        using var a = TestAllocator.Create(nodes: 2, cpus: 4, mbPerNode: 128, slubDebug: debug);
        var table = new MovableHandleTable(a, "plc_movable", 100);
        var plain = a.CreateCache("plc_plain", 100, flags: SlabFlags.NoMerge);
        Assert.Equal(PartialList.MovableBuckets, table.Cache.Nodes[0].Partial.Buckets);
        Assert.Equal(1, plain.Nodes[0].Partial.Buckets);
        table.Cache.ActiveDefrag = table.Cache.ActiveDefrag with
        {
            IgnorePages = 0, ThresholdLower = 1, ThresholdStop = 0, CycleMin = 50, CycleMax = 100, IntervalMs = 1, MaxSlabsPerStep = 4,
        };
        using var stop = new CancellationTokenSource();
        using var bg = a.StartBackgroundDefrag();
        var churn = Task.Run(() =>
        {
            // List rebuilds (shrink, full defrag) interleaved with everything else.
            while (!stop.IsCancellationRequested)
            {
                plain.Shrink();
                table.Cache.DefragmentNode(0);
                Thread.Sleep(2);
            }
        });
        const int Workers = 3, Ops = 40_000;
        var handles = new List<long>[Workers];
        var objects = new List<nint>[Workers];
        var workers = Enumerable.Range(0, Workers).Select(w => Task.Run(() =>
        {
            var rng = new Random(w + 17);
            var hs = handles[w] = new List<long>();
            var os = objects[w] = new List<nint>();
            for (int i = 0; i < Ops; i++)
            {
                // Grow for the first half, then mostly free: the slabs pass through every fill level.
                bool grow = i < Ops / 2 ? rng.Next(10) < 7 : rng.Next(10) < 3;
                if (grow)
                {
                    hs.Add(table.Allocate(rng.Next(3) - 1));
                    os.Add(rng.Next(4) == 0 ? plain.AllocNode(rng.Next(2)) : plain.Alloc());
                }
                else if (hs.Count > 0)
                {
                    int k = rng.Next(hs.Count);
                    table.Free(hs[k]); hs[k] = hs[^1]; hs.RemoveAt(hs.Count - 1);
                    k = rng.Next(os.Count);
                    plain.Free(os[k]); os[k] = os[^1]; os.RemoveAt(os.Count - 1);
                }
            }
        })).ToArray();
        Task.WaitAll(workers);
        stop.Cancel();
        churn.Wait();
        bg.Dispose();
        Assert.Null(bg.LastError);

        int bucketed = 0;
        // Quiescent now: CPU slabs and magazines still hold objects, and the counters must already be exact.
        AssertCountersMatchRecount(table.Cache, ref bucketed);
        AssertCountersMatchRecount(plain, ref bucketed);
        table.Cache.FlushAll();
        plain.FlushAll();
        AssertCountersMatchRecount(table.Cache, ref bucketed);
        AssertCountersMatchRecount(plain, ref bucketed);
        // The stress may have left the lists nearly empty (the defragmenter packs them): make sure the check
        // also sees long bucketed lists, with slabs at every fill level, after more frees on top of that state.
        var extra = new List<long>();
        for (int i = 0; i < 40 * table.Cache.ObjectsPerSlab; i++) extra.Add(table.Allocate(i % 2));
        for (int i = 0; i < extra.Count; i++)
            if ((i % table.Cache.ObjectsPerSlab) * 40 >= (i / table.Cache.ObjectsPerSlab + 1) * table.Cache.ObjectsPerSlab)
                table.Free(extra[i]);
            else handles[0].Add(extra[i]);
        table.Cache.FlushAll();
        bucketed = 0;
        AssertCountersMatchRecount(table.Cache, ref bucketed);
        Assert.True(bucketed > 0, "the movable cache never had a bucketed partial list with more than one slab to check");

        long live = handles.Sum(h => (long)h.Count), plainLive = objects.Sum(o => (long)o.Count);
        Assert.Equal(live, table.Cache.GetStatistics().Objects);
        Assert.Equal(plainLive, plain.GetStatistics().Objects);
        Assert.Empty(table.Cache.Validate());
        Assert.Empty(plain.Validate());

        // Freeing everything leaves empty counters (after shrink frees the empty slabs).
        foreach (var hs in handles) foreach (long h in hs) table.Free(h);
        foreach (var os in objects) foreach (nint p in os) plain.Free(p);
        table.Cache.Shrink();
        plain.Shrink();
        foreach (var c in new[] { table.Cache, plain })
            foreach (var n in c.Nodes)
            {
                Assert.Equal(0, n.Partial.Count);
                Assert.Equal(0, Volatile.Read(ref n.PartialFree));
                Assert.Equal(0, Volatile.Read(ref n.PartialCapacity));
            }
    }

    [Fact]
    public void BucketedListKeepsTheFullestSlabsAtTheHeadAndTheSparsestAtTheTail()
    {
        using var a = TestAllocator.Create(cpus: 1);
        var table = new MovableHandleTable(a, "plc_order", 56);   // 64-byte objects
        var cache = table.Cache;
        int per = cache.ObjectsPerSlab;
        var hs = new List<long>();
        for (int i = 0; i < 40 * per; i++) hs.Add(table.Allocate());
        // Slab k keeps about k/40 of its objects: every fill level, in address order.
        for (int i = 0; i < hs.Count; i++)
        {
            int slab = i / per, slot = i % per;
            if (slot * 40 >= (slab + 1) * per) table.Free(hs[i]);
        }
        cache.FlushAll();
        var n = cache.Nodes[0];
        Assert.Null(n.Partial.CheckInvariants());
        var fills = new List<int>();
        lock (n.ListLock)
            for (var s = n.Partial.Head; s is not null; s = s.Next) fills.Add(n.Partial.BucketOf(s.Objects - s.Inuse, s.Objects));
        Assert.True(fills.Count > 20);
        for (int i = 1; i < fills.Count; i++) Assert.True(fills[i - 1] <= fills[i], $"bucket {fills[i]} after {fills[i - 1]} at {i}");
        Assert.Equal(0, fills[0]);
        Assert.Equal(PartialList.MovableBuckets - 1, fills[^1]);
    }
}
