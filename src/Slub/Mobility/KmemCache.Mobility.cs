using System.Buffers;
using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace Slub;

// Slab Movable Objects: the mobility callbacks and the defrag core (the series' patches 01, 03 and 04).
public sealed unsafe partial class KmemCache
{
    private Mobility? _mobility;
    private int _defragUsedRatio = 30;
    private long[]? _isolated;   // per node: slabs taken off the lists by a running defrag

    /// <summary>The isolate/migrate pair, or null when objects of this cache cannot move.</summary>
    public Mobility? Mobility => Volatile.Read(ref _mobility);

    /// <summary>True if objects can be migrated (a migrate callback is set).</summary>
    public bool IsMovable => Mobility is not null;

    /// <summary>SMO counters: objects moved, freed, left busy, refused; slabs freed; runs; time.</summary>
    public DefragCounters Defrag { get; } = new();

    /// <summary>
    /// Percent (0..100, default 30): a partial slab with at most this share of its objects in use is a
    /// defragmentation candidate; 0 disables defragmentation (sysfs <c>defrag_used_ratio</c>).
    /// </summary>
    public int DefragUsedRatio
    {
        get => Volatile.Read(ref _defragUsedRatio);
        set
        {
            if ((uint)value > 100) throw new ArgumentOutOfRangeException(nameof(value), value, $"{Name}: defrag_used_ratio must be 0..100");
            Volatile.Write(ref _defragUsedRatio, value);
        }
    }

    /// <summary>
    /// <c>kmem_cache_setup_mobility</c>: makes the objects of this cache movable. Needs a constructor, because
    /// isolate may look at any slot, free or not, and must find it in a known state. The cache moves to the
    /// front of the cache list. NUMA moves must reach full slabs too: a debug cache keeps them on a list from
    /// now on (its slow paths take the list lock anyway); any other finds them on demand by scanning the
    /// node's page owners, so its allocation and free paths stay those of a plain cache.
    /// Calling it again replaces the callbacks; mobility cannot be turned off. Thread-safe.
    /// </summary>
    /// <exception cref="InvalidOperationException">The cache has no constructor.</exception>
    /// <exception cref="ObjectDisposedException">The cache is destroyed or its allocator disposed.</exception>
    public void SetupMobility(IsolateCallback? isolate, MigrateCallback migrate)
    {
        ArgumentNullException.ThrowIfNull(migrate);
        if (Constructor is null)
            throw new InvalidOperationException($"{Name}: require constructor to setup mobility");
        lock (_allocator.SlabMutex)
        {
            // A destroyed cache would be put back on the cache list by the move to the front.
            if (_destroyed) ThrowDisposed();
            _allocator.ThrowIfDisposed(Name);
            Volatile.Write(ref _isolated, _isolated ?? new long[_nodes.Length]);
            if (!_trackFull && _debug)
            {
                _trackFull = true;
                FlushAll();   // every CPU passes its lock, so nobody is still in an untracked full transition
                // Only a cache that already has slabs can have untracked full ones; the adoption walks every page block.
                if (_nodes.Any(n => Volatile.Read(ref n.NrSlabs) > 0)) AdoptUntrackedFullSlabs();
            }
            // Partial lists in fill-level buckets: allocation fills the fullest slabs, and a bounded
            // defrag step finds the sparsest at the tail without walking the list.
            foreach (var n in _nodes)
                lock (n.ListLock)
                    if (n.Partial.Buckets != PartialList.MovableBuckets) n.Partial.SetBuckets(PartialList.MovableBuckets);
            Volatile.Write(ref _mobility, new Mobility(isolate, migrate));
            _allocator.MoveToFront(this);
        }
    }

    /// <summary>Puts full slabs that were made before full-list tracking began onto their node's full list.</summary>
    private void AdoptUntrackedFullSlabs()
    {
        foreach (var arena in _pages.Arenas)
        {
            foreach (var block in arena.AllocatedBlocks())
            {
                if (block is not Slab s || s.Cache != this) continue;
                var n = _nodes[s.Node];
                lock (n.ListLock)
                {
                    SpinLockWord.Enter(ref s.LockWord);
                    // Node re-checked under the lock: a recycled descriptor may have moved to another node.
                    if (s.Node == n.Node && s.List == SlabList.None && !s.Frozen && s.Freelist == 0)
                    {
                        s.List = SlabList.Full;
                        n.Full.AddTail(s);
                    }
                    SpinLockWord.Exit(ref s.LockWord);
                }
            }
        }
    }

