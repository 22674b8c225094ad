using System.Diagnostics;

namespace Slub;

/// <summary>What a migrate callback did with one object (illumos' kmem_cbrc_t: YES / DONT_NEED / LATER / NO).</summary>
public enum MigrateResult : byte
{
    /// <summary>The callback did not say; the core judges only by whether the slab emptied.</summary>
    Unreported = 0,
    /// <summary>Copied to a new object, every reference redirected, the old one freed.</summary>
    Moved,
    /// <summary>Not needed any more: freed instead of moved (the dcache's way).</summary>
    Freed,
    /// <summary>Busy now (referenced, locked); worth trying on a later pass.</summary>
    Later,
    /// <summary>Can never be moved (pinned for good).</summary>
    CannotMove,
    /// <summary>Skipped: isolate dropped it (set its entry to zero), e.g. because it was being freed.</summary>
    Skipped,
    /// <summary>
    /// Moved, like <see cref="Moved"/>, but the callback did not free the old object: the core returns every
    /// such object of the slab to it in one step after the call (no per-object <c>Free</c>). Counted as moved.
    /// The old object must already be unreferenced and back in its constructed state, exactly as before a Free.
    /// </summary>
    MovedOldLeft,
}

/// <summary>
/// Pins the objects of a slab that is about to be emptied (the series' <c>kmem_cache_isolate_func</c>).
/// </summary>
/// <remarks>
/// <para><b>Context.</b> Called with the slab's lock held: no object of this slab can be freed until it
/// returns (a concurrent free spins). It must be short, must not allocate from or free to this cache, and
/// must not block on anything a freeing thread might hold.</para>
/// <para><b>What to do.</b> Take a reference or set a flag on every object it wants moved, so the object
/// cannot be freed while migrate works on it. An object found in the middle of being freed can be
/// dropped by setting its entry to 0; migrate then sees 0 there.</para>
/// <para><b>Returns</b> private state handed unchanged to the migrate callback (may be null).</para>
/// </remarks>
public delegate object? IsolateCallback(KmemCache cache, Span<nint> objects);

/// <summary>
/// Moves (or frees) the objects isolate pinned (the series' <c>kmem_cache_migrate_func</c>).
/// </summary>
/// <remarks>
/// <para><b>Context.</b> No allocator locks held; it may block and may allocate from any cache, this one
/// included: allocations never land in the slabs being emptied, which are frozen and on no list.</para>
/// <para><b>What to do.</b> For each non-zero entry: allocate a replacement with
/// <c>cache.AllocNode(node)</c>, copy, redirect every reference, free the old object, and set its result to
/// <see cref="MigrateResult.Moved"/> — or skip the free and report <see cref="MigrateResult.MovedOldLeft"/>, and
/// the core frees all those old objects at once after the call; or free it and report
/// <see cref="MigrateResult.Freed"/>; or leave it and report <see cref="MigrateResult.Later"/> /
/// <see cref="MigrateResult.CannotMove"/>. Release the pins taken in isolate.</para>
/// <para><b>Batching (ours, not the series').</b> On the defragmenting thread, <c>cache.TryAllocNode(node)</c>
/// / <c>AllocNode(node)</c> for this cache hand out free slots of a target slab the core has reserved (the
/// fullest partial slab of the node, else a new slab) without a lock per object — and
/// <c>cache.AllocBulk(replacements, node)</c> hands out a whole batch of them in one pass, the fastest way to get
/// the call's replacements up front (<see cref="MigrationReplacements"/> does that and frees the ones left unused) — and <c>cache.Free</c> of an
/// object of the slab being emptied is deferred: the core puts all of them back in one step when the call
/// returns (or throws), before it counts results or frees the slab. Both are invisible to the callback
/// except in timing and in <see cref="KmemCache.GetStatistics"/> taken from inside the call (in-use
/// counts of that slab lag until it returns). Frees on other threads are never deferred.</para>
/// <para>Objects may be freed by their users concurrently once isolate has returned: the callback must tell
/// a freed object from its contents or from its own pin. An exception leaves the objects not yet processed
/// where they are (results already set, including <see cref="MigrateResult.MovedOldLeft"/>, still count); the
/// core restores the slabs and rethrows it wrapped in <see cref="DefragmentationException"/>.</para>
/// <para><b>Compile it optimized.</b> Defragmentation runs in bursts (a shrink of a million objects takes about
/// 11 ms) that are over before tiered compilation promotes a method from its unoptimized first tier, so a
/// callback called only during defrag runs unoptimized in every early run. The core's own defrag methods are
/// <c>[MethodImpl(MethodImplOptions.AggressiveOptimization)]</c> for this reason, and so are this library's
/// callbacks; mark yours the same way (measured with the benchmark's callback: the second shrink of a fresh
/// process cost 136–146 ns per moved object with everything tiered, 73–78 with the core and the callback compiled
/// optimized; the steady state did not change beyond the noise of the runs).</para>
/// </remarks>
public delegate void MigrateCallback(KmemCache cache, ReadOnlySpan<nint> objects, int node, object? state, Span<MigrateResult> results);

/// <summary>A cache's isolate/migrate pair.</summary>
public sealed record Mobility(IsolateCallback? Isolate, MigrateCallback Migrate);

