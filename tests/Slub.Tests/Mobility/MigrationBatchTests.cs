namespace Slub.Tests.Mobility;

/// <summary>
/// The batched migration protocol: free maps, replacements from reserved targets, deferred frees of old
/// objects, <see cref="MigrateResult.MovedOldLeft"/>, and their error paths.
/// </summary>
public unsafe class MigrationBatchTests
{
    private sealed class Fixture : IDisposable
    {
        public readonly SlabAllocator Allocator;
        public readonly KmemCache Cache;
        public readonly Dictionary<long, nint> Refs = new();
        /// <summary>How migrate treats an object: Moved (frees the old one itself), MovedOldLeft, Later, CannotMove.</summary>
        public Func<long, MigrateResult> Decide = _ => MigrateResult.MovedOldLeft;
        /// <summary>Throw after this many objects of one call (-1: never).</summary>
        public int ThrowAfter = -1;
        /// <summary>Free the old object twice / free it and also report MovedOldLeft.</summary>
        public bool DoubleFree, FreeAndLeave;
        /// <summary>Take every replacement of a call up front with AllocBulk and give the unused ones back with FreeBulk.</summary>
        public bool Bulk;
        /// <summary>Slabs (by first object) the replacements of each call came from.</summary>
        public readonly List<int> SlabsPerBulkCall = new();
        public readonly HashSet<nint> Replacements = new();
        private long _next;

        public Fixture(int cpus = 2)
        {
            Allocator = TestAllocator.Create(cpus: cpus);
            Cache = Allocator.CreateCache("batch_fixture", 64, ctor: p => { *(long*)p = -1; });
            Cache.SetupMobility(null, Migrate);
        }

        public long Add()
        {
            nint p = Cache.Alloc();
            long id = ++_next;
            *(long*)p = id;
            ((long*)p)[1] = id * 5;
            Refs[id] = p;
            return id;
        }

        public void Remove(long id)
        {
            nint p = Refs[id];
            Refs.Remove(id);
            *(long*)p = -1;
            Cache.Free(p);
        }

        public void Fragment(int slabs, int keepEvery)
        {
            var ids = Enumerable.Range(0, slabs * Cache.ObjectsPerSlab).Select(_ => Add()).ToList();
            for (int i = 0; i < ids.Count; i++) if (i % keepEvery != 0) Remove(ids[i]);
            Cache.FlushAll();
        }

        private void Migrate(KmemCache cache, ReadOnlySpan<nint> objects, int node, object? state, Span<MigrateResult> results)
        {
            if (Bulk) { MigrateBulk(cache, objects, node, results); return; }
            for (int i = 0; i < objects.Length; i++)
            {
                if (i == ThrowAfter) throw new InvalidOperationException("callback failed half way");
                nint old = objects[i];
                long id = *(long*)old;
                if (id < 0) { results[i] = MigrateResult.Skipped; continue; }
                var d = Decide(id);
                if (d is not (MigrateResult.Moved or MigrateResult.MovedOldLeft)) { results[i] = d; continue; }
                nint fresh = cache.AllocNode(node);
                Replacements.Add(fresh);
                Buffer.MemoryCopy((void*)old, (void*)fresh, 64, 64);
                Refs[id] = fresh;
                *(long*)old = -1;
                if (d == MigrateResult.Moved || FreeAndLeave) cache.Free(old);
                if (DoubleFree) cache.Free(old);
                results[i] = d;
            }
        }

        private void MigrateBulk(KmemCache cache, ReadOnlySpan<nint> objects, int node, Span<MigrateResult> results)
        {
            var fresh = new nint[objects.Length];
            int got = cache.AllocBulk(fresh, node), used = 0;
            SlabsPerBulkCall.Add(fresh.Take(got).Select(p => Allocator.Pages.OwnerOf(p)!.Address).Distinct().Count());
            for (int i = 0; i < objects.Length; i++)
            {
                nint old = objects[i];
                long id = *(long*)old;
                if (id < 0) { results[i] = MigrateResult.Skipped; continue; }
                var d = Decide(id);
                if (d is not (MigrateResult.Moved or MigrateResult.MovedOldLeft)) { results[i] = d; continue; }
                nint p = fresh[used++];
                Replacements.Add(p);
                Buffer.MemoryCopy((void*)old, (void*)p, 64, 64);
                Refs[id] = p;
                *(long*)old = -1;
                if (d == MigrateResult.Moved) cache.Free(old);
                results[i] = d;
            }
            cache.FreeBulk(fresh.AsSpan(used, got - used));
        }

