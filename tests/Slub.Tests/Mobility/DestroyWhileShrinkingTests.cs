namespace Slub.Tests.Mobility;

/// <summary>
/// <see cref="SlabAllocator.DestroyCache"/> against defrag runs of the same cache started by a user on another thread
/// (<see cref="KmemCache.Shrink()"/>): the destroy waits for the run instead of counting the replacements it holds.
/// </summary>
public unsafe class DestroyWhileShrinkingTests
{
    private static long FreeFrames(SlabAllocator a) => a.Pages.Arenas.Sum(x => x.FreeFrames);

    /// <summary>A table whose live objects sit sparse in their slabs, so every shrink moves objects.</summary>
    private static (MovableHandleTable Table, List<long> Live) Fragmented(SlabAllocator a, string name)
    {
        var table = new MovableHandleTable(a, name, 120);
        var handles = Enumerable.Range(0, 20_000).Select(_ => table.Allocate()).ToList();
        var live = new List<long>();
        for (int i = 0; i < handles.Count; i++)
        {
            if (i % 4 == 0) live.Add(handles[i]);
            else table.Free(handles[i]);
        }
        return (table, live);
    }

    /// <summary>Runs cache.Shrink() until told to stop or until the cache is gone; returns the ObjectDisposedException that ended it, if any.</summary>
    private static Task<ObjectDisposedException?> ShrinkLoop(KmemCache cache, Func<bool> stop, Action shrunk) => Task.Run(() =>
    {
        while (!stop())
        {
            try { cache.Shrink(); }
            catch (ObjectDisposedException e) { return e; }
            shrunk();
        }
        return (ObjectDisposedException?)null;
    });

    [Theory]
    [InlineData(false)]
    [InlineData(true)]   // through MovableHandleTable.Dispose, which frees every live object and then destroys the cache
    public void DestroyRacingShrinkSucceedsAndReturnsEveryPage(bool throughTableDispose)
    {
        using var a = TestAllocator.Create(cpus: 2);
        long framesBefore = FreeFrames(a);
        for (int round = 0; round < 20; round++)
        {
            var (table, live) = Fragmented(a, "destroy_vs_shrink");
            var cache = table.Cache;
            long shrinks = 0;
            bool stop = false;
            var shrink = ShrinkLoop(cache, () => Volatile.Read(ref stop), () => Interlocked.Increment(ref shrinks));
            ObjectDisposedException? ended;
            try
            {
                SpinWait.SpinUntil(() => Interlocked.Read(ref shrinks) >= 1);
                if (throughTableDispose) table.Dispose();
                else
                {
                    foreach (long h in live) table.Free(h);   // the shrinks keep moving what is left meanwhile
                    a.DestroyCache(cache);                    // not through the table: the core's own guarantee
                }
                // The loop's next shrink finds the cache destroyed. (Bounded: were shrinks of a destroyed cache to go
                // on, the loop would never end; at most the run the destroy waited for can still count itself.)
                long after = Interlocked.Read(ref shrinks);
                SpinWait.SpinUntil(() => shrink.IsCompleted || Interlocked.Read(ref shrinks) >= after + 3);
                Assert.True(shrink.IsCompleted, "shrinks of the destroyed cache went on");
                ended = shrink.Result;
            }
            finally
            {
                // Before the allocator goes, whatever happened: a run still moving objects would touch unmapped memory.
                Volatile.Write(ref stop, true);
                shrink.Wait();
            }
            Assert.NotNull(ended);
            Assert.Equal("destroy_vs_shrink", ended.ObjectName);
            Assert.Contains("the cache has been destroyed", ended.Message);
            Assert.DoesNotContain(cache, a.Caches);
            Assert.Equal(0, cache.GetStatistics().Slabs);
            Assert.Equal(framesBefore, FreeFrames(a));   // no replacement of an in-flight run was left behind
        }
    }

