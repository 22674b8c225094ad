using Slub.Benchmarks.Allocators;

namespace Slub.Benchmarks.Mobility;

/// <summary>
/// A movable 64-byte cache after a churn: N objects allocated, 70% freed at random (<see cref="Fragmentation"/>),
/// leaving slabs about 30% used. Built outside the measured region (IterationSetup) and thrown away after.
/// </summary>
/// <remarks>
/// The allocator has one CPU slot (<c>Cpus = 1</c>): with per-CPU state chosen by the core the thread runs
/// on, a thread migrating between the 2 cores mid-setup would leave a different slab layout each time; with
/// one slot the layout is a function of the seed only, so every iteration defragments the same state.
/// </remarks>
public sealed class FragmentedCache : IDisposable
{
    public SlabAllocator Allocator { get; }
    public KmemCache Cache { get; }
    public MovableObjectTable Table { get; }
    public CacheStatistics Before { get; }

    /// <param name="objects">Objects allocated before the churn.</param>
    /// <param name="moveNothing">See <see cref="MovableObjectTable"/>.</param>
    /// <param name="freePageReportingDelay">The allocator's <see cref="SlabOptions.FreePageReportingDelay"/>; null = the
    /// default. Measurements pass <see cref="Timeout.InfiniteTimeSpan"/> or zero, so no timer thread gives pages back
    /// while they time (its CPU time would fall outside the measuring thread's).</param>
    /// <param name="slotsOf64">See <see cref="MovableObjectTable.CreateMovableCache"/>.</param>
    public FragmentedCache(int objects, bool moveNothing = false, TimeSpan? freePageReportingDelay = null, bool slotsOf64 = false)
    {
        Allocator = KmemCacheAllocator.CreateAllocator(cpus: 1, freePageReportingDelay);
        Table = new MovableObjectTable(objects, moveNothing);
        Cache = Table.CreateMovableCache(Allocator, "frag-64", slotsOf64);
        for (int i = 0; i < objects; i++) Table.Store(i, Cache.Alloc());
        foreach (int i in Fragmentation.IndicesToFree(objects)) Table.Release(Cache, i);
        Cache.FlushAll();   // the CPU slab goes back to the node lists, as shrink would do first anyway
        Before = Cache.GetStatistics();
    }

    public void Dispose() => Allocator.Dispose();
}
