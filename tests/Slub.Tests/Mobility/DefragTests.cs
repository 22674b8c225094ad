using CsCheck;

namespace Slub.Tests.Mobility;

public unsafe class DefragTests
{
    /// <summary>A movable cache whose objects are referenced from a table the migrate callback updates.</summary>
    private sealed class Fixture : IDisposable
    {
        public readonly SlabAllocator Allocator;
        public readonly KmemCache Cache;
        public readonly Dictionary<long, nint> Refs = new();   // id → object
        public Func<long, MigrateResult>? Decide;              // per-id decision; default Moved
        public Exception? Throw;
        private long _next;

        public Fixture(int nodes = 1, string debug = "-", bool movable = true, KmemCacheArgs? args = null)
        {
            Allocator = TestAllocator.Create(nodes: nodes, cpus: 2, slubDebug: debug);
            Cache = args is null
                ? Allocator.CreateCache("smo_fixture", 64, ctor: p => { *(long*)p = -1; })
                : Allocator.CreateCache("smo_fixture", 64, 0, SlabFlags.None, p => { *(long*)p = -1; }, args);
            if (movable) Cache.SetupMobility(null, Migrate);
        }

        public long Add()
        {
            nint p = Cache.Alloc();
            long id = ++_next;
            *(long*)p = id;
            ((long*)p)[1] = id * 3;
            lock (Refs) Refs[id] = p;
            return id;
        }

        public void Remove(long id)
        {
            nint p;
            lock (Refs) { p = Refs[id]; Refs.Remove(id); }
            *(long*)p = -1;   // back to constructed state, so migrate can tell it is free
            Cache.Free(p);
        }

        private void Migrate(KmemCache cache, ReadOnlySpan<nint> objects, int node, object? state, Span<MigrateResult> results)
        {
            if (Throw is not null) throw Throw;
            for (int i = 0; i < objects.Length; i++)
            {
                nint old = objects[i];
                long id = *(long*)old;
                if (id < 0) { results[i] = MigrateResult.Skipped; continue; }
                var decision = Decide?.Invoke(id) ?? MigrateResult.Moved;
                if (decision != MigrateResult.Moved) { results[i] = decision; continue; }
                nint fresh = cache.AllocNode(node);
                Buffer.MemoryCopy((void*)old, (void*)fresh, 64, 64);
                lock (Refs) Refs[id] = fresh;
                *(long*)old = -1;
                cache.Free(old);
                results[i] = MigrateResult.Moved;
            }
        }

        public void VerifyAll()
        {
            lock (Refs)
                foreach (var (id, p) in Refs)
                {
                    Assert.Equal(id, *(long*)p);
                    Assert.Equal(id * 3, ((long*)p)[1]);
                }
        }

        /// <summary>Fills whole slabs, then frees all but every k-th object: each slab keeps ~1/k of its objects.</summary>
        public void Fragment(int slabs, int keepEvery)
        {
            var ids = Enumerable.Range(0, slabs * Cache.ObjectsPerSlab).Select(_ => Add()).ToList();
            for (int i = 0; i < ids.Count; i++) if (i % keepEvery != 0) Remove(ids[i]);
            Cache.FlushAll();
        }

        public void Dispose() => Allocator.Dispose();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]   // 64-byte slots: the free pointer in the object's third word (the fixture's data are the first two)
    public void ShrinkOfAMovableCacheReachesOptimal(bool freePointerInside)
    {
        using var f = new Fixture(args: freePointerInside ? new KmemCacheArgs { FreePointerOffset = 16 } : null);
        Assert.Equal(freePointerInside ? 64 : 72, f.Cache.Geometry.Size);
        f.Fragment(slabs: 200, keepEvery: 5);
        var before = f.Cache.GetStatistics();
        Assert.True(before.Slabs > 2 * before.OptimalSlabs);
        f.Cache.Shrink();
        f.Cache.FlushAll();
        var after = f.Cache.GetStatistics();
        Assert.Equal(before.Objects, after.Objects);
        Assert.True(after.Slabs <= after.OptimalSlabs + 1, $"{after.Slabs} slabs for optimal {after.OptimalSlabs}");
        Assert.True(f.Cache.Defrag.ObjectsMoved > 0);
        Assert.Equal(before.Slabs - after.Slabs, f.Cache.Defrag.SlabsFreed);
        f.VerifyAll();
        Assert.Empty(f.Cache.Validate());
    }

