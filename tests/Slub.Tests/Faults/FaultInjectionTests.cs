using Slub.Pages;
using Slub.Sysfs;

namespace Slub.Tests.Faults;

/// <summary>The injection mechanism itself: triggers, limits, filters, and where each rule strikes.</summary>
public class FaultInjectionTests
{
    private static KmemCache Plain(SlabAllocator a, string name) => a.CreateCache(name, 256, flags: SlabFlags.NoMerge);

    /// <summary>Allocates until a slab is needed, <paramref name="slabs"/> times; returns how many of those new-slab allocations failed.</summary>
    private static int NewSlabFailures(KmemCache c, int slabs)
    {
        int failed = 0;
        for (int i = 0; i < slabs; i++)
        {
            // Allocate exactly one slab's worth: the first allocation of each round needs a new slab.
            for (int k = 0; k < c.ObjectsPerSlab; k++)
            {
                if (c.TryAllocOnCpu(0) != 0) continue;
                failed++;
                break;
            }
        }
        return failed;
    }

    [Fact]
    public void EveryNthFailsExactlyThoseSlabAllocations()
    {
        using var a = TestAllocator.Create(cpus: 1);
        var c = Plain(a, "nth");
        a.Faults.Slab.EveryNth = 3;
        Assert.Equal(4, NewSlabFailures(c, 12));
        Assert.Equal(4, a.Faults.Slab.Failures);
        Assert.Equal(12, a.Faults.Slab.Calls);
        Assert.Equal(0, a.Faults.Page.Failures);
        Assert.Empty(c.Validate());
    }

    [Fact]
    public void TimesLimitsTheFailuresAndShorthandsAreTheSlabRule()
    {
        using var a = TestAllocator.Create(cpus: 1);
        var c = Plain(a, "times");
        a.Faults.FailEveryNth = 1;
        a.Faults.Slab.Times = 2;
        Assert.Equal(1, a.Faults.Slab.EveryNth);
        Assert.Equal(2, NewSlabFailures(c, 6));
        Assert.False(a.Faults.Slab.Enabled);
        Assert.Equal(2, a.Faults.Failures);
        a.Faults.Slab.Times = -1;
        Assert.Throws<SlabOutOfMemoryException>(() => { for (int i = 0; i < 2 * c.ObjectsPerSlab; i++) c.Alloc(); });
    }

    [Fact]
    public void SeededProbabilityIsRepeatable()
    {
        int Run()
        {
            using var a = TestAllocator.Create(cpus: 1);
            var c = Plain(a, "prob");
            a.Faults.Slab.Seed(42);
            a.Faults.Slab.Probability = 0.3;
            return NewSlabFailures(c, 200);
        }
        int first = Run();
        Assert.Equal(first, Run());
        Assert.InRange(first, 20, 110);   // 60 expected; far outside means the draw is not applied
    }

    [Fact]
    public void CacheNameAndCacheFilterRestrictWhichCachesFail()
    {
        using var a = TestAllocator.Create(cpus: 1);
        var victim = Plain(a, "victim");
        var bystander = Plain(a, "bystander");
        a.Faults.Slab.EveryNth = 1;
        a.Faults.Slab.CacheName = "victim";
        Assert.Equal(3, NewSlabFailures(victim, 3));
        Assert.Equal(0, NewSlabFailures(bystander, 3));

        // cache-filter: only caches whose failslab switch (the attribute) is on.
        a.Faults.Slab.CacheName = null;
        a.Faults.Slab.CacheFilter = true;
        Assert.Equal(0, NewSlabFailures(victim, 2));
        Assert.Equal("0\n", a.Sysfs.Read("victim/failslab"));
        a.Sysfs.Write("victim/failslab", "1\n");
        Assert.True(victim.FailSlab);
        Assert.Equal(2, NewSlabFailures(victim, 2));
        Assert.Equal(0, NewSlabFailures(bystander, 2));
        Assert.Equal(Errno.EINVAL, Assert.Throws<SysfsException>(() => a.Sysfs.Write("victim/failslab", "yes")).Errno);
        Assert.True(victim.FailSlab);
        a.Faults.Reset();
        Assert.Equal(0, NewSlabFailures(victim, 2));
    }