    internal long IsolatedSlabs(int node)
    {
        var iso = Volatile.Read(ref _isolated);
        return iso is null ? 0 : Volatile.Read(ref iso[node]);
    }

    /// <summary>
    /// <c>kmem_cache_defrag</c> for one node: if the node has more than <see cref="MaxPartial"/> partial
    /// slabs, empty the partial slabs whose use is at most <see cref="DefragUsedRatio"/> percent. Empty
    /// partial slabs are freed in any case. Returns the partial slabs left on the node. Thread-safe, like <see cref="Shrink()"/>.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The cache is destroyed or its allocator disposed.</exception>
    public long DefragmentNode(int node, DefragPolicy policy = DefragPolicy.FillFullestFirst)
    {
        if ((uint)node >= (uint)_nodes.Length) throw new ArgumentOutOfRangeException(nameof(node), node, $"{Name}: no node {node}");
        _allocator.ThrowIfDisposed(Name);
        using var run = EnterDefragRun();
        if (Volatile.Read(ref _nodes[node].Partial.Count) <= MaxPartial) return _nodes[node].Partial.Count;
        FlushMagazines();   // objects parked in thread magazines are free; let them reach their slabs first
        return DefragNode(node, node, DefragUsedRatio, policy, shrinking: false);
    }

    /// <summary>Shrink with an explicit policy (the benchmark compares both). Flushes the CPUs first. Returns the partial slabs left. Thread-safe, like <see cref="Shrink()"/>.</summary>
    public long Shrink(DefragPolicy policy)
    {
        _allocator.ThrowIfDisposed(Name);
        using var run = EnterDefragRun();
        FlushAll();
        if (Mobility is null) return DiscardEmptyAndSort();
        long left = 0;
        for (int n = 0; n < _nodes.Length; n++) left += DefragNode(n, n, 100, policy, shrinking: true);
        return left;
    }