    [Fact]
    public void FillFullestFirstMovesFewerObjectsThanTheSeriesPolicy()
    {
        long Moved(DefragPolicy policy, out long slabs, out long optimal)
        {
            using var f = new Fixture();
            var rng = new Random(3);
            var ids = Enumerable.Range(0, 300 * f.Cache.ObjectsPerSlab).Select(_ => f.Add()).ToList();
            foreach (var id in ids) if (rng.NextDouble() < 0.7) f.Remove(id);
            f.Cache.Shrink(policy);
            f.VerifyAll();
            var st = f.Cache.GetStatistics();
            slabs = st.Slabs; optimal = st.OptimalSlabs;
            return f.Cache.Defrag.ObjectsMoved;
        }
        long ours = Moved(DefragPolicy.FillFullestFirst, out long s1, out long o1);
        long series = Moved(DefragPolicy.EmptyAllCandidates, out long s2, out long o2);
        Assert.True(ours < series, $"ours moved {ours}, the series' policy {series}");
        Assert.True(s1 <= o1 + 1);
        Assert.True(s2 <= o2 + 1);
    }

    [Fact]
    public void ABucketIsCopiedInListOrderByItsTwoEndedWalk()
    {
        // The choice copies a bucket from both ends at once; the copy must be the list, in order, whatever its
        // length (odd, even, one slab), and a bucket longer than the maximum must be refused, not cut.
        using var a = TestAllocator.Create(cpus: 1);
        var c = a.CreateCache("walk_bucket", 64, flags: SlabFlags.NoMerge);
        for (int length = 1; length <= 9; length++)
        {
            var list = new PartialList();
            var linked = Enumerable.Range(0, length).Select(_ => new Slab(c)).ToArray();
            foreach (var s in linked) list.AddTail(s);
            var copy = new Slab[length];
            Assert.Equal(length, KmemCache.WalkBucket(list.Head!, list.Tail!, copy, new Slab[length], length));
            Assert.Equal(linked, copy);
            // A bucket longer than the given maximum (only a corrupted count): -1, so the caller leaves it alone.
            Assert.Equal(-1, KmemCache.WalkBucket(list.Head!, list.Tail!, new Slab[length], new Slab[length], length - 1));
        }
    }

    [Fact]
    public void ShrinkChoosesTheSourcesAFullSortWould()
    {
        // The choice walks the bucketed partial list from its sparse end and sorts only the bucket where it
        // stops. Model: sort every partial slab sparsest first and take slabs while the others have room for
        // their objects. Both must move the same number of objects, and the list must stay well formed.
        Gen.Double[0, 1].Array[20, 120].Sample(keep =>
        {
            using var f = new Fixture();
            var rng = new Random(keep.Length);
            int per = f.Cache.ObjectsPerSlab;
            var ids = Enumerable.Range(0, keep.Length * per).Select(_ => f.Add()).ToList();
            for (int i = 0; i < ids.Count; i++) if (rng.NextDouble() >= keep[i / per]) f.Remove(ids[i]);
            f.Cache.FlushAll();
            var n = f.Cache.Nodes[0];
            var fills = new List<(int Inuse, int Objects)>();
            for (var s = n.Partial.Head; s is not null; s = s.Next) fills.Add((s.Inuse, s.Objects));
            long room = fills.Sum(x => (long)(x.Objects - x.Inuse)), expected = 0;
            foreach (var (inuse, objects) in fills.OrderBy(x => x.Inuse))
            {
                if (inuse == 0) { room -= objects; continue; }
                if (room - (objects - inuse) < expected + inuse) break;
                room -= objects - inuse;
                expected += inuse;
            }
            f.Cache.Shrink();
            Assert.Equal(expected, f.Cache.Defrag.ObjectsMoved);
            Assert.Null(n.Partial.CheckInvariants());
            Assert.Null(f.Cache.RecountPartial(0).Problem);
            f.VerifyAll();
        }, iter: 40);
    }

