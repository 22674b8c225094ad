using Slub.Dcache;

namespace Slub.Tests.Dcache;

public class DcacheLruTests
{
    private static List<Dentry> MakeUnused(DentryCache dc, int n)
    {
        var list = new List<Dentry>();
        for (int i = 0; i < n; i++)
        {
            var d = dc.Alloc(dc.Root, $"x{i}");
            dc.Add(d, InodeKind.File);
            list.Add(d);
        }
        foreach (var d in list) dc.Put(d);   // onto the LRU in this order
        return list;
    }

    [Fact]
    public void LruIsInPutOrderAndPruneFreesTheOldest()
    {
        using var a = TestAllocator.Create();
        using var dc = new SyntheticTree(0, 0).CreateCache(a);
        var xs = MakeUnused(dc, 10);
        Assert.Equal(xs, dc.LruSnapshot());
        Assert.Equal(3, dc.Prune(3));
        Assert.Equal(xs.Skip(3), dc.LruSnapshot());
        for (int i = 0; i < 3; i++) Assert.True(dc.Lookup(dc.Root, $"x{i}").IsNull);
        Assert.Equal(1 + 7, dc.Count);
    }

    [Fact]
    public void ReferencedDentriesGetASecondChance()
    {
        using var a = TestAllocator.Create();
        using var dc = new SyntheticTree(0, 0).CreateCache(a);
        var xs = MakeUnused(dc, 5);
        var hot = dc.Lookup(dc.Root, "x0");               // used again while on the LRU
        Assert.Equal(xs[0], hot);
        dc.Put(hot);
        Assert.True((hot.Flags & DentryFlags.Referenced) != 0);
        Assert.Equal(xs, dc.LruSnapshot());               // it keeps its place until the walk sees it
        Assert.Equal(1, dc.Prune(2));                      // x0 rotated with the bit cleared, x1 freed
        Assert.Equal(new[] { xs[2], xs[3], xs[4], xs[0] }, dc.LruSnapshot());
        Assert.True((hot.Flags & DentryFlags.Referenced) == 0);
        Assert.Equal(4, dc.Prune(4));                      // no second chance left
        Assert.Empty(dc.LruSnapshot());
    }

    [Fact]
    public void DentriesInUseLeaveTheLruAndComeBackUnreferenced()
    {
        using var a = TestAllocator.Create();
        using var dc = new SyntheticTree(0, 0).CreateCache(a);
        var xs = MakeUnused(dc, 3);
        var used = dc.Lookup(dc.Root, "x0");
        Assert.Equal(0, dc.Prune(1));                      // in use: taken off the LRU, not freed
        Assert.Equal(new[] { xs[1], xs[2] }, dc.LruSnapshot());
        Assert.True((used.Flags & DentryFlags.LruList) == 0);
        dc.Put(used);                                      // back at the young end, unreferenced
        Assert.Equal(new[] { xs[1], xs[2], xs[0] }, dc.LruSnapshot());
        Assert.True((used.Flags & DentryFlags.Referenced) == 0);
        Assert.Equal(3, dc.ShrinkAll());
    }

    [Fact]
    public void AReferencedDentryKeepsItsBitWhileInUseOffTheLru()
    {
        // d_lru_isolate (in use: LRU_REMOVED) and d_lru_add touch only DCACHE_LRU_LIST, so a hot dentry that
        // the walk found in use comes back with its second chance.
        using var a = TestAllocator.Create();
        using var dc = new SyntheticTree(0, 0).CreateCache(a);
        var xs = MakeUnused(dc, 3);
        dc.Put(dc.Lookup(dc.Root, "x0"));                   // referenced while on the LRU
        var used = dc.Lookup(dc.Root, "x0");
        Assert.Equal(0, dc.Prune(1));                       // in use: off the LRU
        Assert.True((used.Flags & DentryFlags.LruList) == 0);
        Assert.True((used.Flags & DentryFlags.Referenced) != 0);
        dc.Put(used);                                       // back at the young end, still referenced
        Assert.Equal(new[] { xs[1], xs[2], xs[0] }, dc.LruSnapshot());
        Assert.True((used.Flags & DentryFlags.Referenced) != 0);
        Assert.Equal(2, dc.Prune(3));                       // x1 and x2 go, x0 is rotated
        Assert.Equal(new[] { xs[0] }, dc.LruSnapshot());
        var again = dc.Lookup(dc.Root, "x0");
        Assert.False(again.IsNull);
        dc.Put(again);
        Assert.Equal(1, dc.ShrinkAll());
    }

    [Fact]
    public void NegativeDentriesAreCachedAndReclaimedLikeOthers()
    {
        using var a = TestAllocator.Create();
        var tree = new SyntheticTree(2, 2);
        using var dc = tree.CreateCache(a);
        Assert.Equal(InodeKind.Negative, dc.LookupPath("d0/nope").Kind);
        Assert.Equal(InodeKind.Negative, dc.LookupPath("nope/deeper").Kind);
        long probes = tree.Probes;
        var r = dc.LookupPath("d0/nope");
        Assert.Equal(InodeKind.Negative, r.Kind);
        Assert.Equal(0, r.FileSystemQueries);
        Assert.Equal(probes, tree.Probes);
        Assert.Equal(2, dc.GetStatistics().Negative);
        Assert.Equal($"{dc.Count}\t{dc.GetStatistics().Unused}\t45\t0\t2\t0", dc.DentryState());
        var neg = dc.Lookup(dc.Lookup(dc.Root, "d0") is var d0 ? d0 : default, "nope");
        Assert.True(neg.IsNegative);
        dc.Put(neg); dc.Put(d0);
        dc.ShrinkAll();
        Assert.Equal(0, dc.GetStatistics().Negative);
        Assert.Equal(1, dc.Count);
        Assert.Equal(InodeKind.File, dc.LookupPath("d1/f1").Kind);
    }
}