    /// <summary>
    /// The defrag worker: choose source slabs on <paramref name="node"/>, freeze them and take them off the
    /// partial list, then for each one call isolate (slab lock held) and migrate (no locks), and finally
    /// free the slabs that emptied and put the rest back on the partial list. Returns partial slabs left.
    /// </summary>
    /// <remarks>
    /// Two ways to choose, both under the node's list lock. Unbounded calls (shrink, <see cref="DefragmentNode"/>)
    /// choose as a sort of the whole partial list fullest first would (<see cref="SelectSorted"/>, linear in the
    /// slabs it looks at: the sparse buckets up to the one where the choice stops). The
    /// background defragmenter's bounded step (<paramref name="maxSlabs"/> below int.MaxValue) looks only at
    /// the sparse end of the bucketed list (<see cref="SelectFromTail"/>), so its hold is bounded by
    /// <paramref name="maxSlabs"/>, not by the list length. Empty slabs met on the way are freed in any case.
    /// <para>The sources are emptied in address order (<see cref="SlabAddressOrder"/>; the list keeps the order
    /// chosen, the run goes through a permutation). The migrate calls run
    /// inside a <see cref="MigrationContext"/> (replacements from reserved target slabs, old objects returned
    /// per slab in one step), the sources are prefetched a few slabs ahead, and the emptied slabs go back to
    /// the page allocator in one batch.</para>
    /// <para>Compiled fully optimized up front (no tiering), as is every method of the defrag path marked
    /// "see DefragNode": with tiered compilation a long loop here would be recompiled on-stack, on this thread,
    /// while the list lock is held, and a run is over before tiering promotes what it met for the first time, so
    /// the first shrinks of a process ran unoptimized code (twice the steady-state cost in the second shrink).</para>
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal long DefragNode(int node, int targetNode, int ratio, DefragPolicy policy, bool shrinking, int maxSlabs = int.MaxValue)
    {
        var n = _nodes[node];
        var mobility = Mobility;
        long started = Stopwatch.GetTimestamp();
        var scratch = DefragScratch.Rent();
        var sources = scratch.Sources;
        var empty = scratch.Empty;
        long held, heldCpu;
        lock (n.ListLock)
        {
            held = Stopwatch.GetTimestamp();
            heldCpu = OsThreadClock.NowNanoseconds();
            bool needRoom = policy == DefragPolicy.FillFullestFirst && node == targetNode;
            if (maxSlabs < int.MaxValue && !shrinking) SelectFromTail(n, mobility, ratio, maxSlabs, needRoom, scratch);
            else SelectSorted(n, mobility, ratio, maxSlabs, needRoom, scratch);
            if (sources.Count > 0) Interlocked.Add(ref _isolated![node], sources.Count);
            heldCpu = OsThreadClock.NowNanoseconds() - heldCpu;
            held = Stopwatch.GetTimestamp() - held;
        }
        DefragCounters.RaiseMax(ref Defrag._maxHoldTicks, held);
        DefragCounters.RaiseMax(ref Defrag._maxHoldCpuNs, heldCpu);
        DiscardSlabs(empty);
        Interlocked.Add(ref Defrag._slabsFreed, empty.Count);

        Exception? failure = null;
        if (sources.Count > 0)
        {
            var order = scratch.SourceOrder(sources.Count);
            SlabAddressOrder.Fill(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(scratch.SourceAddresses), order);
            scratch.EnsureObjects(scratch.MaxSourceObjects);
            var vector = scratch.Vector;
            var results = scratch.Results;
            var emptiedSources = scratch.EmptiedFlags(sources.Count);
            var ctx = MigrationContext.Enter(this, targetNode);
            ctx.Paced = true;
            try
            {
                for (int i = 0; i < order.Length; i++)
                {
                    if (failure is not null) break;
                    PrefetchAhead(sources, order, i, ctx);
                    try
                    {
                        MoveSlab(sources[order[i]], ctx, vector, results, targetNode, mobility!, out bool emptied);
                        FinishPacedSource(ctx);
                        emptiedSources[order[i]] = emptied;
                    }
                    catch (DefragmentationException e) { failure = e; Interlocked.Increment(ref Defrag._failures); }
                }
            }
            finally
            {
                EndMigration(ctx);
                PutBackIsolated(n, sources, order, emptiedSources, scratch.Discard);
            }
        }
        scratch.Return();
        Interlocked.Increment(ref Defrag._runs);
        Interlocked.Add(ref Defrag._ticks, Stopwatch.GetElapsedTime(started).Ticks);
        if (failure is not null) throw failure;
        return Volatile.Read(ref n.Partial.Count);
    }

