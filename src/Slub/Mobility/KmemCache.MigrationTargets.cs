using System.Numerics;
using System.Runtime.CompilerServices;

namespace Slub;

// The batched side of migration (see MigrationContext): replacements from a reserved target slab, and the
// old objects returned to their source slab in one step after each migrate call.
public sealed unsafe partial class KmemCache
{
    /// <summary>Defrag runs of this cache in progress (any thread): when 0, allocation skips the thread-static lookup of a <see cref="MigrationContext"/>.</summary>
    internal int _migrationRuns;

    /// <summary>
    /// A replacement for a migrate callback on the defragmenting thread: the next free slot of the reserved
    /// target, reserving the next target (fullest partial slab of the node first, else a new slab) when it
    /// runs out. Returns 0 when no target can be had; the caller then takes the ordinary path.
    /// </summary>
    private nint TakeReserved(MigrationContext ctx)
    {
        nint obj = 0;
        return TakeReservedBulk(ctx, new Span<nint>(ref obj)) == 1 ? obj : 0;
    }

    /// <summary>
    /// Fills <paramref name="objects"/> with free slots of the reserved target, reserving the next target when one
    /// runs out. Returns how many: fewer only when no further target can be reserved.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // see DefragNode
    private int TakeReservedBulk(MigrationContext ctx, Span<nint> objects, bool prefetch = true)
    {
        int i = 0;
        while (true)
        {
            if (ctx.Target is { } t)
            {
                nint first = t.FirstObject;
                while (i < objects.Length && ctx.Word < ctx.Words)
                {
                    ulong bits = ctx.Slots[ctx.Word];
                    if (bits == 0) { ctx.Word++; continue; }
                    ctx.Slots[ctx.Word] = bits & (bits - 1);
                    objects[i++] = first + (nint)((ctx.Word << 6) + BitOperations.TrailingZeroCount(bits)) * _size;
                    if (prefetch) PrefetchNextSlot(ctx, t);
                }
                if (i == objects.Length) return i;
            }
            if (ctx.Exhausted || !ReserveTargetInBulk(ctx, objects[..i])) return i;
        }
    }

    /// <summary>
    /// <see cref="ReserveTarget"/> in the middle of a batch: when a new target slab's constructor throws, the
    /// slots the batch already took (<paramref name="taken"/>) go back first, or nobody could ever free them.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private bool ReserveTargetInBulk(MigrationContext ctx, ReadOnlySpan<nint> taken)
    {
        try { return ReserveTarget(ctx); }
        catch
        {
            FreeBulkToCpus(taken);
            throw;
        }
    }

    /// <summary>
    /// True on a defragmenting thread whose run targets <paramref name="node"/> of this cache: its replacements
    /// come from that node or not at all (the object then stays, reported <see cref="MigrateResult.Later"/>
    /// by a callback that finds no memory), never from another node's memory as an ordinary
    /// <see cref="AllocNode"/> on a full node would take them.
    /// </summary>
    internal bool ReplacementsOnlyOn(int node) =>
        Volatile.Read(ref _migrationRuns) != 0 && MigrationContext.Current is { } ctx && ctx.Cache == this && ctx.Node == node;