        public void VerifyAll()
        {
            foreach (var (id, p) in Refs)
            {
                Assert.Equal(id, *(long*)p);
                Assert.Equal(id * 5, ((long*)p)[1]);
            }
        }

        public void Dispose() => Allocator.Dispose();
    }

    [Theory]
    [InlineData(MigrateResult.MovedOldLeft)]
    [InlineData(MigrateResult.Moved)]
    public void ShrinkEmptiesSourcesWithEitherWayOfFreeingTheOldObjects(MigrateResult how)
    {
        using var f = new Fixture();
        f.Decide = _ => how;
        f.Fragment(slabs: 120, keepEvery: 4);
        var before = f.Cache.GetStatistics();
        f.Cache.Shrink();
        f.Cache.FlushAll();
        var after = f.Cache.GetStatistics();
        Assert.Equal(before.Objects, after.Objects);
        Assert.True(after.Slabs <= after.OptimalSlabs + 1, $"{after.Slabs} slabs for optimal {after.OptimalSlabs}");
        Assert.Equal(f.Replacements.Count, f.Cache.Defrag.ObjectsMoved);
        // FillFullestFirst fills the holes of existing slabs: no slab was created, so every slab gone was freed by defrag.
        Assert.Equal(before.Slabs - after.Slabs, f.Cache.Defrag.SlabsFreed);
        foreach (nint p in f.Replacements) Assert.True(f.Cache.Owns(p));
        f.VerifyAll();
        Assert.Empty(f.Cache.Validate());
    }

    [Fact]
    public void BulkReplacementsComeFromReservedTargetsAndUnusedOnesGoBack()
    {
        using var f = new Fixture { Bulk = true };
        // Kept ids are 1, 5, 9, …: decide on id / 4.
        f.Decide = id => (id / 4) % 4 == 0 ? MigrateResult.Later : (id / 4) % 2 == 0 ? MigrateResult.Moved : MigrateResult.MovedOldLeft;
        f.Fragment(slabs: 80, keepEvery: 4);
        long objects = f.Cache.GetStatistics().Objects;
        f.Cache.Shrink();
        f.Cache.FlushAll();
        // Every replacement left unused went back: the count is exact, nothing leaked or was freed twice.
        Assert.Equal(objects, f.Cache.CountObjects());
        Assert.Equal(f.Replacements.Count, f.Cache.Defrag.ObjectsMoved);
        Assert.True(f.Cache.Defrag.ObjectsBusy > 0 && f.Cache.Defrag.ObjectsMoved > 0);
        // One call's replacements are the free slots of one reserved target, or two where it ran out mid-call.
        Assert.NotEmpty(f.SlabsPerBulkCall);
        Assert.All(f.SlabsPerBulkCall, n => Assert.InRange(n, 0, 2));
        f.VerifyAll();
        Assert.Empty(f.Cache.Validate());
    }

    [Fact]
    public void AllocBulkOnANodeOutsideMigrationGivesObjectsOnThatNode()
    {
        using var a = TestAllocator.Create(nodes: 2);
        var c = a.CreateCache("bulk_node", 128, flags: SlabFlags.NoMerge);
        var objs = new nint[300];
        Assert.Equal(objs.Length, c.AllocBulk(objs, node: 1));
        Assert.All(objs, p => Assert.Equal(1, a.Pages.NodeOf(p)));
        Assert.Equal(objs.Length, objs.Distinct().Count());
        Assert.Throws<ArgumentOutOfRangeException>(() => c.AllocBulk(objs, node: 2));
        c.FreeBulk(objs);
        c.FlushAll();
        Assert.Equal(0, c.GetStatistics().Objects);
    }

    [Fact]
    public void ObjectsLeftBehindStayIntactAndCountedApart()
    {
        using var f = new Fixture();
        f.Decide = id => (id % 3) switch { 0 => MigrateResult.Later, 1 => MigrateResult.CannotMove, _ => MigrateResult.MovedOldLeft };
        f.Fragment(slabs: 60, keepEvery: 5);
        long objects = f.Cache.GetStatistics().Objects;
        f.Cache.Shrink();
        Assert.Equal(objects, f.Cache.CountObjects());
        Assert.True(f.Cache.Defrag.ObjectsBusy > 0 && f.Cache.Defrag.ObjectsRefused > 0 && f.Cache.Defrag.ObjectsMoved > 0);
        Assert.Equal(f.Replacements.Count, f.Cache.Defrag.ObjectsMoved);
        f.VerifyAll();
        Assert.Empty(f.Cache.Validate());
    }