    /// <summary>
    /// Chooses sources as if the partial list were sorted fullest first, taking from the sparse end: each
    /// source has use at most <paramref name="ratio"/> percent, at most <paramref name="maxSlabs"/> are taken,
    /// and with <paramref name="needRoom"/> only while the slabs left have room for their objects. Empty slabs
    /// met on the way go to the scratch's empty list, sources to its source list. List lock held.
    /// </summary>
    /// <remarks>
    /// The list is already in fill-level buckets, sparsest at the tail, so only one bucket ever needs sorting:
    /// the walk goes bucket by bucket from the tail, copies each bucket (<see cref="WalkBucket"/>), orders it by
    /// exact use (a counting sort) and takes slabs sparsest first. A bucket the choice reaches is unlinked in one
    /// step and the slabs not taken from it are linked back in their order; the fuller buckets are not touched
    /// at all (a shrink at 30% use reads about 70% of the descriptors instead of every one, and relinks only the
    /// slabs it keeps from the bucket where it stops). The result is the one a sort of the whole list would give; the
    /// order within a bucket is left as it was (within 1/8 of a slab's fill, the order in which the next
    /// allocations fill them changes nothing that matters). Frees may lower a slab's use meanwhile: the
    /// choice is a heuristic, and what is taken is re-checked under its slab lock.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // see DefragNode
    private void SelectSorted(KmemCacheNode n, Mobility? mobility, int ratio, int maxSlabs, bool needRoom, DefragScratch scratch)
    {
        var empty = scratch.Empty;
        int size = (int)Math.Max(n.Partial.Count, 1);
        Slab[] slabs = ArrayPool<Slab>.Shared.Rent(size), backwards = ArrayPool<Slab>.Shared.Rent(size);
        int[] inuseOf = ArrayPool<int>.Shared.Rent(size), objectsOf = ArrayPool<int>.Shared.Rent(size);
        int[] order = ArrayPool<int>.Shared.Rent(size);
        int[] start = ArrayPool<int>.Shared.Rent(ObjectsPerSlab + 2);
        long freeInTargets = Volatile.Read(ref n.PartialFree), toMove = 0;
        long leftFree = 0, leftCapacity = 0;
        int taken = 0, buckets = n.Partial.Buckets;
        try
        {
            for (int b = buckets - 1; b >= 0; b--)
            {
                var first = n.Partial.FirstOf(b);
                if (first is null) continue;
                // Every slab from this bucket on is fuller than this bucket's sparsest fill: past the ratio, only
                // empty slabs could still be taken, and those are all in the sparsest bucket.
                if (b < buckets - 1 && (mobility is null || (first.Objects - MaxFreeOfBucket(b, buckets, first.Objects)) * 100L > (long)ratio * first.Objects)) break;
                var last = n.Partial.LastOf(b)!;
                int k = WalkBucket(first, last, slabs, backwards, size), maxObjects = 0;
                if (k < 0) break;
                for (int i = 0; i < k; i++)
                {
                    var s = slabs[i];
                    int objects = s.Objects;
                    if (objects > maxObjects) maxObjects = objects;
                    inuseOf[i] = Math.Clamp(Volatile.Read(ref s.Inuse), 0, objects);
                    objectsOf[i] = objects;
                }
                // Counting sort by use, sparsest first, stable within one fill level.
                if (start.Length < maxObjects + 2)
                {
                    ArrayPool<int>.Shared.Return(start);
                    start = ArrayPool<int>.Shared.Rent(maxObjects + 2);
                }
                Array.Clear(start, 0, maxObjects + 2);
                for (int i = 0; i < k; i++) start[inuseOf[i] + 1]++;
                for (int v = 1; v <= maxObjects + 1; v++) start[v] += start[v - 1];
                for (int i = 0; i < k; i++) order[start[inuseOf[i]]++] = i;
                // How many of the bucket, sparsest first, are taken.
                int chosen = 0;
                for (; chosen < k; chosen++)
                {
                    int i = order[chosen], inuse = inuseOf[i], free = objectsOf[i] - inuse;
                    if (inuse == 0) { freeInTargets -= free; continue; }
                    if (mobility is null || inuse * 100L > (long)ratio * objectsOf[i] || taken >= maxSlabs) break;
                    if (needRoom)
                    {
                        if (freeInTargets - free < toMove + inuse) break;
                        freeInTargets -= free;
                        toMove += inuse;
                    }
                    taken++;
                }
                // The bucket is unlinked whole and the slabs not taken are linked back, in their order: one pass
                // over the snapshot in list order, whose descriptors are asked for a few slabs ahead (following
                // the list's own links is one dependent miss after another), instead of unlinking each slab
                // taken, which writes its two neighbours at random. The chosen are marked by a use of -1.
                if (chosen == 0) break;
                for (int j = 0; j < chosen; j++) inuseOf[order[j]] = -1;
                n.Partial.UnlinkBucket(b, k);
                for (int i = 0; i < k; i++)
                {
                    if (i + DescriptorPrefetchDistance < k) PrefetchDescriptor(Unsafe.As<Slab, nint>(ref slabs[i + DescriptorPrefetchDistance]));
                    var s = slabs[i];
                    // Not chosen, or busy: back on the list (in the bucket its use now calls for).
                    if (inuseOf[i] >= 0 || !SpinLockWord.TryEnter(ref s.LockWord)) { n.Partial.AddTail(s); continue; }
                    s.Prev = s.Next = null;
                    leftFree += s.Objects - s.Inuse;
                    leftCapacity += s.Objects;
                    s.List = SlabList.None;
                    if (s.Inuse == 0) empty.Add(s);
                    else { s.Frozen = true; s.List = SlabList.Isolated; scratch.AddSource(s); }
                    SpinLockWord.Exit(ref s.LockWord);
                }
                if (chosen == k) continue;
                break;
            }
            n.LeftPartial(leftFree, leftCapacity);   // one pair of atomic adds for every slab taken (LeavePartial's, summed)
        }
        finally
        {
            Array.Clear(slabs, 0, size);
            Array.Clear(backwards, 0, size);
            ArrayPool<Slab>.Shared.Return(slabs);
            ArrayPool<Slab>.Shared.Return(backwards);
            ArrayPool<int>.Shared.Return(inuseOf);
            ArrayPool<int>.Shared.Return(objectsOf);
            ArrayPool<int>.Shared.Return(order);
            ArrayPool<int>.Shared.Return(start);
        }
    }