    /// <summary>Releases the current target and reserves the next one. False when none can be had (marks the context exhausted).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // see DefragNode
    private bool ReserveTarget(MigrationContext ctx)
    {
        var n = _nodes[ctx.Node];
        // The used-up target is given back under the same hold of the list lock that takes the next one (a
        // shrink does this thousands of times); a target of another node is given back on its own.
        if (ctx.Target is { } old && old.Node != ctx.Node) ReleaseTarget(ctx);
        Slab? discard = null;
        bool unmapped = false;
        lock (n.ListLock)
        {
            if (ctx.Target is not null) discard = ReleaseTargetLocked(ctx, n);
            // The head is in the fullest bucket: after a shrink's choice, the fullest slabs left.
            int tries = 0;
            for (var s = n.Partial.Head; s is not null && tries < 8; s = s.Next, tries++)
            {
                if (s.FreeMap is null) { unmapped = true; continue; }   // made before mobility: ordinary path
                if (!SpinLockWord.TryEnter(ref s.LockWord)) continue;
                n.RemovePartial(s);
                TakeAllSlots(ctx, s);
                SpinLockWord.Exit(ref s.LockWord);
                PrefetchNextTarget(n.Partial.Head);
                goto reserved;
            }
        }
        if (discard is not null) DiscardSlab(discard);
        if (unmapped || _debug) { ctx.Exhausted = true; return false; }
        var fresh = NewSlab(ctx.Node, exactNode: true);   // a replacement on another node would not be a move there
        if (fresh is null) { ctx.Exhausted = true; return false; }
        SpinLockWord.Enter(ref fresh.LockWord);
        TakeAllSlots(ctx, fresh);
        SpinLockWord.Exit(ref fresh.LockWord);
        return true;
    reserved:
        if (discard is not null) DiscardSlab(discard);
        return true;
    }

    /// <summary>
    /// Asks for what the next reservation will read: the free map of the new head (whose descriptor the unlink
    /// just wrote) and the descriptor of the slab after it (the next unlink writes its back link). Partial slabs
    /// are listed fill-sorted, not by address, so each is otherwise a cache miss on the list lock's hold.
    /// </summary>
    private static void PrefetchNextTarget(Slab? head)
    {
        if (!System.Runtime.Intrinsics.X86.Sse.IsSupported || head is null) return;
        if (head.FreeMap is { } map)
            System.Runtime.Intrinsics.X86.Sse.Prefetch0(Unsafe.AsPointer(ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(map)));
        PrefetchDescriptor(Unsafe.As<Slab?, nint>(ref head.Next));
    }

    /// <summary>Takes every slot on <paramref name="s"/>'s free list into the context, as a CPU takes a slab's free list. Slab lock held.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // see DefragNode
    private void TakeAllSlots(MigrationContext ctx, Slab s)
    {
        var map = s.FreeMap!;
        if (ctx.Slots.Length < map.Length) ctx.Slots = new ulong[map.Length];
        map.AsSpan().CopyTo(ctx.Slots);
        map.AsSpan().Clear();
        s.Freelist = 0;
        s.Inuse = s.Objects;
        s.Frozen = true;
        s.List = SlabList.Reserved;
        ctx.Target = s;
        ctx.Word = 0;
        ctx.Words = map.Length;
        ctx.PrefetchWord = 0;
        ctx.PrefetchBits = ctx.Slots[0];
        ctx.NextTarget = null;
        ctx.NextTargetDone = false;
        for (int k = 0; k < TargetPrefetchDistance; k++) PrefetchNextSlot(ctx, s);
    }

    /// <summary>
    /// One step of the paced prefetches, for each replacement a migrate call takes from <see cref="MigrationReplacements"/>:
    /// the next target slot (keeping <see cref="TargetPrefetchDistance"/> slots ahead of the ones handed out) and the
    /// next object in use of the source two slabs ahead. Asked for one at a time at the pace the callback copies,
    /// the misses form an even stream instead of a burst per call that fills the core's miss buffers.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void PaceMigration(MigrationContext ctx)
    {
        if (ctx.Target is { } t) PrefetchNextSlot(ctx, t);
        if (ctx.PaceSource is { } s) PrefetchNextInUse(ctx, s);
    }

    /// <summary>Asks for the lines of the next object in use of the paced source; forgets the source when none is left.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void PrefetchNextInUse(MigrationContext ctx, Slab s)
    {
        if (!System.Runtime.Intrinsics.X86.Sse.IsSupported) return;
        var map = s.FreeMap!;
        while (ctx.PaceBits == 0)
        {
            if (++ctx.PaceWord >= map.Length) { ctx.PaceSource = null; return; }
            ctx.PaceBits = InUseBits(s, map, ctx.PaceWord);
        }
        ulong bits = ctx.PaceBits;
        ctx.PaceBits = bits & (bits - 1);
        nint obj = s.FirstObject + (nint)((ctx.PaceWord << 6) + BitOperations.TrailingZeroCount(bits)) * _size;
        // The object's lines, not the slot's: the word after the object (a constructor cache's free pointer) is
        // written only when the slab is not emptied whole, and for one slot in eight that word is a line of its own.
        System.Runtime.Intrinsics.X86.Sse.Prefetch0((void*)obj);
        System.Runtime.Intrinsics.X86.Sse.Prefetch0((void*)(obj + ObjectSize - 1));
    }

