using Slub.XArray;

namespace Slub.Tests.Core;

/// <summary>
/// Use after <see cref="SlabAllocator.Dispose"/>: the arenas are unmapped, so every operation that would touch a
/// cache's memory must throw <see cref="ObjectDisposedException"/> naming the cache instead of handing out or
/// writing into unmapped memory (which took the test host down with an AccessViolationException).
/// </summary>
public unsafe class AllocatorDisposeTests
{
    [Fact]
    public void AllocAfterDisposeThrowsInsteadOfHandingOutUnmappedMemory()
    {
        var a = TestAllocator.Create();
        var c = a.CreateCache("dispose_alloc", 64, flags: SlabFlags.NoMerge);
        c.Free(c.Alloc());   // the thread's magazine now holds objects of the arena
        a.Dispose();
        Assert.True(a.IsDisposed);
        var e = Assert.Throws<ObjectDisposedException>(() => c.Alloc());
        Assert.Contains("dispose_alloc", e.Message);
        Assert.Throws<ObjectDisposedException>(() => c.TryAlloc());
        Assert.Throws<ObjectDisposedException>(() => c.AllocNode(0));
        Assert.Throws<ObjectDisposedException>(() => c.AllocBulk(new nint[4]));
        Assert.Throws<ObjectDisposedException>(() => a.Kmalloc.Alloc(32));
        Assert.Throws<ObjectDisposedException>(() => a.CreateCache("dispose_new", 64));
    }

    [Fact]
    public void FreeAfterDisposeThrowsInsteadOfWritingUnmappedMemory()
    {
        var a = TestAllocator.Create();
        var c = a.CreateCache("dispose_free", 64, flags: SlabFlags.NoMerge);
        var objs = Enumerable.Range(0, 200).Select(_ => c.Alloc()).ToArray();
        a.Dispose();
        var e = Assert.Throws<ObjectDisposedException>(() => c.Free(objs[0]));
        Assert.Contains("dispose_free", e.Message);
        Assert.Throws<ObjectDisposedException>(() => c.FreeBulk(objs.AsSpan(1)));
        Assert.Throws<ObjectDisposedException>(() => c.Shrink());
        Assert.Throws<ObjectDisposedException>(() => c.Validate());
    }

    [Fact]
    public void DebugCacheAfterDisposeThrows()
    {
        var a = TestAllocator.Create(slubDebug: "FZP");
        var c = a.CreateCache("dispose_debug", 64);
        nint p = c.Alloc();
        a.Dispose();
        Assert.Throws<ObjectDisposedException>(() => c.Alloc());
        Assert.Throws<ObjectDisposedException>(() => c.Free(p));
    }

    [Fact]
    public void HandleTableAfterDisposeThrowsInsteadOfReturningUnmappedPayload()
    {
        var a = TestAllocator.Create();
        var t = new MovableHandleTable(a, "dispose_handles", 16);
        long h = t.Allocate();
        a.Dispose();
        var e = Assert.Throws<ObjectDisposedException>(() => { using var s = t.Access(h); s.Bytes[0] = 1; });
        Assert.Contains("dispose_handles", e.Message);
        Assert.Throws<ObjectDisposedException>(() => t.AddressOf(h));
        Assert.Throws<ObjectDisposedException>(() => t.Allocate());
        Assert.Throws<ObjectDisposedException>(() => t.Free(h));
    }

    [Fact]
    public void XArrayOfADisposedAllocatorReadsNullAndRefusesWrites()
    {
        var a = TestAllocator.Create();
        var xa = new Slub.XArray.XArray(allocator: a);
        for (ulong i = 0; i < 5000; i += 7) xa.StoreValue(i, i);   // a tree of nodes in the arena
        a.Dispose();
        Assert.True(xa.Load(14).IsNull);
        Assert.False(xa.TryGetValue(14, out _));
        using (var r = xa.BeginRead()) Assert.True(r.Load(14).IsNull);
        Assert.Throws<ObjectDisposedException>(() => { xa.StoreValue(1_000_000, 1); });
        xa.Dispose();   // still idempotent and harmless
    }

    [Fact]
    public void AnXArrayCannotBeCreatedOnADisposedAllocator()
    {
        // The allocator's Dispose detaches the arrays that exist then; one created afterwards (the xa_node cache of the
        // allocator already existed) was a live array on unmapped memory's cache: a store at index 0 (no node needed)
        // succeeded and was read back, a store elsewhere failed in the node allocation.
        var a = TestAllocator.Create();
        new Slub.XArray.XArray(allocator: a).Dispose();   // creates the allocator's xa_node cache
        a.Dispose();
        var e = Assert.Throws<ObjectDisposedException>(() => new Slub.XArray.XArray(allocator: a));
        Assert.Contains("xa_node", e.Message);
    }

    [Fact]
    public void DisposeIsIdempotentWithABackgroundDefragmenter()
    {
        var a = TestAllocator.Create();
        var bg = a.StartBackgroundDefrag();
        a.Dispose();
        a.Dispose();
        Assert.False(bg.IsRunning);
        Assert.Throws<ObjectDisposedException>(() => a.StartBackgroundDefrag());
    }

    [Fact]
    public void AllocFromADestroyedCacheThrowsInsteadOfLeakingSlabs()
    {
        using var a = TestAllocator.Create();
        var c = a.CreateCache("destroyed_alloc", 64, flags: SlabFlags.NoMerge);
        c.Free(c.Alloc());
        a.DestroyCache(c);
        long freeBefore = a.Pages.Arenas.Sum(x => x.FreeFrames);
        var e = Assert.Throws<ObjectDisposedException>(() => c.Alloc());   // used to build a new slab no list knows of
        Assert.Contains("destroyed_alloc", e.Message);
        Assert.Throws<ObjectDisposedException>(() => c.AllocNode(0));
        Assert.Throws<ObjectDisposedException>(() => c.TryAllocNode(0));   // not 0: this is not out of memory
        Assert.Equal(freeBefore, a.Pages.Arenas.Sum(x => x.FreeFrames));
    }

    [Fact]
    public void SetupMobilityOnADestroyedCacheThrowsInsteadOfPuttingItBackOnTheList()
    {
        using var a = TestAllocator.Create();
        var c = a.CreateCache("destroyed_mobility", 64, ctor: _ => { });
        a.DestroyCache(c);
        Assert.Throws<ObjectDisposedException>(() => c.SetupMobility(null, (_, _, _, _, results) => results.Fill(MigrateResult.Later)));
        Assert.DoesNotContain(c, a.Caches);
        Assert.Null(a.FindCache("destroyed_mobility"));
    }

    [Fact]
    public void TheSharedAllocatorRefusesDisposal()
    {
        // `using var a = SlabAllocator.Shared;` used to unmap the memory of every default XArray and DentryCache in the process.
        var xa = new Slub.XArray.XArray();
        xa.StoreValue(3, 3);
        Assert.Throws<InvalidOperationException>(() => SlabAllocator.Shared.Dispose());
        Assert.False(SlabAllocator.Shared.IsDisposed);
        Assert.Equal(3UL, xa.Load(3).Value);
        xa.Dispose();
    }
}