    /// <summary>
    /// Copies the slabs of one bucket, <paramref name="first"/> to <paramref name="last"/>, into
    /// <paramref name="slabs"/> in list order and returns how many; -1, copying nothing usable, if the bucket holds
    /// more than <paramref name="max"/> (the list's count, exact under the list lock: only a corrupted list does,
    /// and the caller then leaves the bucket alone rather than unlink slabs it has not seen). Walks from both ends
    /// at once, meeting in the middle: each step of a linked list is a cache miss that waits for the one before,
    /// and two walks keep two in flight. <paramref name="backwards"/> is scratch of the same length.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // see DefragNode
    internal static int WalkBucket(Slab first, Slab last, Slab[] slabs, Slab[] backwards, int max)
    {
        int front = 0, back = 0;
        for (Slab f = first, r = last; ; )
        {
            if (front + back == max) return -1;
            slabs[front++] = f;
            if (f == r) break;
            if (front + back == max) return -1;
            backwards[back++] = r;
            var next = f.Next!;
            if (next == r) break;
            f = next;
            r = r.Prev!;
        }
        for (int i = 0; i < back; i++) slabs[front + i] = backwards[back - 1 - i];
        return front + back;
    }

    /// <summary>Slabs ahead whose descriptors a pass over a snapshot of the partial list asks for.</summary>
    private const int DescriptorPrefetchDistance = 8;

    /// <summary>The most free slots a slab of <paramref name="objects"/> can have in bucket <paramref name="b"/> of <paramref name="buckets"/> (see <see cref="PartialList.BucketOf(int, int)"/>).</summary>
    private static int MaxFreeOfBucket(int b, int buckets, int objects) => b >= buckets - 1 ? objects : (b + 1) * objects / buckets;

    /// <summary>
    /// Chooses sources for a bounded step from the sparse end of the bucketed partial list: walks back from
    /// the tail over at most <c>4 × maxSlabs + 8</c> slabs, takes those with use at most <paramref name="ratio"/>
    /// percent (at most <paramref name="maxSlabs"/>, and with <paramref name="needRoom"/> only while the rest of
    /// the list, by the node's free-slot counter, has room for their objects) and frees empty ones. The list
    /// stays as it is otherwise. List lock held; the hold does not grow with the list.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // see DefragNode
    private static void SelectFromTail(KmemCacheNode n, Mobility? mobility, int ratio, int maxSlabs, bool needRoom, DefragScratch scratch)
    {
        var empty = scratch.Empty;
        long window = maxSlabs * 4L + 8;
        long freeInTargets = Volatile.Read(ref n.PartialFree), toMove = 0;
        int taken = 0, buckets = n.Partial.Buckets;
        var s = n.Partial.Tail;
        for (long seen = 0; s is not null && seen < window; seen++)
        {
            var prev = s.Prev;
            int inuse = Volatile.Read(ref s.Inuse);
            if (inuse > 0)
            {
                if (mobility is null || taken >= maxSlabs) break;
                if (inuse * 100L > (long)ratio * s.Objects)
                {
                    // The list runs fullest bucket first: once even the sparsest fill this bucket allows is
                    // above the ratio, so is every slab before it.
                    if ((s.Objects - MaxFreeOfBucket(s.Bucket, buckets, s.Objects)) * 100L > (long)ratio * s.Objects) break;
                    s = prev;
                    continue;
                }
                if (needRoom && freeInTargets - (s.Objects - inuse) < toMove + inuse) break;
            }
            if (SpinLockWord.TryEnter(ref s.LockWord))
            {
                inuse = s.Inuse;   // frees may have lowered it since (only debug caches allocate from a listed slab)
                freeInTargets -= s.Objects - inuse;
                n.RemovePartial(s);
                if (inuse == 0) empty.Add(s);
                else
                {
                    toMove += inuse;
                    s.Frozen = true;
                    s.List = SlabList.Isolated;
                    scratch.AddSource(s);
                    taken++;
                }
                SpinLockWord.Exit(ref s.LockWord);
            }
            s = prev;
        }
    }

