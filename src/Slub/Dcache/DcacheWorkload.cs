using System.Diagnostics;

namespace Slub.Dcache;

/// <summary>Parameters of <see cref="DcacheWorkload.Run"/>.</summary>
public sealed record DcacheWorkloadOptions
{
    /// <summary>Directory tree to walk (read only; nothing on disk is changed).</summary>
    public string Root { get; init; } = "/usr";
    /// <summary>At most this many existing entries are walked (breadth first).</summary>
    public int MaxEntries { get; init; } = 20_000;
    /// <summary>One missing name is looked up after every this many entries (negative dentries interleaved with positive ones); 0 = none.</summary>
    public int MissingEvery { get; init; } = 8;
    /// <summary>Share of paths looked up again after the walk (they get the LRU's referenced bit).</summary>
    public double HotFraction { get; init; } = 0.10;
    /// <summary>Share of paths kept referenced during pressure and SMO, as open files and working directories are.</summary>
    public double PinnedFraction { get; init; } = 0.01;
    /// <summary>Share of paths invalidated, as deletes or changes on disk would.</summary>
    public double InvalidateFraction { get; init; } = 0.02;
    /// <summary>Share of the unused dentries the LRU shrinker reclaims (memory pressure).</summary>
    public double PressureFraction { get; init; } = 0.90;
    /// <summary>What partial shrink evicts.</summary>
    public PartialShrinkMode Mode { get; init; } = PartialShrinkMode.WholeSlabsOnly;
    /// <summary>SMO pass: the series' "empty every candidate" or the fill-fullest-first policy.</summary>
    public DefragPolicy Policy { get; init; } = DefragPolicy.EmptyAllCandidates;
    /// <summary>Seed of the random choice of hot, pinned and invalidated paths.</summary>
    public int Seed { get; init; } = 1;
}

/// <summary>What <see cref="DcacheWorkload.Run"/> measured. Slab counts are of the <c>dentry</c> cache after a CPU flush.
/// <c>Elapsed</c> is the whole workload (walking the tree included); <c>ShrinkElapsed</c> the SMO shrink alone, of which
/// <c>ShrinkCompileTime</c> went to compiling code on the shrinking thread (the dentry callbacks on first use).</summary>
public sealed record DcacheWorkloadResult(
    string Root, int Paths, int MissingPaths, int Pinned, int Invalidated,
    long DentriesPopulated, long SlabsPopulated,
    long DentriesAfterPressure, long SlabsAfterPressure, long OptimalAfterPressure,
    long DentriesAfterSmo, long SlabsAfterSmo, long OptimalAfterSmo,
    long SmoObjectsFreed, long SmoObjectsBusy, long SmoSlabsFreed, long SmoEvictedReferenced,
    int HotPaths, int HotCachedBeforeSmo, int HotCachedAfterSmo,
    int Verified, int Mismatches, int VerifyFileSystemQueries, int ObjectsPerSlab, TimeSpan Elapsed,
    int ObjectSize = 0, int Order = 0, long PartialAfterPressure = 0, long PartialAfterSmo = 0, TimeSpan ShrinkElapsed = default,
    TimeSpan ShrinkCompileTime = default)
{
    /// <summary>A multi-line human-readable report of the main figures.</summary>
    public override string ToString() =>
        $"dcache workload on {Root}: {Paths} paths ({MissingPaths} missing), {Pinned} pinned, {Invalidated} invalidated\n" +
        $"  populated:       {DentriesPopulated,8} dentries in {SlabsPopulated,6} slabs\n" +
        $"  after pressure:  {DentriesAfterPressure,8} dentries in {SlabsAfterPressure,6} slabs (optimal {OptimalAfterPressure})\n" +
        $"  after SMO:       {DentriesAfterSmo,8} dentries in {SlabsAfterSmo,6} slabs (optimal {OptimalAfterSmo}); " +
        $"freed {SmoObjectsFreed} dentries ({SmoEvictedReferenced} with the referenced bit), {SmoSlabsFreed} slabs, {SmoObjectsBusy} busy, in {ShrinkElapsed.TotalMilliseconds:F1} ms\n" +
        $"  hot paths:       {HotPaths}: {HotCachedBeforeSmo} cached before SMO, {HotCachedAfterSmo} after\n" +
        $"  verify:          {Verified} paths, {Mismatches} mismatches, {VerifyFileSystemQueries} file-system queries; {Elapsed.TotalMilliseconds:F0} ms";
}

/// <summary>
/// The dcache fragmentation workload (notes §4): walk a real tree to populate the cache, touch a hot share,
/// pin a few, invalidate a few, let the LRU shrinker reclaim most unused dentries (leaving survivors scattered
/// over the slabs), run SMO partial shrink on the <c>dentry</c> cache, and check every path still resolves as
/// the file system says. Reusable by the CLI demo and the benchmarks.
/// </summary>
public static class DcacheWorkload
{
    /// <summary>Runs the workload once on a new <see cref="DentryCache"/> in <paramref name="allocator"/> over <see cref="DcacheWorkloadOptions.Root"/> and returns what it measured. Reads the file system, never writes it.</summary>
    public static DcacheWorkloadResult Run(SlabAllocator allocator, DcacheWorkloadOptions options)
    {
        ArgumentNullException.ThrowIfNull(allocator);
        ArgumentNullException.ThrowIfNull(options);
        var clock = Stopwatch.StartNew();
        var rng = new Random(options.Seed);
        string root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(options.Root));
        var (paths, missing) = Enumerate(root, options.MaxEntries, options.MissingEvery);

