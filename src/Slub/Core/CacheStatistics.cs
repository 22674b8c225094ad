namespace Slub;

/// <summary>Figures of one node of a cache, as the per-node parts of /sys/kernel/slab show them.</summary>
public readonly record struct NodeStatistics(
    int Node, long Slabs, long Partial, long CpuSlabs, long Objects, long ObjectsPartial, long TotalObjects, long FullTracked);

/// <summary>Per-CPU partial figures (sysfs <c>slabs_cpu_partial</c>).</summary>
public readonly record struct CpuPartialStatistics(int Cpu, int Slabs, int Objects);

/// <summary>
/// A snapshot of a cache's counts, computed the way SLUB's sysfs does (<c>show_slab_objects</c>):
/// <see cref="Objects"/> counts every object not free on a node partial slab, so objects on per-CPU free
/// lists count as in use, exactly as the kernel reports them.
/// </summary>
public sealed record CacheStatistics(
    string Name, int ObjectSize, int SlabSize, int ObjectsPerSlab, int Order,
    IReadOnlyList<NodeStatistics> Nodes, IReadOnlyList<CpuPartialStatistics> CpuPartial)
{
    public long Slabs => Nodes.Sum(n => n.Slabs);
    public long Partial => Nodes.Sum(n => n.Partial);
    public long CpuSlabs => Nodes.Sum(n => n.CpuSlabs);
    public long Objects => Nodes.Sum(n => n.Objects);
    public long ObjectsPartial => Nodes.Sum(n => n.ObjectsPartial);
    public long TotalObjects => Nodes.Sum(n => n.TotalObjects);
    /// <summary>Pages held by the cache's slabs.</summary>
    public long Pages => Slabs << Order;
    /// <summary>Slabs needed if every slab were full: ceil(objects / objs_per_slab).</summary>
    public long OptimalSlabs => (Objects + ObjectsPerSlab - 1) / ObjectsPerSlab;
}

/// <summary>Event counters of a cache (the kernel's CONFIG_SLUB_STATS items that matter here, plus the SMO counters). Approximate under concurrency: increments are not atomic.</summary>
public sealed class CacheEventCounters
{
    public long AllocRefill, AllocFromPartial, AllocSlab, AllocNodeMismatch, DeactivateBypass;
    public long CpuPartialAlloc, CpuPartialFree, CpuPartialDrain, CpuSlabFlush, FreeSlab, OrderFallback;
}