    /// <summary>
    /// Isolate and migrate the objects of one frozen slab (the series' <c>move_slab_page</c>), offering at
    /// most <paramref name="limit"/> of them. Returns how many were offered; <paramref name="emptied"/> tells
    /// whether the slab became an emptied source (see <see cref="EmptyWholeSource"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // see DefragNode
    private int MoveSlab(Slab s, MigrationContext ctx, nint[] vector, MigrateResult[] results, int targetNode, Mobility mobility,
        out bool emptied, int limit = int.MaxValue)
    {
        int count = 0;
        emptied = false;
        object? state;
        SpinLockWord.Enter(ref s.LockWord);
        try
        {
            count = s.FreeMap is null ? CollectInUseByFreeList(s, vector, limit) : CollectInUseByMap(s, vector, limit);
            try { state = mobility.Isolate?.Invoke(this, vector.AsSpan(0, count)); }
            catch (Exception e)
            {
                // Every offered object stays where it is: a failed move, counted as busy (see CountResults).
                Interlocked.Add(ref Defrag._later, count);
                throw new DefragmentationException(Name, s.Address, "isolate", e);
            }
        }
        finally
        {
            SpinLockWord.Exit(ref s.LockWord);
        }
        if (count == 0) return 0;
        var res = results.AsSpan(0, count);
        res.Clear();
        if (s.FreeMap is not null) ctx.BeginSource(s);
        Exception? failure = null;
        bool threw = false;
        try
        {
            mobility.Migrate(this, vector.AsSpan(0, count), targetNode, state, res);
        }
        catch (Exception e) { failure = e; threw = true; }
        int left = CountResults(ctx, vector.AsSpan(0, count), res, threw, mayHaveHoles: mobility.Isolate is not null);
        try
        {
            // The old objects the callback freed or left reach the slab before anything puts it back.
            emptied = ReturnOldObjects(s, ctx, vector.AsSpan(0, count), res, left);
        }
        catch (InvalidFreeException e) { failure ??= e; }
        if (failure is not null) throw new DefragmentationException(Name, s.Address, "migrate", failure);
        return count;
    }

    /// <summary>
    /// The objects in use of a slab with a free map: the clear bits, in address order. Touches no slot.
    /// Slab lock held.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // see DefragNode
    private int CollectInUseByMap(Slab s, nint[] vector, int limit)
    {
        ulong[] map = s.FreeMap!;
        int count = 0;
        nint first = s.FirstObject;
        for (int w = 0; w < map.Length && count < limit; w++)
        {
            ulong used = ~map[w];
            int rest = s.Objects - (w << 6);
            if (rest < 64) used &= (1UL << rest) - 1;
            while (used != 0 && count < limit)
            {
                int i = (w << 6) + System.Numerics.BitOperations.TrailingZeroCount(used);
                used &= used - 1;
                vector[count++] = first + (nint)i * _size;
            }
        }
        return count;
    }

