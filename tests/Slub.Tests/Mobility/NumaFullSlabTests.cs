namespace Slub.Tests.Mobility;

/// <summary>
/// NUMA moves must reach full slabs, which a movable non-debug cache keeps on no list (the move finds them by
/// scanning the node's page owners and isolates them under the slab lock).
/// </summary>
public unsafe class NumaFullSlabTests
{
    private static void Stamp(Span<byte> b, long h) { for (int i = 0; i < b.Length; i++) b[i] = (byte)(h * 7 + i); }
    private static bool Check(Span<byte> b, long h) { for (int i = 0; i < b.Length; i++) if (b[i] != (byte)(h * 7 + i)) return false; return true; }

    [Theory]
    [InlineData(false)]   // slabs filled before SetupMobility: made without a free map
    [InlineData(true)]    // slabs filled after SetupMobility
    public void MoveReachesEveryFullSlab(bool mobilityFirst)
    {
        using var a = TestAllocator.Create(nodes: 2, cpus: 2);
        var cache = a.CreateCache("late_movable", 64, ctor: p => *(long*)p = -1);
        var refs = new Dictionary<long, nint>();
        MigrateCallback migrate = (c, objects, node, _, results) =>
        {
            for (int i = 0; i < objects.Length; i++)
            {
                long id = *(long*)objects[i];
                if (id < 0) { results[i] = MigrateResult.Skipped; continue; }
                nint fresh = c.AllocNode(node);
                Buffer.MemoryCopy((void*)objects[i], (void*)fresh, 64, 64);
                refs[id] = fresh;
                *(long*)objects[i] = -1;
                c.Free(objects[i]);
                results[i] = MigrateResult.Moved;
            }
        };
        if (mobilityFirst) cache.SetupMobility(null, migrate);
        int count = 40 * cache.ObjectsPerSlab;
        for (long id = 1; id <= count; id++)
        {
            nint p = cache.AllocNode(0);
            *(long*)p = id;
            ((long*)p)[1] = id * 3;
            refs[id] = p;
        }
        cache.FlushAll();
        var before = cache.GetStatistics().Nodes[0];
        Assert.Equal(count, before.Objects);
        Assert.True(before.Slabs - before.Partial >= 39, $"expected full slabs, got {before}");   // full slabs are on no list
        Assert.Equal(0, before.FullTracked);
        if (!mobilityFirst) cache.SetupMobility(null, migrate);

        Assert.Equal(0, cache.MoveNode(0, 1));

        Assert.Equal(count, cache.Defrag.ObjectsMoved);
        Assert.Equal(1, cache.Defrag.Runs);                      // a move counts as a pass of the core
        Assert.Equal(before.Slabs, cache.Defrag.SlabsFreed);    // every slab it emptied on node 0
        foreach (var (id, p) in refs)
        {
            Assert.Equal(1, a.Pages.NodeOf(p));
            Assert.Equal(id, *(long*)p);
            Assert.Equal(id * 3, ((long*)p)[1]);
        }
        var after = cache.GetStatistics();
        Assert.Equal(0, after.Nodes[0].Slabs);
        Assert.Equal(count, after.Nodes[1].Objects);
        Assert.Empty(cache.Validate());
    }

