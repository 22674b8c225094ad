namespace Slub.Tests.Faults;

/// <summary>
/// A constructor that throws while a batch is being filled (a magazine refill, <see cref="KmemCache.AllocBulk"/>,
/// a migrate callback's replacements reaching for a new target slab): the objects the batch already took must go
/// back, since nobody holds them. They used to stay counted in use for good (the cache could never be destroyed).
/// </summary>
public unsafe class ConstructorFaultTests
{
    private sealed class FailingCtor
    {
        public long Calls;
        /// <summary>Constructor calls after which every further call throws (long.MaxValue: never).</summary>
        public long FailAfter = long.MaxValue;
        public void Run(nint p)
        {
            if (++Calls > FailAfter) throw new InvalidOperationException("constructor failed");
            *(long*)p = 0;
        }
    }

    [Fact]
    public void AMagazineRefillThatMeetsAFailingConstructorLosesNoObject()
    {
        using var a = TestAllocator.Create(cpus: 1);
        var ctor = new FailingCtor();
        var cache = a.CreateCache("ctor_fault_mag", 64, ctor: ctor.Run, flags: SlabFlags.NoMerge);
        var live = new List<nint>();
        // Leave the CPU slab with a few free objects, fewer than a magazine refill asks for.
        for (int i = 0; i < cache.ObjectsPerSlab + 3 * cache.ObjectsPerSlab / 4; i++) live.Add(cache.Alloc());
        ctor.FailAfter = ctor.Calls;
        int thrown = 0;
        for (int i = 0; i < 2 * cache.ObjectsPerSlab; i++)
        {
            try { live.Add(cache.Alloc()); }
            catch (InvalidOperationException) { thrown++; }
        }
        Assert.True(thrown > 0, "the constructor never failed");
        ctor.FailAfter = long.MaxValue;
        cache.FlushAll();
        Assert.Equal(live.Count, cache.GetStatistics().Objects);
        foreach (nint p in live) cache.Free(p);
        cache.Shrink();
        Assert.Equal(0, cache.GetStatistics().Slabs);
        Assert.Empty(cache.Validate());
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(0)]
    public void ABulkAllocationThatMeetsAFailingConstructorGivesItsObjectsBack(int node)
    {
        using var a = TestAllocator.Create(cpus: 1);
        var ctor = new FailingCtor();
        var cache = a.CreateCache("ctor_fault_bulk", 64, ctor: ctor.Run, flags: SlabFlags.NoMerge);
        nint first = cache.Alloc();
        ctor.FailAfter = ctor.Calls;
        var batch = new nint[3 * cache.ObjectsPerSlab];
        Assert.Throws<InvalidOperationException>(() => cache.AllocBulk(batch, node));
        ctor.FailAfter = long.MaxValue;
        cache.FlushAll();
        Assert.Equal(1, cache.GetStatistics().Objects);
        cache.Free(first);
        cache.Shrink();
        Assert.Equal(0, cache.GetStatistics().Slabs);
    }

    [Fact]
    public void ReplacementsThatMeetAFailingConstructorMidBatchAreGivenBack()
    {
        using var a = TestAllocator.Create(cpus: 1);
        var ctor = new FailingCtor();
        var cache = a.CreateCache("ctor_fault_migrate", 64, ctor: ctor.Run, flags: SlabFlags.NoMerge);
        cache.SetupMobility(null, (c, objects, node, state, results) =>
        {
            using var fresh = new MigrationReplacements(c, objects.Length, node, stackalloc nint[Math.Min(objects.Length, 256)]);
            for (int i = 0; i < objects.Length; i++)
            {
                if (!fresh.TryTake(out nint moved)) { results[i] = MigrateResult.Later; continue; }
                Buffer.MemoryCopy((void*)objects[i], (void*)moved, 64, 64);
                results[i] = MigrateResult.MovedOldLeft;
            }
        });
        int per = cache.ObjectsPerSlab;
        var all = new List<nint>();
        for (int i = 0; i < 6 * per; i++) all.Add(cache.Alloc());
        // Every slab keeps 60% of its objects: two sources' objects do not fit one target slab, so the second
        // source's batch takes the rest of the first target and then needs a new one, whose constructor fails.
        var live = new List<nint>();
        for (int i = 0; i < all.Count; i++)
            if (i % per < per * 6 / 10) live.Add(all[i]); else cache.Free(all[i]);
        cache.FlushAll();
        ctor.FailAfter = ctor.Calls + per;   // the first new target slab is built, the second is not
        Assert.Throws<DefragmentationException>(() => cache.Shrink(DefragPolicy.EmptyAllCandidates));
        ctor.FailAfter = long.MaxValue;
        cache.FlushAll();
        Assert.Equal(live.Count, cache.GetStatistics().Objects);
        Assert.Empty(cache.Validate());
    }
}