    /// <summary>
    /// Software pipelining over the source slabs (taken in <paramref name="order"/>), run before the
    /// <paramref name="i"/>-th is migrated: the descriptor of slab i+6 and the free map of slab i+4 are asked
    /// for, and slab i+2's objects in use are set to be asked for one per replacement the migrate call takes
    /// (<see cref="PaceMigration"/>; the ones it did not reach right after it, see <see cref="FinishPacedSource"/>),
    /// so each is in cache when a later step reads it instead of one cache miss after another (one slab's
    /// migration is shorter than a memory access here, hence the distances). Reads free maps without the slab
    /// lock: a stale bit only wastes or misses a prefetch.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // see DefragNode
    private void PrefetchAhead(List<Slab> sources, ReadOnlySpan<int> order, int i, MigrationContext ctx)
    {
        if (!System.Runtime.Intrinsics.X86.Sse.IsSupported) return;
        if (i + 6 < order.Length)
            PrefetchDescriptor(System.Runtime.CompilerServices.Unsafe.As<Slab, nint>(ref System.Runtime.InteropServices.CollectionsMarshal.AsSpan(sources)[order[i + 6]]));
        if (i + 4 < order.Length && sources[order[i + 4]].FreeMap is { } map)
            System.Runtime.Intrinsics.X86.Sse.Prefetch0(System.Runtime.CompilerServices.Unsafe.AsPointer(ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(map)));
        if (i == 0)
            for (int k = 0; k < 2 && k < order.Length; k++)
            {
                BeginPacedSource(ctx, sources[order[k]]);
                FinishPacedSource(ctx);   // the first two have no call before them to pace them: all at once
            }
        BeginPacedSource(ctx, i + 2 < order.Length ? sources[order[i + 2]] : null);
    }

    /// <summary>
    /// Asks for the first two lines of a slab descriptor, given its address as a number (the reference's bits):
    /// reaching it through a field would make the JIT null-check the object first, a demand load that waits on
    /// the very miss the prefetch is meant to hide. A stale address (the GC moved the descriptor) only wastes it.
    /// </summary>
    private static void PrefetchDescriptor(nint descriptor)
    {
        if (!System.Runtime.Intrinsics.X86.Sse.IsSupported || descriptor == 0) return;
        System.Runtime.Intrinsics.X86.Sse.Prefetch0((void*)descriptor);
        System.Runtime.Intrinsics.X86.Sse.Prefetch0((void*)(descriptor + 64));
    }

    /// <summary>
    /// The objects in use of a slab without a free map (made before mobility was set up): walks the free
    /// list, one dependent load per free slot, with every line of the slab requested first so those misses
    /// overlap. Slab lock held.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // see DefragNode
    private int CollectInUseByFreeList(Slab s, nint[] vector, int limit)
    {
        int count = 0;
        Span<bool> free = s.Objects <= 1024 ? stackalloc bool[s.Objects] : new bool[s.Objects];
        if (System.Runtime.Intrinsics.X86.Sse.IsSupported)
            for (nint line = s.Address, end = s.Address + s.Bytes; line < end; line += 64)
                System.Runtime.Intrinsics.X86.Sse.Prefetch0((void*)line);
        for (nint p = s.Freelist; p != 0; p = *(nint*)(p + _fpOffset)) free[s.IndexOf(p)] = true;
        for (int i = 0; i < s.Objects && count < limit; i++) if (!free[i]) vector[count++] = s.ObjectAt(i);
        return count;
    }

