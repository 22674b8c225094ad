namespace Slub.Trace;

/// <summary>A line the replay skipped because it was malformed (<see cref="TraceReplayOptions.SkipBad"/>).</summary>
public sealed record BadLine(long LineNumber, string Reason, string Text);

/// <summary>One cache's state after a defrag what-if.</summary>
/// <param name="Policy">How defrag chose the slabs it emptied.</param>
/// <param name="Slabs">Slabs held afterwards.</param>
/// <param name="Partial">Node partial slabs afterwards.</param>
/// <param name="CpuSlabs">CPU slabs (the CPU slab and per-CPU partial slabs) afterwards.</param>
/// <param name="Pages">Pages held afterwards.</param>
/// <param name="ObjectsMoved">Objects the migrate callback moved.</param>
/// <param name="PagesRecovered">Pages held at the end of the trace minus <paramref name="Pages"/>.</param>
/// <param name="Objects">Objects afterwards, as sysfs counts them.</param>
/// <param name="OptimalSlabs">ceil(<paramref name="Objects"/> / objects per slab) afterwards.</param>
/// <param name="ShrinkOnlySlabs">Slabs left by a plain <c>kmem_cache_shrink</c> without object migration (flush the CPUs, free empty slabs), measured first; null when the what-if ran the reclaim-path defrag instead.</param>
/// <param name="BytesMoved"><paramref name="ObjectsMoved"/> × the traced cache's <c>object_size</c>: what the kernel's migrate would copy
/// (the replay's own objects are a word shorter in a movable cache, see docs/replay.md).</param>
/// <param name="CpuTime">CPU time of the defrag on the replaying thread: choosing slabs, the callbacks (a bulk allocation
/// per slab; a copy and a hash-map update per object), returning the old objects and freeing the emptied slabs. Compile time of the defrag path on that
/// thread is left out, so the first cache does not pay for the others.</param>
public sealed record DefragOutcome(DefragPolicy Policy, long Slabs, long Partial, long CpuSlabs, long Pages,
    long ObjectsMoved, long PagesRecovered, long Objects, long OptimalSlabs, long? ShrinkOnlySlabs,
    long BytesMoved, TimeSpan CpuTime)
{
    /// <summary>CPU nanoseconds per moved object (<see cref="CpuTime"/> / <see cref="ObjectsMoved"/>); null when nothing moved.</summary>
    public double? NanosecondsPerMovedObject => ObjectsMoved == 0 ? null : CpuTime.Ticks * 100.0 / ObjectsMoved;
}

/// <summary>One cache at the end of a replay, and after the what-if.</summary>
public sealed record CacheReplayResult
{
    /// <summary>The cache name as the trace gives it.</summary>
    public required string Name { get; init; }
    /// <summary>Slot size (the trace's <c>bytes_alloc</c>, which is the kernel's <c>slab_size</c>).</summary>
    public required int SlabSize { get; init; }
    /// <summary>Object size: the snapshot's <c>object_size</c> with <c>--geometry</c>, else the slot size.</summary>
    public required int ObjectSize { get; init; }
    /// <summary>Objects per slab of the replayed cache (<c>objs_per_slab</c>).</summary>
    public required int ObjectsPerSlab { get; init; }
    /// <summary>Slab order of the replayed cache (<c>order</c>).</summary>
    public required int Order { get; init; }
    /// <summary>The replayed cache's <c>cpu_partial</c>: the snapshot's with <see cref="TraceReplayOptions.Geometry"/> when it has the file, else the default of the rule in force.</summary>
    public uint CpuPartial { get; init; }
    /// <summary>The replayed cache's <c>min_partial</c>: the snapshot's (clamped to 5..10) when it has the file, else the default by size.</summary>
    public int MinPartial { get; init; }
    /// <summary>"bytes_alloc" (SLUB's own order rules) or "snapshot".</summary>
    public required string GeometrySource { get; init; }
    /// <summary>Why a <c>--geometry</c> snapshot entry was not used (its slot size disagrees with the trace), or null.</summary>
    public string? GeometryNote { get; init; }
    /// <summary>Allocation events replayed in this cache.</summary>
    public required long Allocs { get; init; }
    /// <summary>Free events replayed in this cache (skipped frees not included).</summary>
    public required long Frees { get; init; }
    /// <summary>Frees of objects allocated before the capture (skipped).</summary>
    public required long SkippedFrees { get; init; }
    /// <summary>Allocations of a pointer that was still live in the replay: the kernel freed it without an event we saw.</summary>
    public required long UnseenFrees { get; init; }
    /// <summary>Objects as sysfs counts them (objects free on per-CPU lists count as in use).</summary>
    public required long Objects { get; init; }
    /// <summary>Objects allocated in the trace and not freed by its end.</summary>
    public required long LiveObjects { get; init; }
    /// <summary>Slabs held at the end of the trace (sysfs <c>slabs</c>).</summary>
    public required long Slabs { get; init; }
    /// <summary>Node partial slabs at the end of the trace (sysfs <c>partial</c>).</summary>
    public required long Partial { get; init; }
    /// <summary>CPU slabs and per-CPU partial slabs at the end of the trace (sysfs <c>cpu_slabs</c>).</summary>
    public required long CpuSlabs { get; init; }
    /// <summary>ceil(objects / objects per slab).</summary>
    public required long OptimalSlabs { get; init; }
    /// <summary>Pages held at the end of the trace, before the what-if.</summary>
    public required long Pages { get; init; }
    /// <summary>Whether the what-if treated the cache as movable (see <see cref="NotMovableReason"/>).</summary>
    public required bool Movable { get; init; }
    /// <summary>Why a cache selected as movable could not be made movable, or null.</summary>
    public string? NotMovableReason { get; init; }
    /// <summary>One outcome per policy asked for, in the order asked (empty for caches that are not movable).</summary>
    public required IReadOnlyList<DefragOutcome> AfterDefrag { get; init; }
}