    [Fact]
    public void OldObjectsFreedBeforeTheCallbackThrowsAreStillReturned()
    {
        using var f = new Fixture();
        f.Decide = id => id % 2 == 0 ? MigrateResult.Moved : MigrateResult.MovedOldLeft;
        f.ThrowAfter = 6;
        f.Fragment(slabs: 20, keepEvery: 4);
        long objects = f.Cache.GetStatistics().Objects;
        var e = Assert.Throws<DefragmentationException>(() => f.Cache.Shrink());
        Assert.IsType<InvalidOperationException>(e.InnerException);
        Assert.Equal(6, f.Cache.Defrag.ObjectsMoved);   // the first call moved six, then threw
        Assert.Equal(objects, f.Cache.CountObjects());  // no old object leaked, none freed twice
        f.VerifyAll();
        Assert.Empty(f.Cache.Validate());
    }

    [Theory]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public void DoubleFreesInsideMigrateAreCaught(bool twice, bool freeAndLeave)
    {
        using var f = new Fixture();
        f.Decide = _ => twice ? MigrateResult.Moved : MigrateResult.MovedOldLeft;
        f.DoubleFree = twice;
        f.FreeAndLeave = freeAndLeave;
        f.Fragment(slabs: 20, keepEvery: 4);
        long objects = f.Cache.GetStatistics().Objects;
        var e = Assert.Throws<DefragmentationException>(() => f.Cache.Shrink());
        Assert.IsType<InvalidFreeException>(e.InnerException);
        Assert.Contains("double free", e.InnerException!.Message);
        // The slot went back once: the count is exact and the free lists are sound.
        Assert.Equal(objects, f.Cache.CountObjects());
        Assert.Empty(f.Cache.Validate());
    }

    /// <summary>
    /// An object of the source freed by another thread while migrate runs, and also reported MovedOldLeft: the
    /// whole-slab shortcut (every object left to the core, none freed meanwhile) must not take it, because the
    /// slab's in-use count is one short; the object-by-object return then catches the double free.
    /// </summary>
    [Fact]
    public void AnotherThreadsFreeOfAnObjectLeftToTheCoreIsCaughtAsADoubleFree()
    {
        using var f = new Fixture();
        f.Fragment(slabs: 20, keepEvery: 4);
        long objects = f.Cache.GetStatistics().Objects;
        bool once = false;
        f.Decide = id =>
        {
            if (!once)
            {
                once = true;
                nint victim = f.Refs[id];   // still the old object: the fixture moves it after Decide
                var other = new GuardedThread(() => f.Cache.Free(victim));
                other.Start();
                other.Join();
            }
            return MigrateResult.MovedOldLeft;
        };
        var e = Assert.Throws<DefragmentationException>(() => f.Cache.Shrink());
        var inner = Assert.IsType<InvalidFreeException>(e.InnerException);
        Assert.Contains("double free", inner.Message);
        Assert.Equal(objects, f.Cache.CountObjects());   // the slot went back once (its replacement is live)
        Assert.Empty(f.Cache.Validate());
    }

    /// <summary>
    /// A source whose every object was moved and left to the core is emptied at once and put back without its
    /// lock, so nothing may change it meanwhile: a later free of one of its old objects must be refused as a
    /// double free (the free-list head check alone would let it through, the free list being empty).
    /// </summary>
    [Fact]
    public void AFreeIntoAnEmptiedSourceIsRefusedAsADoubleFree()
    {
        using var a = TestAllocator.Create(cpus: 1);
        var c = a.CreateCache("emptied_free", 64, ctor: p => *(long*)p = 0);
        var live = new HashSet<nint>();
        nint firstOld = 0;
        Exception? refused = null;
        int calls = 0;
        c.SetupMobility(null, (cache, objs, node, state, results) =>
        {
            if (++calls == 2)
            {
                nint stale = firstOld;   // its slab was emptied by the first call
                refused = Record.Exception(() => cache.Free(stale));
            }
            for (int i = 0; i < objs.Length; i++)
            {
                nint fresh = cache.AllocNode(node);
                *(long*)fresh = *(long*)objs[i];
                live.Remove(objs[i]);
                live.Add(fresh);
                if (firstOld == 0) firstOld = objs[i];
                results[i] = MigrateResult.MovedOldLeft;
            }
        });
        var all = Enumerable.Range(0, c.ObjectsPerSlab * 8).Select(_ => c.Alloc()).ToList();
        for (int i = 0; i < all.Count; i++)
            if (i % 8 != 0) c.Free(all[i]);
            else live.Add(all[i]);
        c.Shrink();
        Assert.True(calls >= 2, $"{calls} migrate calls");
        var e = Assert.IsType<InvalidFreeException>(refused);
        Assert.Contains("double free", e.Message);
        Assert.Equal(live.Count, c.CountObjects());
        Assert.Empty(c.Validate());
        foreach (var p in live) c.Free(p);
        c.Shrink();
        Assert.Equal(0, c.GetStatistics().Objects);
    }

