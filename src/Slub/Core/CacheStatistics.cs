namespace Slub;

/// <summary>Figures of one node of a cache, as the per-node parts of /sys/kernel/slab show them.</summary>
public readonly record struct NodeStatistics(
    int Node, long Slabs, long Partial, long CpuSlabs, long Objects, long ObjectsPartial, long TotalObjects, long FullTracked);

/// <summary>
/// Per-CPU partial figures (sysfs <c>slabs_cpu_partial</c>): the slabs on the CPU's partial chain, their object
/// capacity, and the free objects they had when they joined the chain (Linux 5.2's <c>pobjects</c>, which the
/// free-object limit counts; objects freed into a slab while it sits on the chain are not added).
/// </summary>
public readonly record struct CpuPartialStatistics(int Cpu, int Slabs, int Objects, int FreeAtJoin);

/// <summary>
/// A snapshot of a cache's counts, computed the way SLUB's sysfs does (<c>show_slab_objects</c>):
/// <see cref="Objects"/> counts every object not free on a node partial slab, so objects on per-CPU free
/// lists count as in use, exactly as the kernel reports them.
/// An immutable snapshot (thread-safe to share); under concurrent allocation its figures are each read once, not as
/// one atomic view of the cache.
/// </summary>
public sealed record CacheStatistics(
    string Name, int ObjectSize, int SlabSize, int ObjectsPerSlab, int Order,
    IReadOnlyList<NodeStatistics> Nodes, IReadOnlyList<CpuPartialStatistics> CpuPartial)
{
    /// <summary>Slabs held, all nodes (sysfs <c>slabs</c>).</summary>
    public long Slabs => Nodes.Sum(n => n.Slabs);
    /// <summary>Slabs on the node partial lists (sysfs <c>partial</c>).</summary>
    public long Partial => Nodes.Sum(n => n.Partial);
    /// <summary>Slabs held by CPUs: CPU slabs plus per-CPU partial slabs (sysfs <c>cpu_slabs</c>).</summary>
    public long CpuSlabs => Nodes.Sum(n => n.CpuSlabs);
    /// <summary>Objects in use; objects on per-CPU free lists count as in use (sysfs <c>objects</c>).</summary>
    public long Objects => Nodes.Sum(n => n.Objects);
    /// <summary>Objects in use on node partial slabs (sysfs <c>objects_partial</c>).</summary>
    public long ObjectsPartial => Nodes.Sum(n => n.ObjectsPartial);
    /// <summary>Object capacity of all slabs held (sysfs <c>total_objects</c>).</summary>
    public long TotalObjects => Nodes.Sum(n => n.TotalObjects);
    /// <summary>Pages held by the cache's slabs.</summary>
    public long Pages => Slabs << Order;
    /// <summary>Slabs needed if every slab were full: ceil(objects / objs_per_slab).</summary>
    public long OptimalSlabs => (Objects + ObjectsPerSlab - 1) / ObjectsPerSlab;
}

/// <summary>
/// Slow-path event counters of a cache: the kernel's CONFIG_SLUB_STATS items that this allocator has, under the
/// same names. Read-only for users; approximate under concurrency (the allocator bumps them without atomics, as
/// the kernel's per-CPU stat() does, so a racing increment can be lost).
/// </summary>
public sealed class CacheEventCounters
{
    // Bumped in place by KmemCache (Stats._x++); the properties below are the public, read-only view.
    internal long _allocRefill, _allocFromPartial, _allocSlab, _allocNodeMismatch, _deactivateBypass;
    internal long _cpuPartialAlloc, _cpuPartialFree, _cpuPartialDrain, _cpuSlabFlush, _freeSlab, _orderFallback;

    /// <summary><c>alloc_refill</c>: the CPU free list was refilled from the CPU slab's own free list.</summary>
    public long AllocRefill => Volatile.Read(ref _allocRefill);
    /// <summary><c>alloc_from_partial</c>: a node partial slab became the CPU slab.</summary>
    public long AllocFromPartial => Volatile.Read(ref _allocFromPartial);
    /// <summary><c>alloc_slab</c>: a new slab was allocated from the page allocator.</summary>
    public long AllocSlab => Volatile.Read(ref _allocSlab);
    /// <summary><c>alloc_node_mismatch</c>: a node-specific allocation found the CPU slab on another node and deactivated it.</summary>
    public long AllocNodeMismatch => Volatile.Read(ref _allocNodeMismatch);
    /// <summary><c>deactivate_bypass</c>: the CPU slab was full and was dropped without a trip through the node lists.</summary>
    public long DeactivateBypass => Volatile.Read(ref _deactivateBypass);
    /// <summary><c>cpu_partial_alloc</c>: a slab from the CPU's partial chain became the CPU slab.</summary>
    public long CpuPartialAlloc => Volatile.Read(ref _cpuPartialAlloc);
    /// <summary><c>cpu_partial_free</c>: a slab was put on the CPU's partial chain.</summary>
    public long CpuPartialFree => Volatile.Read(ref _cpuPartialFree);
    /// <summary><c>cpu_partial_drain</c>: the chain was over its limit and was drained to the nodes first.</summary>
    public long CpuPartialDrain => Volatile.Read(ref _cpuPartialDrain);
    /// <summary><c>cpuslab_flush</c>: a flush (<see cref="KmemCache.FlushAll"/>, shrink, cache destruction) gave a CPU slab back to its node.</summary>
    public long CpuSlabFlush => Volatile.Read(ref _cpuSlabFlush);
    /// <summary><c>free_slab</c>: slabs whose pages went back to the page allocator.</summary>
    public long FreeSlab => Volatile.Read(ref _freeSlab);
    /// <summary><c>order_fallback</c>: a new slab got the minimum order because the preferred one could not be allocated.</summary>
    public long OrderFallback => Volatile.Read(ref _orderFallback);
}