        using var dc = new DentryCache(root, allocator, new DentryCacheOptions
        {
            PartialShrink = options.Mode,
            HashBits = DentryHashTable.BitsFor(paths.Count),
        });
        foreach (var p in paths) dc.LookupPath(p);
        var populated = Snapshot(dc);

        var hot = paths.Where(_ => rng.NextDouble() < options.HotFraction).ToList();
        foreach (var p in hot) dc.LookupPath(p);
        var pins = new List<Dentry>();
        foreach (var p in paths)
            if (rng.NextDouble() < options.PinnedFraction) pins.Add(dc.Resolve(p, out _));
        int invalidated = 0;
        foreach (var p in paths)
            if (rng.NextDouble() < options.InvalidateFraction) { dc.Invalidate(p); invalidated++; }

        long target = (long)(dc.GetStatistics().Unused * (1 - options.PressureFraction));
        for (int round = 0; round < 1000 && dc.GetStatistics().Unused > target; round++)
            dc.Prune(Math.Min(1024, dc.GetStatistics().Unused - target));
        var pressured = Snapshot(dc);

        int hotBefore = hot.Count(dc.IsCached);
        var before = (dc.Cache.Defrag.ObjectsFreed, dc.Cache.Defrag.ObjectsBusy, dc.Cache.Defrag.SlabsFreed, dc.PartialShrinkEvictedReferenced);
        var shrinkClock = Stopwatch.StartNew();   // the compile-time interval lies inside the timed one
        var compiled = System.Runtime.JitInfo.GetCompilationTime(currentThread: true);
        dc.Cache.Shrink(options.Policy);
        compiled = System.Runtime.JitInfo.GetCompilationTime(currentThread: true) - compiled;
        shrinkClock.Stop();
        var after = Snapshot(dc);

        // The cost of eviction: hot paths that survived the LRU but not SMO now need the disk again.
        int hotAfter = hot.Count(dc.IsCached);
        foreach (var d in pins) dc.Put(d);
        int mismatches = 0, queries = 0;
        foreach (var p in paths)
        {
            var r = dc.LookupPath(p);
            queries += r.FileSystemQueries;
            if (r.Kind != FileSystemProbe.Probe(Path.Join(root, p))) mismatches++;
        }
        return new DcacheWorkloadResult(root, paths.Count, missing, pins.Count, invalidated,
            populated.Dentries, populated.Slabs,
            pressured.Dentries, pressured.Slabs, pressured.Optimal,
            after.Dentries, after.Slabs, after.Optimal,
            dc.Cache.Defrag.ObjectsFreed - before.ObjectsFreed, dc.Cache.Defrag.ObjectsBusy - before.ObjectsBusy,
            dc.Cache.Defrag.SlabsFreed - before.SlabsFreed, dc.PartialShrinkEvictedReferenced - before.PartialShrinkEvictedReferenced,
            hot.Count, hotBefore, hotAfter,
            paths.Count, mismatches, queries, dc.Cache.ObjectsPerSlab, clock.Elapsed, dc.Cache.ObjectSize, dc.Cache.Order, pressured.Partial, after.Partial,
            shrinkClock.Elapsed, compiled);
    }

    private static (long Dentries, long Slabs, long Optimal, long Partial) Snapshot(DentryCache dc)
    {
        dc.Cache.FlushAll();
        var st = dc.GetStatistics();
        return (st.Dentries, st.Slabs, st.OptimalSlabs, dc.Cache.GetStatistics().Partial);
    }

    /// <summary>Breadth-first walk of <paramref name="root"/> (not following directory links), relative paths, plus missing names interleaved.</summary>
    public static (List<string> Paths, int Missing) Enumerate(string root, int maxEntries, int missingEvery)
    {
        var paths = new List<string>();
        int missing = 0, existing = 0;
        var queue = new Queue<string>();
        queue.Enqueue("");
        var opts = new EnumerationOptions { IgnoreInaccessible = true, RecurseSubdirectories = false, AttributesToSkip = 0 };
        while (queue.Count > 0 && existing < maxEntries)
        {
            string rel = queue.Dequeue();
            IEnumerable<string> entries;
            try { entries = Directory.EnumerateFileSystemEntries(Path.Join(root, rel), "*", opts).ToList(); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { continue; }
            foreach (string full in entries)
            {
                if (existing >= maxEntries) break;
                string child = rel.Length == 0 ? Path.GetFileName(full) : rel + "/" + Path.GetFileName(full);
                paths.Add(child);
                existing++;
                if (missingEvery > 0 && existing % missingEvery == 0)
                {
                    paths.Add((rel.Length == 0 ? "" : rel + "/") + $".dcache-missing-{existing}");
                    missing++;
                }
                try
                {
                    var attrs = File.GetAttributes(full);
                    if ((attrs & FileAttributes.Directory) != 0 && (attrs & FileAttributes.ReparsePoint) == 0) queue.Enqueue(child);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
            }
        }
        return (paths, missing);
    }
}