    [Fact]
    public void FreeMapFollowsTheFreeListThroughMixedTraffic()
    {
        using var f = new Fixture(cpus: 3);
        var c = f.Cache;
        var rng = new Random(11);
        var live = new List<nint>();
        var buf = new nint[40];
        for (int round = 0; round < 4000; round++)
        {
            switch (rng.Next(6))
            {
                case 0: live.Add(c.Alloc()); break;
                case 1: live.Add(c.TryAllocOnCpu(rng.Next(3))); break;
                case 2:
                    int n = c.AllocBulk(buf.AsSpan(0, rng.Next(1, buf.Length)));
                    live.AddRange(buf.AsSpan(0, n).ToArray());
                    break;
                case 3 when live.Count > 0:
                    int k = rng.Next(live.Count);
                    c.FreeOnCpu(rng.Next(3), live[k]);
                    live.RemoveAt(k);
                    break;
                case 4 when live.Count > 50:
                    var some = live.OrderBy(_ => rng.Next()).Take(rng.Next(1, 50)).ToList();
                    c.FreeBulk(some.ToArray());
                    live.RemoveAll(some.Contains);
                    break;
                case 5 when live.Count > 0:
                    int j = rng.Next(live.Count);
                    c.Free(live[j]);
                    live.RemoveAt(j);
                    break;
            }
            if (round % 500 == 0) Assert.Empty(c.Validate());   // compares every slab's free map with its free list
        }
        Assert.Empty(c.Validate());
    }

    [Fact]
    public void ValidateReportsAFreeMapThatDisagreesWithTheFreeList()
    {
        using var f = new Fixture();
        f.Fragment(slabs: 4, keepEvery: 2);
        var n = f.Cache.Nodes[0];
        var s = n.Partial.Head!;
        s.FreeMap![0] ^= 1;   // slot 0: flip what the map says
        var problems = f.Cache.Validate();
        Assert.Contains(problems, p => p.Contains("free map"));
        s.FreeMap![0] ^= 1;
        Assert.Empty(f.Cache.Validate());
    }

    [Fact]
    public void ReplacementsNotTakenGoBackToTheCache()
    {
        using var a = TestAllocator.Create(cpus: 1);
        var cache = a.CreateCache("replacements", 64, flags: SlabFlags.NoMerge);
        nint kept;
        {
            using var fresh = new MigrationReplacements(cache, 300, -1, stackalloc nint[16]);   // more than the buffer: a rented array
            Assert.Equal(300, fresh.Remaining);
            Assert.True(fresh.TryTake(out kept));
            Assert.NotEqual(0, kept);
            Assert.Equal(299, fresh.Remaining);
            fresh.Dispose();   // twice (here and by using): the second gives nothing back again
        }
        cache.FlushAll();
        Assert.Equal(1, cache.GetStatistics().Objects);   // only the one taken is still allocated

        using (var three = new MigrationReplacements(cache, 3, -1, stackalloc nint[3]))
        {
            for (int i = 0; i < 3; i++) Assert.True(three.TryTake(out _));
            Assert.False(three.TryTake(out nint none));   // used up
            Assert.Equal(0, none);
        }
        cache.FlushAll();
        Assert.Equal(4, cache.GetStatistics().Objects);   // the three taken are the caller's now
        Assert.Empty(cache.Validate());
    }
}

/// <summary>
/// The stress half of <see cref="MigrationBatchTests"/>. Runs alone: its threads keep both cores busy, and
/// tests elsewhere that fragment a cache assume their thread stays on one CPU while they build the layout.
/// </summary>
[CollectionDefinition("migration-batch-stress", DisableParallelization = true)]
public sealed class MigrationBatchStressCollection;

