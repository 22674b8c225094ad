namespace Slub.Tests.Core;

/// <summary>
/// Slab descriptors are recycled (KmemCache.SlabRecycling.cs): a cache that keeps creating and discarding
/// slabs allocates no managed memory once warmed up, and a recycled descriptor never carries state from
/// the slab it described before.
/// </summary>
public unsafe class SlabRecyclingTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]   // movable: new slabs also get a free map (reused with the descriptor)
    public void SlabChurnAllocatesNoManagedMemory(bool movable)
    {
        // No report timer: its report on a pool thread, when it happens to meet this thread on the zone lock, makes
        // that lock allocate its wait event once — contention, not slab churn. Other one-off allocations on this
        // thread come from the rest of the process (see AllocationWindows).
        using var a = TestAllocator.Create(cpus: 1, freePageReportingDelay: Timeout.InfiniteTimeSpan);
        var cache = a.CreateCache("recycle", 128, ctor: movable ? p => { } : null);
        if (movable) cache.SetupMobility(null, (c, objs, node, state, results) => { });
        int perSlab = cache.ObjectsPerSlab;
        var objs = new nint[20 * perSlab];
        long bad = 0;
        void Cycle()
        {
            for (int i = 0; i < objs.Length; i++) { objs[i] = cache.Alloc(); *(long*)objs[i] = i; }
            for (int i = 0; i < objs.Length; i++)
            {
                if (*(long*)objs[i] != i) bad++;   // not Assert.Equal here: it would allocate inside the measured loop
                cache.Free(objs[i]);
            }
            cache.FlushAll();   // empty slabs beyond min_partial go back to the page allocator
        }
        for (int i = 0; i < 3; i++) Cycle();   // warm-up: JIT, magazines, the spare descriptors
        long slabsBefore = cache.Events.AllocSlab;
        long[] windows = AllocationWindows.UntilClean(3, () => { for (int i = 0; i < 20; i++) Cycle(); });
        long slabs = cache.Events.AllocSlab - slabsBefore;
        Assert.True(slabs >= windows.Length * 20 * 10, $"only {slabs} new slabs in {windows.Length} windows: the cycles did not churn slabs");
        Assert.True(windows[^1] == 0, $"every window of 20 cycles (~{slabs / windows.Length} new slabs) allocated managed memory: {string.Join(", ", windows)} bytes");
        Assert.Equal(0, bad);
        Assert.Empty(cache.Validate());
    }

    [Fact]
    public void RecycledDescriptorStartsClean()
    {
        using var a = TestAllocator.Create(cpus: 1);
        var cache = a.CreateCache("recycle_clean", 64, ctor: p => { *(long*)p = 0; });
        cache.SetupMobility(null, (c, objs, node, state, results) => { });
        int perSlab = cache.ObjectsPerSlab;
        // Fill slabs, free some objects, then free the rest: the descriptors go back with partial history
        // (free maps with holes, list links, buckets). New slabs made from them must look brand new.
        for (int round = 0; round < 5; round++)
        {
            var objs = new List<nint>();
            for (int i = 0; i < 12 * perSlab; i++) objs.Add(cache.Alloc());
            for (int i = 0; i < objs.Count; i += 3) cache.Free(objs[i]);
            cache.FlushAll();
            Assert.Empty(cache.Validate());
            for (int i = 0; i < objs.Count; i++) if (i % 3 != 0) cache.Free(objs[i]);
            cache.Shrink();
            Assert.Empty(cache.Validate());
            var st = cache.GetStatistics();
            Assert.Equal(0, st.Objects);
        }
    }
}
