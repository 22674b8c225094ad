using CsCheck;

namespace Slub.Tests.Core;

public unsafe class SlubModelTests
{
    // An operation: kind (0 alloc, 1 free, 2 shrink, 3 flush, 4 bulk alloc, 5 bulk free), cpu, amount, pick.
    private static readonly Gen<(int Kind, int Cpu, int Amount, int Pick)[]> Ops =
        Gen.Select(Gen.Int[0, 5], Gen.Int[0, 2], Gen.Int[1, 40], Gen.Int[0, int.MaxValue]).Array[1, 120];

    [Fact]
    public void RandomOperationsKeepEveryCountExact()
    {
        Ops.Sample(ops =>
        {
            using var a = TestAllocator.Create(nodes: 2, cpus: 3, mbPerNode: 16);
            var cache = a.CreateCache("model", 96, flags: SlabFlags.NoMerge);
            var live = new Dictionary<nint, long>();   // the model: live object → stamp
            long stamp = 0;
            foreach (var (kind, cpu, amount, pick) in ops)
            {
                switch (kind)
                {
                    case 0:
                        for (int i = 0; i < amount; i++)
                        {
                            nint p = cache.TryAllocOnCpu(cpu);
                            Assert.NotEqual(0, p);
                            Assert.False(live.ContainsKey(p), "object handed out twice");
                            *(long*)p = ++stamp; live[p] = stamp;
                        }
                        break;
                    case 1:
                        for (int i = 0; i < amount && live.Count > 0; i++)
                        {
                            nint p = live.Keys.ElementAt((pick + i) % live.Count);
                            Assert.Equal(live[p], *(long*)p);
                            live.Remove(p);
                            cache.FreeOnCpu(cpu, p);
                        }
                        break;
                    case 2: cache.Shrink(); break;
                    case 3: cache.FlushAll(); break;
                    case 4:
                        var buf = new nint[amount];
                        Assert.Equal(amount, cache.AllocBulk(buf));
                        foreach (var p in buf) { Assert.False(live.ContainsKey(p)); *(long*)p = ++stamp; live[p] = stamp; }
                        break;
                    case 5:
                        var take = live.Keys.Take(amount).ToArray();
                        foreach (var p in take) live.Remove(p);
                        cache.FreeBulk(take);
                        break;
                }
            }
            foreach (var (p, s) in live) Assert.Equal(s, *(long*)p);
            // Objects never overlap: distinct slot addresses of a 96-byte cache are ≥ slab_size apart.
            var sorted = live.Keys.OrderBy(p => p).ToArray();
            for (int i = 1; i < sorted.Length; i++) Assert.True(sorted[i] - sorted[i - 1] >= cache.SlabSize);
            cache.FlushAll();
            var st = cache.GetStatistics();
            Assert.Equal(live.Count, st.Objects);
            Assert.Equal(0, st.CpuSlabs);
            Assert.Equal(st.Slabs * cache.ObjectsPerSlab, st.TotalObjects);
            Assert.True(st.Slabs >= st.OptimalSlabs);
            Assert.Empty(cache.Validate());
            foreach (var p in live.Keys) cache.Free(p);
            cache.Shrink();
            Assert.Equal(0, cache.GetStatistics().Slabs);
        }, iter: 80);
    }

    [Fact]
    public void EmptySlabsStayOnPartialUntilMinPartialThenAreFreed()
    {
        using var a = TestAllocator.Create(cpus: 1);
        var cache = a.CreateCache("minpartial", 512, flags: SlabFlags.NoMerge);
        int per = cache.ObjectsPerSlab;
        var objs = new List<nint>();
        for (int i = 0; i < per * 20; i++) objs.Add(cache.TryAllocOnCpu(0));
        cache.FlushAll();
        foreach (var p in objs) cache.FreeOnCpu(0, p);
        cache.FlushAll();
        var st = cache.GetStatistics();
        Assert.Equal(0, st.Objects);
        Assert.Equal(cache.MinPartial, st.Partial);   // min_partial empty slabs kept, the rest freed
        Assert.Equal(cache.MinPartial, st.Slabs);
        cache.Shrink();
        Assert.Equal(0, cache.GetStatistics().Slabs);
    }