    [Fact]
    public void DestroyRacingShrinkWithLeakedObjectsThrowsCacheBusyAndLeavesTheCacheUsable()
    {
        using var a = TestAllocator.Create(cpus: 2);
        long framesBefore = FreeFrames(a);
        for (int round = 0; round < 20; round++)
        {
            var (table, live) = Fragmented(a, "destroy_vs_shrink_leak");
            var cache = table.Cache;
            long shrinks = 0;
            bool stop = false;
            var shrink = ShrinkLoop(cache, () => Volatile.Read(ref stop), () => Interlocked.Increment(ref shrinks));
            const int leaked = 7;
            CacheBusyException busy;
            try
            {
                SpinWait.SpinUntil(() => Interlocked.Read(ref shrinks) >= 1);
                foreach (long h in live.Skip(leaked)) table.Free(h);
                busy = Assert.Throws<CacheBusyException>(() => a.DestroyCache(cache));
                // The shrinks that waited for the decision go on: the cache is alive.
                long after = Interlocked.Read(ref shrinks);
                SpinWait.SpinUntil(() => shrink.IsCompleted || Interlocked.Read(ref shrinks) >= after + 2);
                Assert.False(shrink.IsCompleted, "the shrink loop ended after a destroy that failed");
            }
            finally
            {
                Volatile.Write(ref stop, true);
                shrink.Wait();
            }
            Assert.Null(shrink.Result);
            Assert.Equal(leaked, busy.Objects);   // the real leak, not the replacements an in-flight run held
            Assert.Contains(cache, a.Caches);
            Assert.Equal(leaked, table.Count);
            // Still usable: allocate, move, free, and then the destroy succeeds.
            long extra = table.Allocate();
            cache.Shrink();
            table.Free(extra);
            foreach (long h in live.Take(leaked)) table.Free(h);
            table.Dispose();
            Assert.DoesNotContain(cache, a.Caches);
            Assert.Equal(framesBefore, FreeFrames(a));
        }
    }

    [Fact]
    public void EveryDefragEntryPointThrowsObjectDisposedExceptionNamingTheDestroyedCache()
    {
        using var a = TestAllocator.Create(nodes: 2, cpus: 2);
        var cache = a.CreateCache("destroyed_defrag", 64, ctor: p => { *(long*)p = 0; });
        cache.SetupMobility(null, (c, objects, node, state, results) => { });
        cache.Free(cache.Alloc());
        a.DestroyCache(cache);
        var thrown = new List<ObjectDisposedException>
        {
            Assert.Throws<ObjectDisposedException>(() => cache.Shrink()),
            Assert.Throws<ObjectDisposedException>(() => cache.Shrink(DefragPolicy.FillFullestFirst)),
            Assert.Throws<ObjectDisposedException>(() => cache.DefragmentNode(0)),
            Assert.Throws<ObjectDisposedException>(() => cache.MoveNode(0, 1)),
            Assert.Throws<ObjectDisposedException>(() => cache.MoveToNode(0)),
            Assert.Throws<ObjectDisposedException>(() => cache.Balance()),
        };
        foreach (var e in thrown)
        {
            Assert.Equal("destroyed_defrag", e.ObjectName);
            Assert.Contains("the cache has been destroyed", e.Message);
        }
    }

    [Fact]
    public void DestroyFromAMigrateCallbackOfTheCacheIsRefused()
    {
        using var a = TestAllocator.Create(cpus: 1);
        Exception? fromCallback = null;
        var cache = a.CreateCache("destroy_in_callback", 64, ctor: p => { *(long*)p = 0; });
        cache.SetupMobility(null, (c, objects, node, state, results) =>
        {
            try { a.DestroyCache(c); }
            catch (Exception e) { fromCallback ??= e; }
            results.Fill(MigrateResult.CannotMove);
        });
        var objs = Enumerable.Range(0, 10 * cache.ObjectsPerSlab).Select(_ => cache.Alloc()).ToList();
        for (int i = 0; i < objs.Count; i++) if (i % 5 != 0) cache.Free(objs[i]);
        cache.Shrink();
        var e = Assert.IsType<InvalidOperationException>(fromCallback);
        Assert.Contains("destroy_in_callback", e.Message);
        Assert.Contains(cache, a.Caches);   // nothing changed: the run went on
        for (int i = 0; i < objs.Count; i += 5) cache.Free(objs[i]);
        a.DestroyCache(cache);
        Assert.DoesNotContain(cache, a.Caches);
    }
}