    [Fact]
    public void OnlySlabsAtOrBelowTheRatioAreCandidates()
    {
        using var f = new Fixture();
        int per = f.Cache.ObjectsPerSlab;   // 64-byte objects with a ctor: 72-byte slots, 56 per slab
        // 12 slabs at 50% use and 12 slabs at 10% use.
        var dense = Enumerable.Range(0, 12 * per).Select(_ => f.Add()).ToList();
        var sparse = Enumerable.Range(0, 12 * per).Select(_ => f.Add()).ToList();
        for (int i = 0; i < dense.Count; i++) if (i % 2 == 1) f.Remove(dense[i]);
        for (int i = 0; i < sparse.Count; i++) if (i % 10 != 0) f.Remove(sparse[i]);
        f.Cache.FlushAll();
        var denseSlabs = dense.Where(f.Refs.ContainsKey).Select(id => f.Allocator.Pages.OwnerOf(f.Refs[id])).Distinct().ToList();
        f.Cache.DefragUsedRatio = 30;
        f.Cache.DefragmentNode(0);
        // The 50% slabs were never sources: every dense object is still in its slab.
        Assert.All(dense.Where(f.Refs.ContainsKey), id => Assert.Contains(f.Allocator.Pages.OwnerOf(f.Refs[id]), denseSlabs));
        Assert.True(f.Cache.Defrag.ObjectsMoved > 0);
        Assert.True(f.Cache.Defrag.ObjectsMoved <= 12 * (per / 10 + 1));
        f.VerifyAll();
    }

    [Fact]
    public void RatioZeroDisablesDefragButEmptySlabsAreStillFreed()
    {
        using var f = new Fixture();
        f.Fragment(slabs: 30, keepEvery: 10);
        f.Cache.DefragUsedRatio = 0;
        long slabs = f.Cache.GetStatistics().Slabs;
        f.Cache.DefragmentNode(0);
        Assert.Equal(0, f.Cache.Defrag.ObjectsMoved);
        Assert.Equal(slabs, f.Cache.GetStatistics().Slabs);
        Assert.Throws<ArgumentOutOfRangeException>(() => f.Cache.DefragUsedRatio = 101);
    }

    [Fact]
    public void ConditionalDefragNeedsMoreThanMaxPartialPartialSlabs()
    {
        using var f = new Fixture();
        f.Fragment(slabs: KmemCache.MaxPartial - 2, keepEvery: 20);
        Assert.True(f.Cache.GetStatistics().Partial <= KmemCache.MaxPartial);
        f.Cache.DefragmentNode(0);
        Assert.Equal(0, f.Cache.Defrag.Runs);
        f.Fragment(slabs: 20, keepEvery: 20);
        f.Cache.DefragmentNode(0);
        Assert.Equal(1, f.Cache.Defrag.Runs);
        Assert.True(f.Cache.Defrag.ObjectsMoved > 0, $"moved {f.Cache.Defrag.ObjectsMoved} skipped {f.Cache.Defrag.ObjectsSkipped} unreported {f.Cache.Defrag.ObjectsUnreported} occupancy {string.Join(' ', f.Cache.SlabOccupancy().Select(x => x.Inuse))}");
        f.VerifyAll();
    }

    [Fact]
    public void DefragSlabsWalksMovableCachesFirstAndLeavesOthersAlone()
    {
        using var f = new Fixture();
        var plain = f.Allocator.CreateCache("plain_cache", 64, flags: SlabFlags.NoMerge);
        var objs = Enumerable.Range(0, 64 * 50).Select(_ => plain.Alloc()).ToList();
        for (int i = 0; i < objs.Count; i++) if (i % 10 != 0) plain.Free(objs[i]);
        plain.FlushAll();
        f.Fragment(slabs: 50, keepEvery: 10);
        Assert.Same(f.Cache, f.Allocator.Caches[0]);   // patch 03: movable caches at the front
        long plainSlabs = plain.GetStatistics().Slabs;
        f.Allocator.DefragSlabs(-1);
        Assert.True(f.Cache.Defrag.ObjectsMoved > 0);
        Assert.Equal(0, plain.Defrag.Runs);
        Assert.Equal(plainSlabs, plain.GetStatistics().Slabs);
        f.VerifyAll();
    }

    [Fact]
    public void ObjectsTheCallbackLeavesStayIntactAndAreCountedByKind()
    {
        using var f = new Fixture();
        f.Decide = id => (id % 3) switch { 0 => MigrateResult.Later, 1 => MigrateResult.CannotMove, _ => MigrateResult.Moved };
        f.Fragment(slabs: 40, keepEvery: 8);
        long live = f.Refs.Count;
        f.Cache.Shrink();
        var d = f.Cache.Defrag;
        Assert.True(d.ObjectsBusy > 0);
        Assert.True(d.ObjectsRefused > 0);
        Assert.True(d.ObjectsMoved > 0);
        f.Cache.FlushAll();
        Assert.Equal(live, f.Cache.CountObjects());
        f.VerifyAll();
        Assert.Empty(f.Cache.Validate());
    }

