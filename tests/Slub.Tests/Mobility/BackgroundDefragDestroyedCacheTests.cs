namespace Slub.Tests.Mobility;

/// <summary>A cache destroyed while the background defragmenter runs on it is forgotten, not left "running".</summary>
public unsafe class BackgroundDefragDestroyedCacheTests
{
    [Fact]
    public void ACacheDestroyedWhileRunningIsNoLongerRunningNorTracked()
    {
        using var a = TestAllocator.Create(cpus: 2, mbPerNode: 64);
        var cache = a.CreateCache("bg_gone", 64, ctor: p => { *(long*)p = 0; });
        cache.SetupMobility(null, (c, objects, node, state, results) => { });   // moves nothing: the cache stays fragmented
        cache.ActiveDefrag = cache.ActiveDefrag with { IgnorePages = 0 };
        var objs = new List<nint>();
        for (int i = 0; i < 40 * cache.ObjectsPerSlab; i++) objs.Add(cache.Alloc());
        for (int i = 0; i < objs.Count; i++) if (i % 4 != 0) cache.Free(objs[i]);
        cache.FlushAll();

        var d = new BackgroundDefragmenter(a, startThread: false);
        long now = 1L << 40;   // Iterate's clock is the caller's: a simulated one, no waiting
        Assert.Same(cache, d.Iterate(now).Cache);
        Assert.True(cache.ActiveDefragRunning);
        Assert.Equal(1, d.TrackedCaches);

        // Torn down between two iterations (the thread was sleeping off its budget).
        for (int i = 0; i < objs.Count; i += 4) cache.Free(objs[i]);
        a.DestroyCache(cache);
        Assert.Null(d.Iterate(now + (1L << 40)).Cache);
        Assert.False(cache.ActiveDefragRunning);
        Assert.Equal(0, d.TrackedCaches);   // else its stale "running" state would keep the idle thread polling every 1 ms
    }
}