    /// <summary>The bits of word <paramref name="w"/> of a free map that are objects in use (read without the slab lock: a hint).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong InUseBits(Slab s, ulong[] map, int w)
    {
        ulong used = ~Volatile.Read(ref map[w]);
        int rest = s.Objects - (w << 6);
        return rest < 64 ? used & ((1UL << rest) - 1) : used;
    }

    /// <summary>Starts pacing the prefetches of <paramref name="s"/>'s objects in use (null: none).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // see DefragNode
    internal static void BeginPacedSource(MigrationContext ctx, Slab? s)
    {
        ctx.PaceSource = s is { FreeMap: { } map } ? s : null;
        ctx.PaceWord = 0;
        ctx.PaceBits = ctx.PaceSource is null ? 0 : InUseBits(s!, s!.FreeMap!, 0);
    }

    /// <summary>Asks at once for the objects of the paced source the call did not reach.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // see DefragNode
    internal void FinishPacedSource(MigrationContext ctx)
    {
        while (ctx.PaceSource is { } s) PrefetchNextInUse(ctx, s);
    }

    /// <summary>Slots of the target asked for ahead of the one handed out: the copy into a slot should not wait for its line.</summary>
    private const int TargetPrefetchDistance = 8;

    /// <summary>Moves the target's prefetch cursor one slot on and asks for that slot's line(s).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void PrefetchNextSlot(MigrationContext ctx, Slab t)
    {
        if (!System.Runtime.Intrinsics.X86.Sse.IsSupported) return;
        while (ctx.PrefetchBits == 0)
        {
            if (ctx.PrefetchWord + 1 >= ctx.Words)
            {
                PrefetchNextTargetSlot(ctx);
                return;
            }
            ctx.PrefetchBits = ctx.Slots[++ctx.PrefetchWord];
        }
        ulong bits = ctx.PrefetchBits;
        ctx.PrefetchBits = bits & (bits - 1);
        nint obj = t.FirstObject + (nint)((ctx.PrefetchWord << 6) + BitOperations.TrailingZeroCount(bits)) * _size;
        System.Runtime.Intrinsics.X86.Sse.Prefetch0((void*)obj);
        System.Runtime.Intrinsics.X86.Sse.Prefetch0((void*)(obj + ObjectSize - 1));
    }

    /// <summary>
    /// The prefetch cursor has passed the target's last slot: ask for the first free slots of the slab the next
    /// reservation will most likely take, the partial list's head, so they are not one DRAM miss after another
    /// right after it is reserved (a shrink reserves a target every 40 or so moves). The head is read without
    /// the list lock and its free map without the slab lock: a wrong guess or a stale bit only wastes a prefetch.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private void PrefetchNextTargetSlot(MigrationContext ctx)
    {
        if (ctx.NextTargetDone || !System.Runtime.Intrinsics.X86.Sse.IsSupported) return;
        var next = ctx.NextTarget;
        if (next is null)
        {
            next = Volatile.Read(ref _nodes[ctx.Node].Partial.Head);
            if (next is null || next == ctx.Target || next.FreeMap is not { Length: > 0 } first) { ctx.NextTargetDone = true; return; }
            ctx.NextTarget = next;
            ctx.NextTargetPrefetched = 0;
            ctx.NextTargetWord = 0;
            ctx.NextTargetBits = Volatile.Read(ref first[0]);
        }
        var map = next.FreeMap;
        if (map is null || ctx.NextTargetPrefetched >= TargetPrefetchDistance) { ctx.NextTargetDone = true; return; }
        while (ctx.NextTargetBits == 0)
        {
            if (++ctx.NextTargetWord >= map.Length) { ctx.NextTargetDone = true; return; }
            ctx.NextTargetBits = Volatile.Read(ref map[ctx.NextTargetWord]);
        }
        ulong bits = ctx.NextTargetBits;
        ctx.NextTargetBits = bits & (bits - 1);
        int index = (ctx.NextTargetWord << 6) + BitOperations.TrailingZeroCount(bits);
        if (index >= next.Objects) { ctx.NextTargetDone = true; return; }
        nint obj = next.FirstObject + (nint)index * _size;
        System.Runtime.Intrinsics.X86.Sse.Prefetch0((void*)obj);
        System.Runtime.Intrinsics.X86.Sse.Prefetch0((void*)(obj + ObjectSize - 1));
        ctx.NextTargetPrefetched++;
    }

