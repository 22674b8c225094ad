namespace Slub;

/// <summary>
/// The defragmenting thread's private state while it migrates the objects of one cache: the slab whose
/// migrate call is running (frees of its objects by this thread are deferred) and a target slab reserved
/// for the replacements (handed out from its free map, no lock per object).
/// </summary>
/// <remarks>
/// <para><b>Why.</b> A migrate callback allocates one replacement and frees one old object per object moved.
/// Through the ordinary paths that is a CPU lock and a free-list pop (one dependent cache miss into a cold
/// target slab) plus a slab lock per free. Here the core takes a whole target slab off the partial list
/// once, hands out its free slots by scanning a private copy of its free map (the slots' addresses are
/// known without reading them), and returns the old objects to the source slab in one batch, under one
/// slab lock, when the callback returns.</para>
/// <para><b>Scope.</b> Installed in a [ThreadStatic] only for the duration of a defrag run, on the thread
/// running it; other threads never see it. <see cref="KmemCache.TryAllocNode"/> on this thread, for this
/// cache and the run's target node (or -1), takes a reserved slot; <see cref="KmemCache.Free"/> on this
/// thread of an object of <see cref="Source"/> is deferred. Every other allocation and free, on this thread
/// or any other, takes the ordinary paths. Not thread-safe: one owner thread.</para>
/// </remarks>
internal sealed class MigrationContext
{
    [ThreadStatic] private static MigrationContext? t_current;
    // A finished context kept for the thread's next run (see Recycle): a background step allocates nothing.
    [ThreadStatic] private static MigrationContext? t_spare;

    /// <summary>The context of a defrag run on this thread, or null.</summary>
    public static MigrationContext? Current => t_current;

    /// <summary>True if a defrag run of <paramref name="cache"/> is in its migration on this thread (this context or an outer one):
    /// the caller is, or is called from, one of its migrate callbacks.</summary>
    public static bool IsRunning(KmemCache cache)
    {
        for (var c = t_current; c is not null; c = c._outer)
            if (c.Cache == cache) return true;
        return false;
    }

    public KmemCache Cache { get; private set; } = null!;
    /// <summary>Node the replacements should be on.</summary>
    public int Node { get; private set; }
    private MigrationContext? _outer;

    /// <summary>The source slab whose migrate call is running (it has a free map), or null between calls.</summary>
    public Slab? Source;
    /// <summary>Objects of <see cref="Source"/> this thread freed during the call, not yet on its free list.</summary>
    public nint[] Deferred = new nint[64];
    public int DeferredCount;
    /// <summary>Slots of <see cref="Source"/> in <see cref="Deferred"/> (catches a double free inside the batch).</summary>
    public ulong[] DeferredMap = new ulong[1];

    /// <summary>The reserved target: frozen, on no list; its unhanded slots are the set bits of <see cref="Slots"/> from <see cref="Word"/> on.</summary>
    public Slab? Target;
    public ulong[] Slots = new ulong[1];
    public int Word, Words;
    /// <summary>No target could be reserved: take the ordinary path for the rest of the run.</summary>
    public bool Exhausted;
    /// <summary>The prefetch cursor over the target's slots, a few slots ahead of the one handed out: its word and the bits of that word not yet prefetched.</summary>
    public int PrefetchWord;
    public ulong PrefetchBits;
    /// <summary>
    /// Once the prefetch cursor has passed the target's last slot: the slab expected to be reserved next (the
    /// partial list's head, read without the lock), how many of its free slots were asked for, and the cursor over
    /// its free map. Null when not looked up yet for this target; <see cref="NextTargetDone"/> when nothing more to ask.
    /// </summary>
    public Slab? NextTarget;
    public bool NextTargetDone;
    public int NextTargetPrefetched, NextTargetWord;
    public ulong NextTargetBits;

    /// <summary>
    /// The paced prefetch of a source further down the run (see <c>KmemCache.PaceMigration</c>): the slab whose objects
    /// in use are asked for one per replacement handed out, and the cursor over its free map (word, and the bits
    /// of that word in use and not asked for yet).
    /// </summary>
    public Slab? PaceSource;
    public int PaceWord;
    public ulong PaceBits;
    /// <summary>Replacements handed out by <see cref="MigrationReplacements"/> pace the prefetches (set for a defrag run's migrate calls).</summary>
    public bool Paced;

    /// <summary>Results of the run's migrate calls, added to the cache's counters once at the end.</summary>
    public long Moved, Freed, Later, Refused, Skipped, Unreported;

    /// <summary>Installs a context for a defrag run of <paramref name="cache"/> on this thread. Uninstall with
    /// <see cref="Exit"/>; once its target is released and its counts taken, hand it back with <see cref="Recycle"/>.</summary>
    public static MigrationContext Enter(KmemCache cache, int node)
    {
        var ctx = t_spare ?? new MigrationContext();
        t_spare = null;
        ctx.Cache = cache;
        ctx.Node = node;
        ctx._outer = t_current;
        t_current = ctx;
        Interlocked.Increment(ref cache._migrationRuns);
        return ctx;
    }

    /// <summary>Uninstalls the context (restoring an outer one: a callback may defragment another cache).</summary>
    public void Exit()
    {
        Interlocked.Decrement(ref Cache._migrationRuns);
        t_current = _outer;
    }

    /// <summary>Makes this exited context, its target released and its counts added, the thread's spare.</summary>
    public void Recycle()
    {
        System.Diagnostics.Debug.Assert(Target is null && t_current != this);
        Source = null; DeferredCount = 0; Target = null; Exhausted = false;
        DeferredMap.AsSpan().Clear(); Slots.AsSpan().Clear();
        Word = Words = PrefetchWord = 0; PrefetchBits = 0;
        NextTarget = null; NextTargetDone = false; NextTargetPrefetched = NextTargetWord = 0; NextTargetBits = 0;
        PaceSource = null; PaceWord = 0; PaceBits = 0; Paced = false;
        Moved = Freed = Later = Refused = Skipped = Unreported = 0;
        Cache = null!; _outer = null;
        t_spare = this;
    }

    /// <summary>Records a free of an object of <see cref="Source"/>; the core pushes them all after the call.</summary>
    /// <exception cref="InvalidFreeException">The object is already free or was already freed in this call.</exception>
    public void Defer(Slab slab, nint obj)
    {
        int i = slab.SlotOf(obj);
        ulong bit = 1UL << i;
        ref ulong seen = ref DeferredMap[i >> 6];
        // The slab's own bit may be set by a concurrent free; reading it unlocked only decides an error.
        if ((seen & bit) != 0 || (Volatile.Read(ref slab.FreeMap![i >> 6]) & bit) != 0)
            throw new InvalidFreeException(Cache.Name, obj, $"kmem_cache_free({Cache.Name}): double free of object 0x{obj:x} (already free in {slab})");
        seen |= bit;
        if (DeferredCount == Deferred.Length) Array.Resize(ref Deferred, Deferred.Length * 2);
        Deferred[DeferredCount++] = obj;
    }

    /// <summary>Starts deferring frees for <paramref name="slab"/>.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]   // per source slab: see KmemCache.DefragNode
    public void BeginSource(Slab slab)
    {
        int words = slab.FreeMap!.Length;
        if (DeferredMap.Length < words) DeferredMap = new ulong[words];
        Source = slab;
    }
}
