namespace Slub.Tests.Core;

/// <summary>The CONFIG_SLUB_STATS-style event counters (<see cref="CacheEventCounters"/>) count the kernel's events.</summary>
public class EventCounterTests
{
    [Fact]
    public void CpuSlabFlushCountsFlushesNotEveryDeactivation()
    {
        using var a = TestAllocator.Create(nodes: 2, cpus: 1);
        var cache = a.CreateCache("events", 64, flags: SlabFlags.NoMerge);
        nint onNode0 = cache.AllocNode(0);
        nint onNode1 = cache.AllocNode(1);   // the CPU slab is on node 0: deactivated for a node-1 slab
        Assert.Equal(1, cache.Events.AllocNodeMismatch);
        Assert.Equal(2, cache.Events.AllocSlab);
        Assert.Equal(0, cache.Events.CpuSlabFlush);

        cache.FlushAll();   // flush_slab of the one CPU slab
        Assert.Equal(1, cache.Events.CpuSlabFlush);
        cache.FlushAll();   // no CPU slab left: nothing to flush, nothing counted
        Assert.Equal(1, cache.Events.CpuSlabFlush);

        cache.Free(onNode0);
        cache.Free(onNode1);
    }
}