    [Fact]
    public void APageFaultFallsBackToTheMinimumOrderFirst()
    {
        using var a = TestAllocator.Create(cpus: 1);
        var c = a.CreateCache("fallback", 1024, flags: SlabFlags.NoMerge);
        Assert.True(c.Order > c.Geometry.MinOrderFallback);
        a.Faults.Page.EveryNth = 2;   // calls 2, 4, ...: the first attempt of every second slab fails
        nint p = 0;
        for (int i = 0; i < 4 * c.ObjectsPerSlab; i++) p = c.AllocNode(0);
        Assert.True(c.Events.OrderFallback > 0, "no slab fell back to the minimum order");
        Assert.True(a.Faults.Page.Failures > 0);
        c.FlushAll();
        Assert.Equal(4 * c.ObjectsPerSlab, c.CountObjects());
        Assert.Empty(c.Validate());
    }

    [Fact]
    public void APageFaultOnOneNodeFallsBackToAnotherNode()
    {
        using var a = TestAllocator.Create(nodes: 2, cpus: 2);
        var c = a.CreateCache("nodefall", 256, flags: SlabFlags.NoMerge);
        a.Pages.FailAllocation = (_, node) => node == 0;   // node 0 has "no memory"
        nint p = c.AllocNode(0);
        Assert.Equal(1, a.Pages.NodeOf(p));
        a.Pages.FailAllocation = null;
        c.Free(p);
        c.Shrink();                                   // the empty slab goes back
        a.Faults.Page.EveryNth = 1;
        Assert.Equal(0, c.TryAllocNode(0));           // every attempt on every node fails
        Assert.True(a.Faults.Page.Failures >= 2);
        Assert.Equal(0, c.CountObjects());
        Assert.Empty(c.Validate());
        a.Faults.Reset();
        Assert.NotEqual(0, c.TryAllocNode(0));
    }

    private sealed class Reserve : PageBlock;

    [Fact]
    public void PageRuleIgnoresBlocksNoCacheAskedForWhenFiltered()
    {
        using var a = TestAllocator.Create(cpus: 1);
        a.Faults.Page.EveryNth = 1;
        Assert.False(a.Pages.TryAllocate(0, 0, new Reserve()));   // unfiltered: every attempt fails
        a.Faults.Page.CacheName = "somecache";
        var r = new Reserve();
        Assert.True(a.Pages.TryAllocate(0, 0, r));                // filtered: raw blocks are never failed
        a.Pages.Free(r);
        Assert.Throws<ArgumentOutOfRangeException>(() => a.Faults.Page.Probability = 1.5);
    }

    [Fact]
    public void SlubDebugAMarksCachesForFailslabAndMergedCachesCannotOptIn()
    {
        using var a = TestAllocator.Create(cpus: 1, slubDebug: "A,victim*");
        var victim = a.CreateCache("victim_cache", 256);
        var other = a.CreateCache("other_cache", 256);
        Assert.True(victim.FailSlab);
        Assert.False(victim.IsDebug);                       // A marks, it does not debug
        Assert.NotSame(victim, other);                      // never merged
        Assert.Equal("1\n", a.Sysfs.Read("victim_cache/failslab"));
        a.Faults.Slab.CacheFilter = true;
        a.Faults.Slab.EveryNth = 1;
        Assert.Equal(0, victim.TryAlloc());
        Assert.NotEqual(0, other.TryAlloc());

        var merged = a.CreateCache("merged_twin", 256);     // merges into other_cache
        Assert.Same(other, merged);
        var e = Assert.Throws<SysfsException>(() => a.Sysfs.Write("merged_twin/failslab", "1"));
        Assert.Equal(Errno.EINVAL, e.Errno);
        Assert.False(other.FailSlab);
    }
}