/// <summary>
/// A cache whose events disagree on the slot size: <see cref="BytesAlloc"/> at <see cref="LineNumber"/> differs from
/// <see cref="FirstBytesAlloc"/>, the size of its first event (at <see cref="FirstLine"/>), which the replay keeps
/// for all the cache's objects. Only the first disagreeing event of each cache is recorded.
/// </summary>
public sealed record SizeMismatch(string Cache, long LineNumber, int BytesAlloc, long FirstLine, int FirstBytesAlloc);

/// <summary>A point of the timeline: per cache (by index into <see cref="ReplayResult.Caches"/> creation order), slabs held and live objects.</summary>
public sealed record TimelineSample(long TimestampNs, long Event, long[] Slabs, long[] LiveObjects);

/// <summary>Everything a replay found.</summary>
public sealed record ReplayResult
{
    /// <summary>The trace's name as messages give it ("-" for standard input).</summary>
    public required string FileName { get; init; }
    /// <summary>Lines read, of every kind.</summary>
    public required long Lines { get; init; }
    /// <summary>Slab events read (all caches, including filtered-out ones).</summary>
    public required long Events { get; init; }
    /// <summary>Slab events applied to the replayed caches.</summary>
    public required long ReplayedEvents { get; init; }
    /// <summary>Frees of objects allocated before the capture, counted and skipped.</summary>
    public required long SkippedFrees { get; init; }
    /// <summary>Well-formed lines of other events, ignored.</summary>
    public required long OtherEvents { get; init; }
    /// <summary>Events the kernel reported lost (<c>[LOST N EVENTS]</c> lines, and the events the <c>trace</c> file's
    /// <c>entries-in-buffer/entries-written</c> header shows as overwritten): pairing is incomplete when this is not 0.</summary>
    public required long LostEvents { get; init; }
    /// <summary>kfree(NULL) and failed allocations (ptr=(null)).</summary>
    public required long NullPointers { get; init; }
    /// <summary>kmalloc allocations above 8 KiB, served by the page allocator (not replayed).</summary>
    public required long LargeKmallocs { get; init; }
    /// <summary>Malformed lines skipped (<see cref="TraceReplayOptions.SkipBad"/>).</summary>
    public required long BadLineCount { get; init; }
    /// <summary>The first malformed lines skipped (up to 20).</summary>
    public required IReadOnlyList<BadLine> BadLines { get; init; }
    /// <summary>CPUs the replay modelled.</summary>
    public required int Cpus { get; init; }
    /// <summary>Where <see cref="Cpus"/> came from: "--cpus", "#P header" (ftrace's trace file), "cpus= header" (trace-cmd report) or "this machine".</summary>
    public required string CpusSource { get; init; }
    /// <summary>Timestamp of the first slab event in nanoseconds (0 without events).</summary>
    public required long FirstTimestampNs { get; init; }
    /// <summary>Latest timestamp of a slab event in nanoseconds (0 without events).</summary>
    public required long LastTimestampNs { get; init; }
    /// <summary>
    /// Slab events stamped earlier than an event before them in the input. ftrace's <c>trace</c> and <c>trace_pipe</c>
    /// are in time order; a capture glued from <c>per_cpu</c> files is not, and the replay (which goes by line
    /// order) then pairs frees and allocations wrongly. 0 for a well-formed capture.
    /// </summary>
    public long OutOfOrderEvents { get; init; }
    /// <summary>Line of the first event counted in <see cref="OutOfOrderEvents"/> (0 if none).</summary>
    public long FirstOutOfOrderLine { get; init; }
    /// <summary>Caches whose events reported another <c>bytes_alloc</c> than their first one, once per cache, in trace order.</summary>
    public IReadOnlyList<SizeMismatch> SizeMismatches { get; init; } = [];
    /// <summary>The defrag policies compared, in the order asked, duplicates removed.</summary>
    public required IReadOnlyList<DefragPolicy> Policies { get; init; }
    /// <summary>Null: the what-if ran <c>kmem_cache_shrink</c> (ratio 100); else the reclaim-path defrag with this ratio.</summary>
    public required int? DefragUsedRatio { get; init; }
    /// <summary>Caches in the order they first appeared in the trace.</summary>
    public required IReadOnlyList<CacheReplayResult> Caches { get; init; }
    /// <summary>Samples of slabs and live objects over the trace; empty unless <see cref="TraceReplayOptions.RecordTimeline"/>.</summary>
    public required IReadOnlyList<TimelineSample> Timeline { get; init; }
    /// <summary>Time from the first to the last slab event, in seconds.</summary>
    public double Seconds => (LastTimestampNs - FirstTimestampNs) / 1e9;
}
