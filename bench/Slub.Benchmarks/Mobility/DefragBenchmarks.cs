using BenchmarkDotNet.Attributes;

namespace Slub.Benchmarks.Mobility;

/// <summary>
/// Defragmentation of a movable 64-byte cache fragmented to 30% use, beside the .NET GC compacting the same
/// number of managed 64-byte objects with the same survival pattern, in the same run.
/// </summary>
/// <remarks>
/// <para>Each iteration is one step on a freshly fragmented state, built in [IterationSetup] (outside the
/// measured region) and dropped in [IterationCleanup]; so BenchmarkDotNet runs one invocation per iteration.</para>
/// <para>The two shrink rows also compare the policies for the same state: ours (fill the fullest partial
/// slabs first) and the series' (empty every partial slab into new ones); see the Moved column.</para>
/// <para>Freed slabs go to the page allocator and stay resident (free page reporting with an infinite delay), as
/// the GC's compaction leaves its freed regions committed; <see cref="ShrinkFillFullestFirstAndReport"/> also gives
/// them back to the OS inside the measured region.</para>
/// <para><see cref="ShrinkFillFullestFirst64ByteSlots"/> is the same shrink with the GC row's footprint per object (64-byte
/// slots); the other shrink rows keep SLUB's placement of a constructor cache's free pointer (72-byte slots).</para>
/// <para>Issue #3 targets: at most 25 ns per moved object and at least 6x cheaper than the GC per object.</para>
/// </remarks>
[Config(typeof(DefragConfig))]
public class DefragBenchmarks
{
    private FragmentedCache? _cache;
    private FragmentedHeap? _heap;   // only roots the survivors while GcCompacting collects
    private DefragOutcome? _last;

    /// <summary>1,000,000 objects, as in the GC measurement the issue's ~150 ns comes from (anchors §3.6).</summary>
    [Params(1_000_000)]
    public int ObjectCount { get; set; }

    [IterationSetup(Targets = [nameof(ShrinkFillFullestFirst), nameof(ShrinkFillFullestFirstAndReport), nameof(ShrinkEmptyAllCandidates)])]
    public void FragmentCache() => _cache = new FragmentedCache(ObjectCount, freePageReportingDelay: Timeout.InfiniteTimeSpan);

    [IterationSetup(Target = nameof(ShrinkFillFullestFirst64ByteSlots))]
    public void FragmentCacheOf64ByteSlots() =>
        _cache = new FragmentedCache(ObjectCount, freePageReportingDelay: Timeout.InfiniteTimeSpan, slotsOf64: true);

    [IterationCleanup(Targets = [nameof(ShrinkFillFullestFirst), nameof(ShrinkFillFullestFirstAndReport), nameof(ShrinkEmptyAllCandidates), nameof(ShrinkFillFullestFirst64ByteSlots)])]
    public void DropCache()
    {
        _last = DefragOutcome.Of(_cache!);
        _cache!.Dispose();
        _cache = null;
    }

    [IterationSetup(Target = nameof(GcCompacting))]
    public void FragmentHeap() => _heap = new FragmentedHeap(ObjectCount);

    [IterationCleanup(Target = nameof(GcCompacting))]
    public void DropHeap() => _heap = null;

    /// <summary>Our shrink: defrag with FillFullestFirst (the default policy of Shrink()).</summary>
    [Benchmark]
    public long ShrinkFillFullestFirst() => _cache!.Cache.Shrink(DefragPolicy.FillFullestFirst);

    /// <summary>
    /// The same shrink on a cache whose slots are 64 bytes, the footprint of the GC row's objects: the free pointer
    /// lives in the object's second word (<see cref="KmemCacheArgs.FreePointerOffset"/>) instead of a word after it,
    /// SLUB's default for a constructor cache, which makes 72-byte slots (most objects then span two cache lines).
    /// </summary>
    [Benchmark]
    public long ShrinkFillFullestFirst64ByteSlots() => _cache!.Cache.Shrink(DefragPolicy.FillFullestFirst);

    /// <summary>Our shrink, then the freed pages given back to the OS (<see cref="SlabAllocator.ReportFreePages"/>).</summary>
    [Benchmark]
    public long ShrinkFillFullestFirstAndReport() => _cache!.Cache.Shrink(DefragPolicy.FillFullestFirst) + _cache.Allocator.ReportFreePages();

    /// <summary>The series' shrink: every object of every partial slab moves into new slabs.</summary>
    [Benchmark]
    public long ShrinkEmptyAllCandidates() => _cache!.Cache.Shrink(DefragPolicy.EmptyAllCandidates);

    /// <summary>The .NET GC on the same pattern: one blocking, compacting gen2 collection.</summary>
    [Benchmark(Baseline = true)]
    public void GcCompacting() => FragmentedHeap.CompactingCollection();

    /// <summary>The child process's own counts, printed into the log beside the host's replayed ones.</summary>
    [GlobalCleanup]
    public void Report()
    {
        if (_last is not null) Console.WriteLine($"// measured process, last iteration: {_last}");
    }
}
