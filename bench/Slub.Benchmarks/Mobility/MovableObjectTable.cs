namespace Slub.Benchmarks.Mobility;

/// <summary>
/// The users' side of a movable 64-byte cache: a table of references (slot → object) and the migrate
/// callback that keeps it right. Each object records its own slot in its first 8 bytes, so migrate can find
/// the one reference to redirect, as a real SMO user (dentry ↔ hash chain) finds its back-pointers.
/// </summary>
public sealed unsafe class MovableObjectTable
{
    public const int ObjectBytes = 64;
    private readonly nint[] _refs;
    private readonly bool _moveNothing;

    /// <param name="capacity">Slots in the table.</param>
    /// <param name="moveNothing">Migrate answers Later for every object: what is left is the core's own cost
    /// (choosing slabs, finding allocated objects, calling back, putting slabs back), for <see cref="DefragCpuTimeProbe"/>.</param>
    public MovableObjectTable(int capacity, bool moveNothing = false)
    {
        _refs = new nint[capacity];
        _moveNothing = moveNothing;
    }

    /// <summary>Slot → object (0 = empty).</summary>
    public nint this[int slot] => _refs[slot];

    /// <summary>The table itself (slot → object), for a replay that redirects references without the callback.</summary>
    public nint[] References => _refs;

    /// <summary>The constructor SMO requires: a free object's slot field reads -1, so any slot is in a known state.</summary>
    public static void Construct(nint obj) => *(long*)obj = -1;

    /// <summary>Creates the cache with mobility (NoMerge keeps its counters its own).</summary>
    /// <param name="allocator">The allocator to create it in.</param>
    /// <param name="name">Its name.</param>
    /// <param name="slotsOf64">Put the free pointer in the object's second word (<see cref="KmemCacheArgs.FreePointerOffset"/>
    /// 8: the constructor sets only the first) so a slot is exactly 64 bytes — one cache line, and the same footprint
    /// as the GC's 64-byte objects. Default: SLUB's placement for a constructor cache, a word after the object
    /// (72-byte slots, most objects spanning two lines).</param>
    public KmemCache CreateMovableCache(SlabAllocator allocator, string name, bool slotsOf64 = false)
    {
        var cache = slotsOf64
            ? allocator.CreateCache(name, ObjectBytes, 0, SlabFlags.NoMerge, Construct, new KmemCacheArgs { FreePointerOffset = 8 })
            : allocator.CreateCache(name, ObjectBytes, flags: SlabFlags.NoMerge, ctor: Construct);
        // No isolate: the benchmarks change the table on one thread only, so nothing can free an object
        // while it moves; a real user pins here (the cost measured is then a lower bound by that much).
        cache.SetupMobility(isolate: null, Migrate);
        return cache;
    }

    public void Store(int slot, nint obj)
    {
        *(long*)obj = slot;
        _refs[slot] = obj;
    }

    /// <summary>Frees the object in <paramref name="slot"/> and clears the reference.</summary>
    public void Release(KmemCache cache, int slot)
    {
        nint obj = _refs[slot];
        _refs[slot] = 0;
        *(long*)obj = -1;   // back to the constructed state before it is free
        cache.Free(obj);
    }

    /// <summary>
    /// The references to redirect are prefetched first, then for each object: a new one on <paramref name="node"/> (all of the call's replacements taken up front with
    /// <see cref="MigrationReplacements"/>, one pass over the core's reserved target slots), copy 64 bytes,
    /// redirect the single reference, free the old one (or, with <see cref="LeaveOldToCore"/>, report
    /// <see cref="MigrateResult.MovedOldLeft"/> and let the core free all old objects of the slab at once). This is
    /// the whole per-object cost the "ns per moved object" figure contains.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]   // as MigrateCallback advises
    private void Migrate(KmemCache cache, ReadOnlySpan<nint> objects, int node, object? state, Span<MigrateResult> results)
    {
        if (_moveNothing) { results.Fill(MigrateResult.Later); return; }
        using var fresh = new MigrationReplacements(cache, objects.Length, node, stackalloc nint[Math.Min(objects.Length, 512)]);
        fixed (nint* refs = _refs)
        {
            // First ask for every reference the batch will redirect: they are scattered over the table, and
            // asked for together their misses overlap instead of each store waiting on its own (the core has
            // already prefetched the old objects, so reading their slot numbers here costs no miss).
            if (System.Runtime.Intrinsics.X86.Sse.IsSupported)
                for (int i = 0; i < objects.Length; i++)
                    if (objects[i] != 0) System.Runtime.Intrinsics.X86.Sse.Prefetch0(refs + *(long*)objects[i]);
            for (int i = 0; i < objects.Length; i++)
            {
                nint old = objects[i];
                if (old == 0) { results[i] = MigrateResult.Skipped; continue; }
                if (!fresh.TryTake(out nint moved)) { results[i] = MigrateResult.Later; continue; }   // no memory: stays where it is
                Buffer.MemoryCopy((void*)old, (void*)moved, ObjectBytes, ObjectBytes);
                long slot = *(long*)old;
                refs[slot] = moved;
                MovesMade?.Add(((int)slot, old, moved));
                *(long*)old = -1;
                if (LeaveOldToCore) { results[i] = MigrateResult.MovedOldLeft; continue; }
                cache.Free(old);
                results[i] = MigrateResult.Moved;
            }
        }
    }

    /// <summary>When set, every move is appended here in the order made (slot, old, new), for <see cref="DefragMemoryFloor"/>. Unset (the timed runs) it costs the loop one predictable null check.</summary>
    public List<(int Slot, nint Old, nint New)>? MovesMade { get; set; }

    /// <summary>Report <see cref="MigrateResult.MovedOldLeft"/> instead of freeing each old object (default: true).</summary>
    public bool LeaveOldToCore { get; set; } = true;
}