    /// <summary>
    /// Gives the reserved target back: its unhanded slots go onto its free list (with any objects freed into
    /// it meanwhile), then it goes to the head of the partial list (it was the fullest), the full list, or
    /// is discarded when empty and the node has enough partial slabs — as a deactivated CPU slab does.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // see DefragNode
    private void ReleaseTarget(MigrationContext ctx)
    {
        var s = ctx.Target;
        if (s is null) return;
        var n = _nodes[s.Node];
        Slab? discard;
        lock (n.ListLock) discard = ReleaseTargetLocked(ctx, n);
        if (discard is not null) DiscardSlab(discard);
    }

    /// <summary>
    /// <see cref="ReleaseTarget"/> with the list lock of the target's node (<paramref name="n"/>) held. Returns the
    /// target when it is to be discarded (by the caller, after the list lock is released), else null.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // see DefragNode
    private Slab? ReleaseTargetLocked(MigrationContext ctx, KmemCacheNode n)
    {
        var s = ctx.Target!;
        ctx.Target = null;
        bool discard = false;
        SpinLockWord.Enter(ref s.LockWord);
        int returned = 0;
        for (int w = ctx.Word; w < ctx.Words; w++)
        {
            for (ulong bits = ctx.Slots[w]; bits != 0; bits &= bits - 1)
            {
                nint obj = s.FirstObject + (nint)((w << 6) + BitOperations.TrailingZeroCount(bits)) * _size;
                *(nint*)(obj + _fpOffset) = s.Freelist;
                s.Freelist = obj;
                s.MarkFree(obj);
                returned++;
            }
            ctx.Slots[w] = 0;
        }
        s.Inuse -= returned;
        s.Frozen = false;
        if (s.Inuse == 0 && n.Partial.Count >= MinPartial) { s.List = SlabList.None; discard = true; }
        else if (s.Freelist != 0) n.AddPartial(s, atHead: true);
        else AddFull(n, s);
        SpinLockWord.Exit(ref s.LockWord);
        return discard ? s : null;
    }