    [Fact]
    public void AThrowingCallbackIsWrappedAndTheCacheKeepsWorking()
    {
        using var f = new Fixture();
        f.Fragment(slabs: 30, keepEvery: 6);
        var before = f.Cache.GetStatistics();
        f.Throw = new InvalidOperationException("boom");
        var e = Assert.Throws<DefragmentationException>(() => f.Cache.Shrink());
        Assert.Contains("smo_fixture", e.Message);
        Assert.Contains("migrate callback failed on slab 0x", e.Message);
        Assert.IsType<InvalidOperationException>(e.InnerException);
        Assert.Equal(1, f.Cache.Defrag.CallbackFailures);
        var after = f.Cache.GetStatistics();
        Assert.Equal(before.Objects, after.Objects);
        Assert.Equal(before.Slabs, after.Slabs);     // every isolated slab went back
        Assert.Empty(f.Cache.Validate());
        f.VerifyAll();
        f.Throw = null;
        f.Cache.Shrink();
        f.VerifyAll();
        for (int i = 0; i < 1000; i++) f.Add();
        f.VerifyAll();
    }

    [Fact]
    public void AFreeIntoAnIsolatedSlabGoesStraightBackAndADoubleFreeThereIsCaught()
    {
        using var a = TestAllocator.Create(cpus: 1);
        var c = a.CreateCache("iso_free", 64, ctor: p => *(long*)p = 0);
        Exception? second = null;
        c.SetupMobility(null, (cache, objs, node, state, results) =>
        {
            for (int i = 0; i < objs.Length; i++)
            {
                cache.Free(objs[i]);                      // freed, not moved: the slab can empty
                results[i] = MigrateResult.Freed;
                if (i == 0 && second is null)
                {
                    nint again = objs[0];
                    second = Record.Exception(() => cache.Free(again));
                }
            }
        });
        var all = Enumerable.Range(0, c.ObjectsPerSlab * 4).Select(_ => c.Alloc()).ToList();
        for (int i = 0; i < all.Count; i++) if (i % 8 != 0) c.Free(all[i]);
        c.Shrink(DefragPolicy.EmptyAllCandidates);   // every partial slab is a source: every kept object is offered
        Assert.IsType<InvalidFreeException>(second);
        Assert.Contains("double free", second!.Message);
        c.FlushAll();
        Assert.Equal(0, c.GetStatistics().Objects);      // every kept object was freed by the callback
        Assert.True(c.Defrag.ObjectsFreed > 0);
        Assert.Empty(c.Validate());
    }

    [Fact]
    public void MobilityNeedsAConstructor()
    {
        using var a = TestAllocator.Create();
        var c = a.CreateCache("no_ctor", 64, flags: SlabFlags.NoMerge);
        var e = Assert.Throws<InvalidOperationException>(() => c.SetupMobility(null, (_, _, _, _, _) => { }));
        Assert.Equal("no_ctor: require constructor to setup mobility", e.Message);
        Assert.False(c.IsMovable);
    }

    [Fact]
    public void MovableCachesAreNeverMergeTargets()
    {
        using var f = new Fixture();
        var other = f.Allocator.CreateCache("would_merge", 72);
        Assert.NotSame(f.Cache, other);
    }

    [Fact]
    public void IsolateSeesTheUsedObjectsAndCanDropThem()
    {
        using var a = TestAllocator.Create(cpus: 1);
        var c = a.CreateCache("iso", 64, ctor: p => *(long*)p = 0);
        var seen = new List<nint>();
        c.SetupMobility(
            (cache, objs) => { seen.AddRange(objs.ToArray()); objs[0] = 0; return "state"; },
            (cache, objs, node, state, results) =>
            {
                Assert.Equal("state", state);
                Assert.Equal(0, objs[0]);   // dropped by isolate
            });
        var all = Enumerable.Range(0, c.ObjectsPerSlab * 3).Select(_ => c.Alloc()).ToList();
        for (int i = 0; i < all.Count; i++) if (i % 4 != 0) c.Free(all[i]);
        c.Shrink();
        var kept = all.Where((_, i) => i % 4 == 0).ToHashSet();
        Assert.NotEmpty(seen);
        Assert.All(seen, p => Assert.Contains(p, kept));   // only allocated objects are offered
        Assert.True(c.Defrag.ObjectsSkipped >= 1);
    }

    [Fact]
    public void MobilityWorksOnDebugCachesToo()
    {
        using var f = new Fixture(debug: "FZU");
        f.Fragment(slabs: 40, keepEvery: 7);
        f.Cache.Shrink();
        var st = f.Cache.GetStatistics();
        Assert.True(st.Slabs <= st.OptimalSlabs + 1);
        f.VerifyAll();
        Assert.Empty(f.Cache.Validate());
    }
}