    [Fact]
    public void ObjectsOnCpuFreeListsCountAsInUseLikeTheKernel()
    {
        using var a = TestAllocator.Create(cpus: 1);
        var cache = a.CreateCache("cpucount", 64, flags: SlabFlags.NoMerge);
        nint p = cache.TryAllocOnCpu(0);
        var st = cache.GetStatistics();
        Assert.Equal(1, st.CpuSlabs);
        Assert.Equal(cache.ObjectsPerSlab, st.Objects);   // the whole CPU slab reads as in use
        cache.FlushAll();
        Assert.Equal(1, cache.GetStatistics().Objects);
        cache.Free(p);
    }

    [Fact]
    public void AllocNodeHonoursTheNode()
    {
        using var a = TestAllocator.Create(nodes: 3, cpus: 2);
        var cache = a.CreateCache("nodes", 128, flags: SlabFlags.NoMerge);
        for (int node = 0; node < 3; node++)
            for (int i = 0; i < 100; i++)
                Assert.Equal(node, a.Pages.NodeOf(cache.AllocNode(node)));
        var st = cache.GetStatistics();
        Assert.All(st.Nodes, n => Assert.True(n.Slabs > 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => cache.AllocNode(3));
    }

    [Fact]
    public void ConstructorRunsOncePerObjectWhenItsSlabIsCreated()
    {
        using var a = TestAllocator.Create(cpus: 1);
        long calls = 0;
        var cache = a.CreateCache("ctor", 64, ctor: p => { Interlocked.Increment(ref calls); *(long*)p = 0x5a5a; });
        var objs = Enumerable.Range(0, 1000).Select(_ => cache.Alloc()).ToList();
        long slabs = cache.GetStatistics().Slabs;
        Assert.Equal(slabs * cache.ObjectsPerSlab, calls);
        foreach (var p in objs) Assert.Equal(0x5a5a, *(long*)p);
        foreach (var p in objs) { *(long*)p = 7; cache.Free(p); }
        var again = Enumerable.Range(0, 1000).Select(_ => cache.Alloc()).ToList();
        // Exactly once per slot of every slab ever created: never on allocation, even when slabs were
        // freed and made again in between.
        Assert.Equal(cache.Events.AllocSlab * cache.ObjectsPerSlab, calls);
        // A reused object keeps what its last user left; one never handed out is still as constructed.
        Assert.All(again, p => Assert.True(*(long*)p is 7 or 0x5a5a));
        Assert.Contains(again, p => *(long*)p == 7);
    }

    [Fact]
    public void MergingReturnsTheSameCacheUnderAnAlias()
    {
        using var a = TestAllocator.Create();
        var x = a.CreateCache("merge_a", 200);
        var y = a.CreateCache("merge_b", 196);
        Assert.Same(x, y);
        Assert.Equal(["merge_b"], x.AliasNames);
        var z = a.CreateCache("merge_c", 200, ctor: _ => { });   // a constructor never merges
        Assert.NotSame(x, z);
        Assert.Throws<ArgumentException>(() => a.CreateCache("merge_a", 64));
        Assert.Throws<ArgumentException>(() => a.CreateCache("bad/name", 64));
    }

    [Fact]
    public void MergingAlignsTheRequestedSizeAsFindMergeableDoes()
    {
        using var a = TestAllocator.Create();
        var x = a.CreateCache("mal_a", 64);
        var y = a.CreateCache("mal_b", 56, align: 64);   // ALIGN(56, 64) = 64: the same slot
        Assert.Same(x, y);
    }

    [Fact]
    public void MergingRaisesTheObjectSizeToTheLargestName()
    {
        using var a = TestAllocator.Create();
        var x = a.CreateCache("mos_a", 60);
        var y = a.CreateCache("mos_b", 64);
        Assert.Same(x, y);
        Assert.Equal(64, x.ObjectSize);                    // as the kernel's __kmem_cache_alias: max of the names
        nint p = y.Alloc();
        Assert.Equal(64, a.Kmalloc.UsableSize(p));         // mos_b's user asked for 64 bytes
        Assert.Equal("64", a.Sysfs.Read("mos_a/object_size").Trim());
        y.Free(p);
    }

    [Fact]
    public void ABulkFreeWithABadPointerFreesNothing()
    {
        using var a = TestAllocator.Create(cpus: 1);
        var c = a.CreateCache("bulkbad", 64, flags: SlabFlags.NoMerge);
        var objs = Enumerable.Range(0, 200).Select(_ => c.Alloc()).ToList();
        // objs[0] and objs[1] sit in a full slab, objs[199] in the CPU slab; the third pointer is bad.
        var e = Assert.Throws<InvalidFreeException>(() => c.FreeBulk([objs[199], objs[0], objs[1] + 8, objs[2]]));
        Assert.Equal(objs[1] + 8, e.Object);
        c.FlushAll();
        Assert.Equal(200, c.GetStatistics().Objects);   // none of them was freed
        Assert.Empty(c.Validate());
        c.FreeBulk(objs.ToArray());                      // and each can still be freed exactly once
        c.FlushAll();
        Assert.Equal(0, c.GetStatistics().Objects);
        Assert.Empty(c.Validate());
    }

    [Fact]
    public void DestroyingAMergedCacheByItsFirstNameKeepsTheOtherName()
    {
        using var a = TestAllocator.Create();
        var x = a.CreateCache("dm_a", 200);
        var y = a.CreateCache("dm_b", 196);
        Assert.Same(x, y);
        a.DestroyCache(x);                       // dm_a's user is done; dm_b's goes on
        Assert.Null(a.FindCache("dm_a"));
        Assert.Same(y, a.FindCache("dm_b"));
        Assert.Equal("dm_b", y.Name);
        Assert.NotSame(y, a.CreateCache("dm_a", 8, flags: SlabFlags.NoMerge));   // the destroyed name is free again
        a.DestroyCache(y, "dm_b");
        Assert.Null(a.FindCache("dm_b"));
    }

    private sealed class NodeHog : Slub.Pages.PageBlock;

    /// <summary>Two 4 MiB nodes, node 0 taken whole by a page block: an allocation there must fall back to node 1.</summary>
    private static SlabAllocator WithNodeZeroFull(string slubDebug)
    {
        var a = TestAllocator.Create(nodes: 2, cpus: 2, mbPerNode: 4, slubDebug: slubDebug);
        Assert.True(a.Pages.TryAllocate(Slub.Pages.BuddyArena.MaxOrder, 0, new NodeHog(), exactNode: true));
        return a;
    }

    [Fact]
    public void ADebugAllocationOnAFullNodeTakesOneSlabElsewhere()
    {
        using var a = WithNodeZeroFull("FZ");
        var c = a.CreateCache("dbgnodefull", 256, flags: SlabFlags.NoMerge);
        nint p = c.AllocNode(0);                  // used to add slabs on node 1 until it ran out too, then throw
        Assert.Equal(1, a.Pages.NodeOf(p));
        Assert.Equal(1, c.GetStatistics().Slabs);
        c.Free(p);
    }

    [Fact]
    public void DestroyRefusesACacheOfAnotherAllocator()
    {
        using var a = TestAllocator.Create();
        using var b = TestAllocator.Create();
        var c = b.CreateCache("theirs", 64, flags: SlabFlags.NoMerge);
        var e = Assert.Throws<ArgumentException>(() => a.DestroyCache(c));
        Assert.Contains("theirs", e.Message);
        Assert.Same(c, b.FindCache("theirs"));
        c.Free(c.Alloc());                       // still a working cache of b (it used to be marked destroyed)
        Assert.Throws<ArgumentNullException>(() => a.DestroyCache(null!));
    }

    [Fact]
    public void DestroyRefusesWhileObjectsRemain()
    {
        using var a = TestAllocator.Create();
        var c = a.CreateCache("destroy", 64, flags: SlabFlags.NoMerge);
        nint p = c.Alloc();
        var e = Assert.Throws<CacheBusyException>(() => a.DestroyCache(c));
        Assert.Contains("destroy", e.Message);
        Assert.Same(c, a.FindCache("destroy"));
        c.Free(p);
        a.DestroyCache(c);
        Assert.Null(a.FindCache("destroy"));
    }

    [Fact]
    public void OutOfMemoryIsACleanFailure()
    {
        using var a = TestAllocator.Create(cpus: 1, mbPerNode: 4);
        var c = a.CreateCache("oom", 4096, flags: SlabFlags.NoMerge);
        var objs = new List<nint>();
        nint p;
        while ((p = c.TryAlloc()) != 0) objs.Add(p);
        Assert.True(objs.Count >= 1000);
        Assert.Throws<SlabOutOfMemoryException>(() => c.Alloc());
        c.Free(objs[^1]);
        Assert.NotEqual(0, c.TryAlloc());   // works again once memory is back
    }

    [Fact]
    public void KmallocPicksSizeClassesAndLargeBlocks()
    {
        using var a = TestAllocator.Create();
        Assert.Equal("kmalloc-96", a.Kmalloc.CacheFor(65)!.Name);
        Assert.Equal("kmalloc-192", a.Kmalloc.CacheFor(129)!.Name);
        Assert.Equal("kmalloc-256", a.Kmalloc.CacheFor(193)!.Name);
        Assert.Equal("kmalloc-8k", a.Kmalloc.CacheFor(8192)!.Name);
        Assert.Null(a.Kmalloc.CacheFor(8193));
        nint small = a.Kmalloc.Alloc(100), large = a.Kmalloc.Alloc(100_000);
        Assert.Equal(128, a.Kmalloc.UsableSize(small));
        Assert.Equal(128 * 1024, a.Kmalloc.UsableSize(large));
        a.Kmalloc.Free(small);
        a.Kmalloc.Free(large);
        Assert.Throws<InvalidFreeException>(() => a.Kmalloc.Free(large + 8));
    }

    [Fact]
    public void KfreeSaysWhyALargePointerIsInvalid()
    {
        // Both used to say only "kfree: invalid pointer 0x…".
        using var a = TestAllocator.Create();
        nint large = a.Kmalloc.Alloc(100_000), other = a.Kmalloc.Alloc(100_000);
        var inside = Assert.Throws<InvalidFreeException>(() => a.Kmalloc.Free(large + 4096));
        Assert.Contains($"kfree: invalid pointer 0x{large + 4096:x}: inside the large kmalloc block at 0x{large:x}, not its start", inside.Message);
        a.Kmalloc.Free(large);
        var twice = Assert.Throws<InvalidFreeException>(() => a.Kmalloc.Free(large));
        Assert.Contains($"kfree: invalid pointer 0x{large:x}: not in an allocated block (never allocated, or already freed)", twice.Message);
        Assert.Equal(large, twice.Object);
        a.Kmalloc.Free(other);                          // the refused frees changed nothing
    }

    [Fact]
    public void KmallocAboveTheLargestPageBlockIsRefusedByItsSize()
    {
        using var a = TestAllocator.Create();
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => a.Kmalloc.Alloc(int.MaxValue));
        Assert.Equal("size", e.ParamName);                 // was "order", from deep inside the page allocator
        Assert.Contains("2147483647", e.Message);
        Assert.NotEqual(0, a.Kmalloc.Alloc(4 << 20));       // the largest block itself is fine
    }

    [Fact]
    public void InvalidFreesNameTheCacheAndChangeNothing()
    {
        using var a = TestAllocator.Create();
        var c = a.CreateCache("victim", 64, flags: SlabFlags.NoMerge);
        var other = a.CreateCache("other", 64, flags: SlabFlags.NoMerge);
        nint p = c.Alloc(), q = other.Alloc();
        var e1 = Assert.Throws<InvalidFreeException>(() => c.Free(p + 8));
        Assert.Contains("victim", e1.Message);
        Assert.Contains("not at an object boundary", e1.Message);
        var e2 = Assert.Throws<InvalidFreeException>(() => c.Free(q));
        Assert.Contains("from cache other", e2.Message);
        Assert.Throws<InvalidFreeException>(() => c.Free(12345));
        c.Free(p);
        Assert.Throws<InvalidFreeException>(() => c.Free(p));   // immediate double free is caught even without debug
        other.Free(q);
        c.FlushAll();
        Assert.Equal(0, c.GetStatistics().Objects);
        Assert.Empty(c.Validate());
    }
}