    [Fact]
    public void FreesIntoFullSlabsWhileMovesRun()
    {
        using var a = TestAllocator.Create(nodes: 2, cpus: 4, mbPerNode: 64);
        var t = new MovableHandleTable(a, "full_race", 56);
        for (int round = 0; round < 3; round++)
        {
            var handles = new List<long>();
            for (int i = 0; i < 200 * t.Cache.ObjectsPerSlab; i++)
            {
                long h = t.Allocate(0);
                using (var s = t.Access(h)) Stamp(s.Bytes, h);
                handles.Add(h);
            }
            t.Cache.FlushAll();
            var rng = new Random(round);
            var order = handles.OrderBy(_ => rng.Next()).ToList();
            var doomed = order.Take(order.Count / 2).ToList();
            var kept = order.Skip(order.Count / 2).ToList();
            long bad = 0;
            // Two threads free half of the objects, in random order, so frees land in full slabs (turning
            // them partial) while the mover scans for and isolates full slabs.
            var freers = Enumerable.Range(0, 2).Select(k => Task.Run(() =>
            {
                for (int i = k; i < doomed.Count; i += 2)
                {
                    using (var s = t.Access(doomed[i])) if (!Check(s.Bytes, doomed[i])) Interlocked.Increment(ref bad);
                    t.Free(doomed[i]);
                }
            })).ToArray();
            int moves = 0;
            while (!freers.All(f => f.IsCompleted) || moves < 2)
            {
                t.Cache.MoveNode(moves % 2, (moves + 1) % 2);
                moves++;
            }
            Task.WaitAll(freers);
            Assert.Equal(0, bad);

            // Nothing lost: every kept object verifies, the counts are exact, and one more move empties node 0.
            Assert.Equal(0, t.Cache.MoveNode(0, 1));
            foreach (long h in kept)
            {
                Assert.Equal(1, a.Pages.NodeOf(t.AddressOf(h)));
                using var s = t.Access(h);
                Assert.True(Check(s.Bytes, h));
            }
            t.Cache.FlushAll();
            Assert.Equal(kept.Count, t.Cache.GetStatistics().Objects);
            Assert.Empty(t.Cache.Validate());
            foreach (long h in kept) t.Free(h);
        }
    }
    /// <summary>
    /// Descriptors of discarded slabs are recycled for new slabs, possibly on the other node, while a move's
    /// scan of page owners holds the old snapshot: the scan must judge each descriptor as the slab it now is
    /// (its node re-checked under the slab lock). Two threads churn slabs on both nodes while moves run.
    /// </summary>
    [Fact]
    public void MovesWhileDescriptorsAreRecycledAcrossNodes()
    {
        using var a = TestAllocator.Create(nodes: 2, cpus: 4, mbPerNode: 64);
        var t = new MovableHandleTable(a, "recycle_race", 56);
        int per = t.Cache.ObjectsPerSlab;
        var kept = new List<long>();
        for (int i = 0; i < 100 * per; i++)
        {
            long h = t.Allocate(i % 2);
            using (var s = t.Access(h)) Stamp(s.Bytes, h);
            kept.Add(h);
        }
        long bad = 0;
        Exception? failure = null;
        using var stop = new CancellationTokenSource();
        var churners = Enumerable.Range(0, 2).Select(k => new Thread(() =>
        {
            var mine = new List<long>();
            try
            {
                while (!stop.IsCancellationRequested)
                {
                    // Fill whole slabs on one node, then free them all: slabs are made and discarded.
                    for (int i = 0; i < 8 * per; i++)
                    {
                        long h = t.Allocate((k + mine.Count / per) % 2);
                        using (var s = t.Access(h)) Stamp(s.Bytes, h);
                        mine.Add(h);
                    }
                    foreach (long h in mine)
                    {
                        using (var s = t.Access(h)) if (!Check(s.Bytes, h)) Interlocked.Increment(ref bad);
                        t.Free(h);
                    }
                    mine.Clear();
                }
            }
            catch (Exception e) { Interlocked.CompareExchange(ref failure, e, null); }   // reported below, not a test-host crash
        })).ToArray();
        foreach (var c in churners) c.Start();
        for (int moves = 0; moves < 60; moves++) t.Cache.MoveNode(moves % 2, (moves + 1) % 2);
        stop.Cancel();
        foreach (var c in churners) c.Join();
        Assert.Null(failure);
        Assert.Equal(0, bad);
        Assert.True(t.Cache.Events.FreeSlab > 0, "no slab was discarded: nothing was recycled");
        foreach (long h in kept)
        {
            using var s = t.Access(h);
            Assert.True(Check(s.Bytes, h));
        }
        t.Cache.FlushAll();
        Assert.Equal(kept.Count, t.Cache.GetStatistics().Objects);
        Assert.Empty(t.Cache.Validate());
    }
}