/// <summary>How defragmentation picks the slabs it empties.</summary>
public enum DefragPolicy
{
    /// <summary>
    /// Ours: keep the fullest partial slabs as targets and empty the sparsest ones, only as many as the free
    /// slots of the targets can absorb, so objects move into existing holes and no new slab is needed.
    /// </summary>
    FillFullestFirst,
    /// <summary>The series': empty every candidate slab; with ratio 100 (shrink) every object of every partial slab moves into new slabs.</summary>
    EmptyAllCandidates,
}

/// <summary>A mobility callback threw. The core put its slabs back before rethrowing.</summary>
public sealed class DefragmentationException : Exception
{
    /// <summary>The cache being defragmented.</summary>
    public string CacheName { get; }
    /// <summary>Address of the slab whose objects the callback was handling.</summary>
    public nint SlabAddress { get; }

    /// <summary>Wraps what a mobility callback threw.</summary>
    /// <param name="cacheName">The cache being defragmented.</param>
    /// <param name="slab">Address of the slab being processed.</param>
    /// <param name="phase">Which callback failed: "isolate" or "migrate".</param>
    /// <param name="inner">The callback's exception.</param>
    public DefragmentationException(string cacheName, nint slab, string phase, Exception inner)
        : base($"{cacheName}: {phase} callback failed on slab 0x{slab:x}: {inner.Message}", inner)
    {
        CacheName = cacheName;
        SlabAddress = slab;
    }
}

/// <summary>SMO counters of a cache (the series has none). Updated atomically.</summary>
public sealed class DefragCounters
{
    internal long _moved, _freed, _later, _refused, _skipped, _unreported, _slabsFreed, _runs, _ticks, _failures, _bgCpuNs, _bgSteps, _maxHoldTicks, _maxHoldCpuNs;

    /// <summary>Objects the migrate callback moved (<see cref="MigrateResult.Moved"/>, <see cref="MigrateResult.MovedOldLeft"/>); sysfs <c>defrag_objects_moved</c>.</summary>
    public long ObjectsMoved => Volatile.Read(ref _moved);
    /// <summary>Objects the callback freed instead of moving (<see cref="MigrateResult.Freed"/>); sysfs <c>defrag_objects_freed</c>.</summary>
    public long ObjectsFreed => Volatile.Read(ref _freed);
    /// <summary>Objects left for a later pass (<see cref="MigrateResult.Later"/>, and those a throwing callback had not reported on); sysfs <c>defrag_objects_busy</c>.</summary>
    public long ObjectsBusy => Volatile.Read(ref _later);
    /// <summary>Objects the callback said can never move (<see cref="MigrateResult.CannotMove"/>); sysfs <c>defrag_objects_refused</c>.</summary>
    public long ObjectsRefused => Volatile.Read(ref _refused);
    /// <summary>Objects isolate dropped (entry set to 0) or the callback reported <see cref="MigrateResult.Skipped"/>. Not in sysfs.</summary>
    public long ObjectsSkipped => Volatile.Read(ref _skipped);
    /// <summary>Objects the callback returned without a result for (<see cref="MigrateResult.Unreported"/>). Not in sysfs.</summary>
    public long ObjectsUnreported => Volatile.Read(ref _unreported);
    /// <summary>Slabs defragmentation freed; sysfs <c>defrag_slabs_freed</c>.</summary>
    public long SlabsFreed => Volatile.Read(ref _slabsFreed);
    /// <summary>Passes of the object-moving core: per-node defrag passes (a shrink runs one per node) and each source node of a move or balance; sysfs <c>defrag_runs</c>.</summary>
    public long Runs => Volatile.Read(ref _runs);
    /// <summary>Runs ended by a callback that threw (each rethrown as <see cref="DefragmentationException"/>); sysfs <c>defrag_callback_failures</c>.</summary>
    public long CallbackFailures => Volatile.Read(ref _failures);
    /// <summary>Wall-clock time of the passes counted in <see cref="Runs"/>; sysfs <c>defrag_time_us</c>.</summary>
    public TimeSpan TimeSpent => TimeSpan.FromTicks(Volatile.Read(ref _ticks));
    /// <summary>CPU time the background defragmenter's thread spent on this cache (its own thread CPU clock).</summary>
    public TimeSpan BackgroundCpuTime => TimeSpan.FromTicks(Volatile.Read(ref _bgCpuNs) / 100);
    /// <summary>The longest time one defrag call held a node's list lock (choosing and isolating sources): what an allocating thread could wait for.</summary>
    public TimeSpan LongestListLockHold => Stopwatch.GetElapsedTime(0, Volatile.Read(ref _maxHoldTicks));
    /// <summary>The most CPU time the defragmenting thread used inside one such hold: the work done under the lock, without time the thread spent preempted.</summary>
    public TimeSpan LongestListLockHoldCpu => TimeSpan.FromTicks(Volatile.Read(ref _maxHoldCpuNs) / 100);

    internal static void RaiseMax(ref long field, long value)
    {
        for (long max = Volatile.Read(ref field); value > max; max = Volatile.Read(ref field))
            if (Interlocked.CompareExchange(ref field, value, max) == max) break;
    }

    /// <summary>Bounded steps the background defragmenter ran on this cache.</summary>
    public long BackgroundSteps => Volatile.Read(ref _bgSteps);
}
