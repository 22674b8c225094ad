namespace Slub.Benchmarks.Mobility;

/// <summary>
/// What one measured step did (counts, not time): live objects before it, objects moved (or, for the GC, survivors it compacted),
/// slabs freed, and the slab figures before and after. Computed in the host by replaying the deterministic
/// setup (<see cref="Compute"/>); the benchmark process prints its own figures at the end of its log for comparison.
/// </summary>
public sealed record DefragOutcome(long LiveObjects, long Moved, long SlabsFreed, long SlabsBefore, long SlabsAfter, long OptimalSlabs, double UsedBefore)
{
    private static readonly Dictionary<(string, int), DefragOutcome> s_cache = new();

    public static DefragOutcome Compute(string method, int objects)
    {
        lock (s_cache)
        {
            if (s_cache.TryGetValue((method, objects), out var known)) return known;
            var outcome = method switch
            {
                nameof(DefragBenchmarks.ShrinkFillFullestFirst) or nameof(DefragBenchmarks.ShrinkFillFullestFirstAndReport)
                    => Shrink(objects, DefragPolicy.FillFullestFirst),
                nameof(DefragBenchmarks.ShrinkEmptyAllCandidates) => Shrink(objects, DefragPolicy.EmptyAllCandidates),
                nameof(DefragBenchmarks.ShrinkFillFullestFirst64ByteSlots) => Shrink(objects, DefragPolicy.FillFullestFirst, slotsOf64: true),
                // The GC moves every survivor: no slabs.
                _ => new DefragOutcome(Fragmentation.Survivors(objects), Fragmentation.Survivors(objects), 0, 0, 0, 0, Fragmentation.SurvivingFraction),
            };
            s_cache[(method, objects)] = outcome;
            return outcome;
        }
    }

    private static DefragOutcome Shrink(int objects, DefragPolicy policy, bool slotsOf64 = false)
    {
        using var f = new FragmentedCache(objects, slotsOf64: slotsOf64);
        f.Cache.Shrink(policy);
        return Of(f);
    }

    /// <summary>The outcome of a shrink that has just run on <paramref name="f"/>.</summary>
    public static DefragOutcome Of(FragmentedCache f)
    {
        var after = f.Cache.GetStatistics();
        return new DefragOutcome(f.Before.Objects, f.Cache.Defrag.ObjectsMoved, f.Cache.Defrag.SlabsFreed,
            f.Before.Slabs, after.Slabs, after.OptimalSlabs, (double)f.Before.Objects / f.Before.TotalObjects);
    }
}