[Collection("migration-batch-stress")]
public unsafe class MigrationBatchStressTests
{
    [Fact]
    public void ConcurrentFreesIntoIsolatedSlabsWhileMigrateReturnsOldObjectsInBatches()
    {
        // Users free and allocate objects whose references live in a table guarded by striped locks; the
        // callback takes the same stripe, checks the object is still referenced, and moves it (half of them
        // freeing the old one itself, half leaving it to the core) or leaves it. Shrink loops meanwhile.
        using var a = TestAllocator.Create(cpus: 3, mbPerNode: 64);
        const int Stripes = 16, Slots = 20_000, Workers = 2, Ops = 60_000;
        var locks = new object[Stripes];
        for (int i = 0; i < Stripes; i++) locks[i] = new object();
        var table = new nint[Slots];
        var cache = a.CreateCache("batch_stress", 64, ctor: p => { *(long*)p = -1; });
        long moved = 0;
        cache.SetupMobility(null, (c, objects, node, state, results) =>
        {
            for (int i = 0; i < objects.Length; i++)
            {
                nint old = objects[i];
                long slot = Volatile.Read(ref *(long*)old);
                if (slot < 0 || slot >= Slots) { results[i] = MigrateResult.Skipped; continue; }
                lock (locks[slot % Stripes])
                {
                    if (table[slot] != old) { results[i] = MigrateResult.Skipped; continue; }   // freed meanwhile
                    if (slot % 5 == 0) { results[i] = MigrateResult.Later; continue; }
                    nint fresh = c.TryAllocNode(node);
                    if (fresh == 0) { results[i] = MigrateResult.Later; continue; }
                    Buffer.MemoryCopy((void*)old, (void*)fresh, 64, 64);
                    table[slot] = fresh;
                    *(long*)old = -1;
                    if (slot % 2 == 0) { c.Free(old); results[i] = MigrateResult.Moved; }
                    else results[i] = MigrateResult.MovedOldLeft;
                    Interlocked.Increment(ref moved);
                }
            }
        });
        long bad = 0;
        using var stop = new CancellationTokenSource();
        using var started = new ManualResetEventSlim();
        var shrinker = Task.Factory.StartNew(() =>
        {
            started.Set();
            for (int r = 0; !stop.IsCancellationRequested; r++)
                cache.Shrink(r % 3 == 0 ? DefragPolicy.EmptyAllCandidates : DefragPolicy.FillFullestFirst);
        }, TaskCreationOptions.LongRunning);
        var workers = Enumerable.Range(0, Workers).Select(w => Task.Factory.StartNew(() =>
        {
            started.Wait();
            var rng = new Random(w + 1);
            for (int i = 0; i < Ops || (Interlocked.Read(ref moved) == 0 && i < 4 * Ops); i++)
            {
                long slot = w + Workers * rng.Next(Slots / Workers);   // each worker owns its slots
                lock (locks[slot % Stripes])
                {
                    nint p = table[slot];
                    if (p == 0)
                    {
                        p = cache.Alloc();
                        *(long*)p = slot;
                        ((long*)p)[1] = slot * 7;
                        table[slot] = p;
                    }
                    else
                    {
                        if (*(long*)p != slot || ((long*)p)[1] != slot * 7) Interlocked.Increment(ref bad);
                        if (rng.Next(3) != 0)
                        {
                            table[slot] = 0;
                            *(long*)p = -1;
                            cache.Free(p);   // often into a slab the shrinker has isolated
                        }
                    }
                }
            }
        }, TaskCreationOptions.LongRunning)).ToArray();
        Task.WaitAll(workers);
        stop.Cancel();
        shrinker.Wait();
        Assert.Equal(0, bad);
        Assert.True(Interlocked.Read(ref moved) > 0, "nothing was moved while the users ran");
        Assert.Equal(Interlocked.Read(ref moved), cache.Defrag.ObjectsMoved);
        long live = 0;
        for (long s = 0; s < Slots; s++)
        {
            nint p = table[s];
            if (p == 0) continue;
            live++;
            Assert.Equal(s, *(long*)p);
            Assert.Equal(s * 7, ((long*)p)[1]);
        }
        cache.FlushAll();   // the workers' magazines still hold objects they freed
        Assert.Equal(live, cache.CountObjects());
        cache.Shrink();
        Assert.Empty(cache.Validate());
        var st = cache.GetStatistics();
        Assert.Equal(live, st.Objects);
    }
}