    /// <summary>
    /// Adds one migrate call's results to the counters and returns how many objects were reported
    /// <see cref="MigrateResult.MovedOldLeft"/> (old object left to the core; <see cref="ReturnOldObjects"/> needs the
    /// number, and counting it here saves it a second pass over the results). When the callback threw, the objects it had not
    /// reported on yet stay where they are: they count as busy (a failed move, worth a later pass), not as
    /// unreported, so defrag_objects_busy shows them. <paramref name="mayHaveHoles"/>: an isolate callback ran, which
    /// may have zeroed entries of <paramref name="objects"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // see DefragNode
    private static int CountResults(MigrationContext ctx, ReadOnlySpan<nint> objects, ReadOnlySpan<MigrateResult> results, bool callbackThrew, bool mayHaveHoles)
    {
        // The common answer of a shrink: every object moved and left to the core, and no entry a hole (only an
        // isolate callback can drop an object from the vector). A plain loop: a slab's batch is a dozen or two
        // entries, too short for a vectorized search to pay for its call.
        int same = 0;
        while (same < results.Length && results[same] == MigrateResult.MovedOldLeft && (!mayHaveHoles || objects[same] != 0)) same++;
        if (same == results.Length)
        {
            ctx.Moved += results.Length;
            return results.Length;
        }
        int left = 0;
        for (int i = 0; i < results.Length; i++)
        {
            if (objects[i] == 0) { ctx.Skipped++; continue; }
            switch (results[i])
            {
                case MigrateResult.MovedOldLeft: ctx.Moved++; left++; break;
                case MigrateResult.Moved: ctx.Moved++; break;
                case MigrateResult.Freed: ctx.Freed++; break;
                case MigrateResult.Later: ctx.Later++; break;
                case MigrateResult.CannotMove: ctx.Refused++; break;
                case MigrateResult.Skipped: ctx.Skipped++; break;
                default: if (callbackThrew) ctx.Later++; else ctx.Unreported++; break;
            }
        }
        return left;
    }

    /// <summary>
    /// Ends a run's migration: uninstalls the context, adds its tallies to the counters, gives the reserved
    /// target back and keeps the context as the thread's spare.
    /// </summary>
    private void EndMigration(MigrationContext ctx)
    {
        ctx.Exit();
        AddCounts(ctx);
        ReleaseTarget(ctx);
        ctx.Recycle();
    }

    /// <summary>Adds a run's tallies to the cache's counters (once per run: six atomic adds per slab cost more than the counting).</summary>
    private void AddCounts(MigrationContext ctx)
    {
        Interlocked.Add(ref Defrag._moved, ctx.Moved);
        Interlocked.Add(ref Defrag._freed, ctx.Freed);
        Interlocked.Add(ref Defrag._later, ctx.Later);
        Interlocked.Add(ref Defrag._refused, ctx.Refused);
        Interlocked.Add(ref Defrag._skipped, ctx.Skipped);
        Interlocked.Add(ref Defrag._unreported, ctx.Unreported);
        ctx.Moved = ctx.Freed = ctx.Later = ctx.Refused = ctx.Skipped = ctx.Unreported = 0;
    }

    /// <summary>
    /// Unfreezes the source slabs, in <paramref name="order"/> (positions in <paramref name="sources"/>; empty: as
    /// listed): empty ones are freed (ignoring min_partial), the rest go to the partial tail. Sources flagged in
    /// <paramref name="emptied"/> (by position; empty: none) became emptied sources, whose state nothing can change
    /// any more, so they are taken without their slab lock: a shrink empties thousands, and each lock is a locked
    /// instruction under the list lock. In address order, the discards reach the page allocator in frame order.
    /// <paramref name="discard"/> is an empty scratch list.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // see DefragNode
    private void PutBackIsolated(KmemCacheNode n, List<Slab> sources, ReadOnlySpan<int> order, ReadOnlySpan<bool> emptied, List<Slab> discard)
    {
        lock (n.ListLock)
        {
            for (int i = 0; i < sources.Count; i++)
            {
                int at = order.IsEmpty ? i : order[i];
                var s = sources[at];
                if (at < emptied.Length && emptied[at])
                {
                    // Not even touched: it stays frozen and isolated, so a stray free is refused as a double
                    // free, until DiscardSlabs takes it off (list None) and frees its pages.
                    discard.Add(s);
                    continue;
                }
                SpinLockWord.Enter(ref s.LockWord);
                // An empty source stays frozen until it is discarded: it may be an emptied source without a free
                // list (EmptyWholeSource), which a scan of unfrozen slabs on no list would take for a full one.
                if (s.Inuse == 0) { s.List = SlabList.None; discard.Add(s); }
                else
                {
                    s.Frozen = false;
                    if (s.Freelist != 0) n.AddPartial(s);
                    else AddFull(n, s);
                }
                SpinLockWord.Exit(ref s.LockWord);
            }
            Interlocked.Add(ref _isolated![n.Node], -sources.Count);
        }
        DiscardSlabs(discard);
        Interlocked.Add(ref Defrag._slabsFreed, discard.Count);
    }
}