    /// <summary>
    /// After a migrate call on <paramref name="s"/>: the old objects go back onto its free list in one step,
    /// under one slab lock — those the callback freed on this thread (deferred by <paramref name="ctx"/>) and
    /// those it reported <see cref="MigrateResult.MovedOldLeft"/>. An object a concurrent free had already
    /// returned is a double free: the others are applied, then <see cref="InvalidFreeException"/> is thrown.
    /// Returns true when the slab became an emptied source (<see cref="EmptyWholeSource"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // see DefragNode
    private bool ReturnOldObjects(Slab s, MigrationContext ctx, ReadOnlySpan<nint> objects, ReadOnlySpan<MigrateResult> results, int left)
    {
        int deferred = 0;
        if (ctx.Source == s)
        {
            deferred = ctx.DeferredCount;
            ctx.Source = null;
            ctx.DeferredCount = 0;
            ctx.DeferredMap.AsSpan(0, s.FreeMap!.Length).Clear();
        }
        if (deferred == 0 && !_debug && left == objects.Length && EmptyWholeSource(s, objects.Length)) return true;
        bool anyLeft = left != 0;
        if (deferred == 0 && !anyLeft) return false;
        if (_debug)
        {
            // Debug caches check, poison and track every free: take the ordinary (checked) path per object.
            for (int i = 0; i < results.Length; i++)
                if (results[i] == MigrateResult.MovedOldLeft && objects[i] != 0) Free(objects[i]);
            return false;
        }
        nint doubleFree = 0;
        int returned = 0;
        SpinLockWord.Enter(ref s.LockWord);
        nint freelist = s.Freelist;
        var map = s.FreeMap;
        // Deferred frees were checked by Free (object boundary of this slab); MovedOldLeft entries are checked here.
        for (int k = 0; k < deferred; k++) ReturnOne(s, map, ctx.Deferred[k], ref freelist, ref returned, ref doubleFree);
        if (anyLeft)
            for (int i = 0; i < results.Length; i++)
                if (results[i] == MigrateResult.MovedOldLeft && objects[i] != 0)
                    ReturnOne(s, map, objects[i], ref freelist, ref returned, ref doubleFree);
        s.Freelist = freelist;
        s.Inuse -= returned;
        SpinLockWord.Exit(ref s.LockWord);
        if (doubleFree != 0)
            throw new InvalidFreeException(Name, doubleFree, $"kmem_cache_free({Name}): double free of object 0x{doubleFree:x} (returned by migrate and freed elsewhere, or not an object of slab 0x{s.Address:x})");
        return false;
    }

    /// <summary>
    /// The common end of a shrink's migrate call: every one of the <paramref name="offered"/> objects was moved and
    /// left to the core (the caller has counted the results), and nothing
    /// else was freed into the slab meanwhile (no deferred frees, and its in-use count is still the number offered —
    /// any other free would have lowered it). The slab is then empty and <see cref="PutBackIsolated"/> gives it
    /// back to the page allocator whatever min_partial says, so its free list is not rebuilt object by object
    /// (a store into every old slot; measured 1–3 ns per moved object less without it): it becomes an emptied source — in use 0, every map
    /// bit set, free list empty — which exists only while the slab is isolated and frozen, where nothing allocates
    /// from it. Its state is then final: a free of any of its slots is refused as a double free (FreeToIsolated
    /// checks the map), so the put-back takes it without its lock. Returns false, changing nothing, in any other
    /// case. Slab lock taken here.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool EmptyWholeSource(Slab s, int offered)
    {
        if (offered == 0 || s.FreeMap is null) return false;
        SpinLockWord.Enter(ref s.LockWord);
        bool whole = s.Inuse == offered && s.List == SlabList.Isolated;
        if (whole)
        {
            s.Inuse = 0;
            s.Freelist = 0;
            s.InitFreeMap();
        }
        SpinLockWord.Exit(ref s.LockWord);
        return whole;
    }

    /// <summary>Pushes one old object onto the slab's free list (kept in <paramref name="freelist"/>) unless it is not a slot of the slab or the free map says it is already free. Slab lock held.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void ReturnOne(Slab s, ulong[]? map, nint obj, ref nint freelist, ref int returned, ref nint doubleFree)
    {
        ulong offset = (ulong)(obj - s.FirstObject);
        ulong index = DivideBySize(offset);
        if (index >= (ulong)s.Objects || index * (ulong)_size != offset) { doubleFree = obj; return; }
        if (map is not null)
        {
            ref ulong word = ref map[(int)(index >> 6)];
            ulong bit = 1UL << (int)index;
            if ((word & bit) != 0) { doubleFree = obj; return; }
            word |= bit;
        }
        *(nint*)(obj + _fpOffset) = freelist;
        freelist = obj;
        returned++;
    }

    /// <summary>A free on the defragmenting thread into the slab its migrate call is emptying: deferred. Otherwise the isolated-slab path.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void FreeIsolated(Slab slab, nint obj)
    {
        _allocator.ThrowIfDisposed(Name);
        if (MigrationContext.Current is { } ctx && ctx.Source == slab && ctx.Cache == this)
        {
            ctx.Defer(slab, obj);
            return;
        }
        if (FreeToIsolated(slab, obj)) return;
        FreeTo(_cpus[_allocator.CurrentCpu()], obj, slab);
    }
}
