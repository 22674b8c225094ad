using Slub.Dcache;

namespace Slub.Tests.Dcache;

/// <summary><see cref="DentryCache.PartialShrinkEvictedReferenced"/> counts recently used dentries partial shrink actually freed.</summary>
public class DcacheEvictedReferencedTests
{
    private static Dentry Referenced(DentryCache dc, string name)
    {
        var d = dc.Alloc(dc.Root, name);
        dc.Add(d, InodeKind.File);
        dc.Put(d);                                  // unused, on the LRU
        dc.Put(dc.Lookup(dc.Root, name));           // used again: the referenced bit
        Assert.True((d.Flags & DentryFlags.Referenced) != 0);
        return d;
    }

    [Fact]
    public void ADentryThatGainsAReferenceAfterIsolateIsNotCountedAsEvicted()
    {
        using var a = TestAllocator.Create();
        using var dc = new SyntheticTree(0, 0).CreateCache(a, PartialShrinkMode.EvictAllUnused);
        var hot = Referenced(dc, "hot");
        var m = dc.Cache.Mobility!;
        var vector = new[] { hot.Address };
        var state = m.Isolate!(dc.Cache, vector);
        var held = dc.Lookup(dc.Root, "hot");       // a lookup between isolate and the shrink: it stays
        var results = new MigrateResult[1];
        m.Migrate(dc.Cache, vector, 0, state, results);
        dc.Put(held);                               // before asserting: unmount refuses a dentry still held
        Assert.Equal(MigrateResult.Later, results[0]);
        Assert.Equal(0, dc.PartialShrinkEvictedReferenced);

        // Without the lookup it is freed, and counted.
        var hot2 = Referenced(dc, "hot2");
        vector = [hot2.Address];
        state = m.Isolate!(dc.Cache, vector);
        m.Migrate(dc.Cache, vector, 0, state, results);
        Assert.Equal(MigrateResult.Freed, results[0]);
        Assert.Equal(1, dc.PartialShrinkEvictedReferenced);
    }
}
