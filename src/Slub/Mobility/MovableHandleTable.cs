using System.Runtime.CompilerServices;

namespace Slub;

/// <summary>
/// Movable objects for ordinary C# code: callers hold a <c>long</c> handle instead of a pointer, and the
/// table is the one place that knows where each object lives, so defragmentation can move objects and
/// redirect the single reference that matters. Objects live in their own movable slab cache.
/// </summary>
/// <remarks>
/// <para><b>Layout.</b> Each object starts with an 8-byte header holding its handle, followed by the
/// payload. While an object is free its header holds the slab's free pointer
/// (<see cref="KmemCacheArgs.FreePointerOffset"/> 0) or, in a fresh slab, the constructor's zeroes; neither is
/// a live handle's mapping, so migrate skips it (the table's slot for that value never points at a free object).</para>
/// <para><b>Concurrency.</b> Handles are striped over 64 spin locks. <see cref="Access"/> holds the
/// handle's stripe lock for the lifetime of the returned scope, which is what keeps the object from moving
/// or being freed while it is used. The migrate callback takes the same stripe lock for each object, checks
/// that the table still maps the handle to that address (otherwise the object was freed after isolation
/// and is skipped), allocates the replacement on the requested node, copies, updates the table and leaves
/// the old object to the core (<see cref="MigrateResult.MovedOldLeft"/>). No isolate callback is needed: frozen slabs never hand out their free slots again, so
/// a freed object's header cannot be reused during the move.</para>
/// <para><b>Handle reuse: what the checks catch, and their limits.</b> A handle is a positive <c>long</c>:
/// 28 bits of slot index, 19 bits of generation (<see cref="HandleGenerations"/>) and 16 bits of table tag
/// (<see cref="TableTags"/>); the 63 bits are all used, so neither field can widen without a wider handle type.
/// Both fields wrap, and only code that misuses handles (keeps one after <see cref="Free"/>, or passes one to
/// another table) can notice:
/// <list type="bullet">
/// <item>Generation: a slot's generation goes up by one each time the slot is reused, modulo 2^19. A stale handle is
/// refused as long as its slot has been reused fewer than 524 288 times since it was freed (or a non-multiple of
/// that); after exactly k·2^19 reuses, while the slot is live, the stale handle equals the live one bit for bit and
/// is taken for it: <see cref="Access"/> reaches, and <see cref="Free"/> frees, the new owner's object. Freed slots
/// are reused last-freed first, so an allocate/free loop on an otherwise quiet table reuses one slot every
/// iteration and brings a stale handle back after 524 288 iterations. For a stale handle used after an
/// unpredictable number of reuses the chance of being accepted is about 1 in 524 288 (1.9·10⁻⁶) per use.</item>
/// <item>Tag: the tag is the table's creation number in the process modulo 65 536, so the 65 537th table shares
/// the first one's tag. A handle passed to a different table with the same tag is taken for that table's own
/// handle with the same index and generation, if that one is live (tables with the same history hand out the
/// same handles); a table with another tag always refuses it.</item>
/// </list>
/// Neither case reaches freed or foreign memory: an accepted handle always names a live object of the table it
/// was passed to (its header holds exactly that handle). The harm is acting on another owner's object, which is
/// what the checks exist to report, so they are a diagnostic for misuse, not a guarantee.</para>
/// <para>All members but <see cref="Dispose"/> are thread-safe. Keep <see cref="Access"/> scopes short and never call
/// <see cref="Free"/>, <see cref="Allocate"/>, a second <see cref="Access"/> or an enumeration of <see cref="Handles"/>
/// inside one: when the handles share a stripe that would wait for itself, and throws
/// <see cref="InvalidOperationException"/> instead.</para>
/// <para><b>Lifetime.</b> <see cref="Dispose"/> frees every live object and destroys the table's cache
/// (<c>kmem_cache_destroy</c>), so its slabs' pages go back to the allocator; afterwards every member throws
/// <see cref="ObjectDisposedException"/> naming the table's cache. It must not race with any other member of the
/// table (a background defragmenter moving the cache's objects meanwhile is fine).</para>
/// </remarks>
public sealed unsafe class MovableHandleTable : IDisposable
{
    private const int HeaderSize = 8;
    private const int ChunkShift = 16, ChunkSize = 1 << ChunkShift, MaxChunks = 4096;
    private const int Stripes = 64;
    // A handle is tag | generation | index: the index picks the slot; the generation (bumped each time a slot is
    // reused) and the table's tag make a stale handle, or one from another table, fail the check against the
    // full handle the object's header holds, instead of reaching someone else's object.
    private const int IndexBits = 28, GenerationBits = 19, TagShift = IndexBits + GenerationBits;
    private const long IndexMask = (1L << IndexBits) - 1, GenerationUnit = 1L << IndexBits;
    private const long GenerationMask = ((1L << GenerationBits) - 1) << IndexBits;
    private static int s_nextTag;

    /// <summary>Generations a slot goes through before its handles repeat (2^19): see the remarks on handle reuse.</summary>
    public const int HandleGenerations = 1 << GenerationBits;

    /// <summary>Distinct table tags (2^16): the tag is the table's creation number modulo this; see the remarks on handle reuse.</summary>
    public const int TableTags = 1 << 16;

    private readonly nint[]?[] _chunks = new nint[]?[MaxChunks];
    private readonly int[] _stripeLocks = new int[Stripes * 16];   // one lock word per cache line
    private readonly Stack<long> _freeHandles = new();
    private readonly long _tag;
    private readonly KmemCache _cache;
    private readonly int _payloadSize;
    private long _nextIndex = 1;   // index 0 is never used
    private long _live;
    private int _disposed;

    /// <summary>The cache holding the objects (its object size is the payload plus an 8-byte header).</summary>
    /// <exception cref="ObjectDisposedException">The table has been disposed (its cache destroyed).</exception>
    public KmemCache Cache
    {
        get
        {
            ThrowIfDisposed();
            return _cache;
        }
    }

    /// <summary>Payload bytes per object.</summary>
    /// <exception cref="ObjectDisposedException">The table has been disposed.</exception>
    public int PayloadSize
    {
        get
        {
            ThrowIfDisposed();
            return _payloadSize;
        }
    }

    /// <summary>Live objects (live handles). Thread-safe; under concurrent <see cref="Allocate"/>/<see cref="Free"/> a
    /// value the count had at some moment of the call.</summary>
    /// <exception cref="ObjectDisposedException">The table has been disposed.</exception>
    public long Count
    {
        get
        {
            ThrowIfDisposed();
            return Interlocked.Read(ref _live);
        }
    }

    /// <summary>
    /// The live handles, in slot order (not allocation order). Thread-safe and <b>weakly consistent</b>, not a
    /// snapshot: the enumeration visits each slot once, taking that slot's stripe lock for the read, so
    /// <list type="bullet">
    /// <item>a handle live for the whole enumeration is yielded exactly once, wherever defragmentation moves its object;</item>
    /// <item>every handle yielded was live at the moment its slot was read (it may be freed right after);</item>
    /// <item>a handle allocated or freed while the enumeration runs may or may not be yielded; no handle is yielded twice.</item>
    /// </list>
    /// Concurrent <see cref="Allocate"/>, <see cref="Free"/> and shrinks never make it throw. It holds no lock between
    /// items, so freeing the yielded handles as they come is fine; enumerating inside an <see cref="Access"/> scope is
    /// not (see the remarks). Each slot costs one uncontended lock: O(handles ever allocated), not O(live).
    /// </summary>
    /// <exception cref="ObjectDisposedException">The table has been disposed (also from <c>MoveNext</c> of an enumeration
    /// begun before).</exception>
    public IEnumerable<long> Handles
    {
        get
        {
            ThrowIfDisposed();
            return EnumerateHandles(Interlocked.Read(ref _nextIndex));
        }
    }

    /// <summary>The table's tag (its creation number modulo <see cref="TableTags"/>).</summary>
    internal int Tag => (int)(_tag >> TagShift);

    /// <summary>Creates the table and its movable cache <paramref name="cacheName"/> in <paramref name="allocator"/>. Thread-safe.</summary>
    public MovableHandleTable(SlabAllocator allocator, string cacheName, int payloadSize, SlabFlags flags = SlabFlags.None)
        : this(allocator, cacheName, payloadSize, flags, Interlocked.Increment(ref s_nextTag)) { }

    /// <summary>A table whose creation number is <paramref name="creationNumber"/> (tests: the tag wrap without creating 65 536 tables).</summary>
    internal MovableHandleTable(SlabAllocator allocator, string cacheName, int payloadSize, SlabFlags flags, int creationNumber)
    {
        ArgumentNullException.ThrowIfNull(allocator);
        if (payloadSize < 1)
            throw new ArgumentOutOfRangeException(nameof(payloadSize), payloadSize, $"{cacheName}: payload size must be at least 1 byte");
        _tag = (long)(creationNumber & (TableTags - 1)) << TagShift;
        _payloadSize = payloadSize;
        int objectSize = HeaderSize + payloadSize;
        // The header is rewritten by Allocate, so a free object's header can hold the free pointer: no word
        // after each object (158-byte objects: 160-byte slots instead of 168, 25 per page instead of 24).
        _cache = allocator.CreateCache(cacheName, objectSize, 8, flags, obj => new Span<byte>((void*)obj, objectSize).Clear(),
            new KmemCacheArgs { FreePointerOffset = 0 });
        _cache.SetupMobility(null, Migrate);
    }

    /// <summary>
    /// Frees every live object and destroys the table's cache (<see cref="SlabAllocator.DestroyCache"/>), returning its
    /// slabs' pages to the allocator. Idempotent. Not thread-safe: it must not race with any other member of this table
    /// (an object being allocated, freed or accessed meanwhile would be lost or reach freed memory); a defragmenter
    /// moving the cache's objects meanwhile is fine (each free takes the object's stripe lock, as a move does; the
    /// allocator's defragmenter holds the cache list's mutex, which destroying the cache waits for, and the destroy waits
    /// for a <see cref="KmemCache.Shrink()"/> or other defrag run of <see cref="Cache"/> called on another thread to finish,
    /// after which that thread's next run throws <see cref="ObjectDisposedException"/>). After a
    /// <see cref="SlabAllocator.Dispose"/> the memory is already gone and the table is only marked disposed.
    /// Afterwards every member throws <see cref="ObjectDisposedException"/>.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        lock (_freeHandles) _freeHandles.Clear();
        if (_cache.Allocator.IsDisposed) return;
        long bound = Interlocked.Read(ref _nextIndex);
        for (long index = 1; index < bound; index++)
        {
            ref int l = ref StripeLock(index);
            EnterStripe(ref l, index);
            try
            {
                ref nint slot = ref Slot(index);
                if (slot == 0) continue;
                _cache.Free(slot);
                slot = 0;
            }
            finally
            {
                SpinLockWord.Exit(ref l);
            }
            Interlocked.Decrement(ref _live);
        }
        _cache.Allocator.DestroyCache(_cache);
    }

    private void ThrowIfDisposed()
    {
        if (Volatile.Read(ref _disposed) != 0) ThrowTableDisposed();
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private void ThrowTableDisposed() =>
        throw new ObjectDisposedException($"MovableHandleTable({_cache.Name})",
            $"MovableHandleTable {_cache.Name}: the table has been disposed; its objects were freed and its cache destroyed");

    private IEnumerable<long> EnumerateHandles(long bound)
    {
        for (long index = 1; index < bound; index++)
        {
            ThrowIfDisposed();
            long handle = ReadHandle(index);
            if (handle != 0) yield return handle;
        }
    }

    /// <summary>The live handle of slot <paramref name="index"/> (below the bound), or 0: read under the slot's stripe
    /// lock, so the object cannot be freed or moved between reading the slot and reading its header.</summary>
    private long ReadHandle(long index)
    {
        ref int l = ref StripeLock(index);
        EnterStripe(ref l, index);
        try
        {
            nint obj = Slot(index);
            return obj == 0 ? 0 : *(long*)obj;
        }
        finally
        {
            SpinLockWord.Exit(ref l);
        }
    }

    /// <summary>Allocates an object (on <paramref name="node"/>, -1 any) and returns its handle; the payload is zeroed. Thread-safe.</summary>
    public long Allocate(int node = -1)
    {
        ThrowIfDisposed();
        nint obj = _cache.AllocNode(node);
        new Span<byte>((void*)obj, HeaderSize + _payloadSize).Clear();
        long handle;
        lock (_freeHandles)
        {
            if (_freeHandles.TryPop(out long freed))
            {
                handle = _tag | ((freed + GenerationUnit) & GenerationMask) | (freed & IndexMask);
            }
            else
            {
                long index = _nextIndex;
                int chunk = (int)(index >> ChunkShift);
                if (chunk >= MaxChunks) { _cache.Free(obj); throw new InvalidOperationException($"{_cache.Name}: handle table full"); }
                // Publish the chunk before the index bound, so readers that pass the bound find it.
                if (_chunks[chunk] is null) Volatile.Write(ref _chunks[chunk], new nint[ChunkSize]);
                Interlocked.Exchange(ref _nextIndex, index + 1);
                handle = _tag | index;
            }
        }
        *(long*)obj = handle;
        ref int l = ref StripeLock(handle);
        EnterStripe(ref l, handle);
        Volatile.Write(ref Slot(handle), obj);
        SpinLockWord.Exit(ref l);
        Interlocked.Increment(ref _live);
        return handle;
    }

    /// <summary>Frees the object of <paramref name="handle"/>; the handle may be reused afterwards. Thread-safe; never inside an <see cref="Access"/> scope of the same thread.</summary>
    /// <exception cref="ArgumentException">The handle is not live: never allocated, already freed (a handle whose slot was
    /// reused since is stale and refused too), or from another table.</exception>
    public void Free(long handle)
    {
        ThrowIfDisposed();
        if (_cache.Allocator.IsDisposed) SlabAllocator.ThrowDisposed(_cache.Name);   // before the slot is cleared
        ref int l = ref StripeLock(handle);
        EnterStripe(ref l, handle);
        nint obj;
        try
        {
            obj = LiveObject(handle);
            if (obj == 0) ThrowNotLive(handle);
            Slot(handle) = 0;
            _cache.Free(obj);
        }
        finally
        {
            SpinLockWord.Exit(ref l);
        }
        Interlocked.Decrement(ref _live);
        lock (_freeHandles) _freeHandles.Push(handle);
    }

    /// <summary>Pins the object and gives its payload address until the scope is disposed. Thread-safe; dispose the scope on the same thread, once.</summary>
    public Scope Access(long handle)
    {
        // The payload address would point into unmapped memory; one field read, no lock.
        ThrowIfDisposed();
        if (_cache.Allocator.IsDisposed) SlabAllocator.ThrowDisposed(_cache.Name);
        ref int l = ref StripeLock(handle);
        EnterStripe(ref l, handle);
        nint obj = LiveObject(handle);
        if (obj == 0)
        {
            SpinLockWord.Exit(ref l);
            ThrowNotLive(handle);
        }
        return new Scope(this, handle, obj + HeaderSize);
    }

    /// <summary>An access to one object's payload; the object cannot move or be freed until disposal. A <c>ref struct</c>:
    /// it stays on the thread that called <see cref="Access"/>. The payload memory itself is not synchronised: the scope
    /// keeps the object in place, but two threads holding scopes of the same handle one after the other see each other's
    /// writes only through the stripe lock the scope holds (which orders them), never at the same time.</summary>
    public readonly ref struct Scope
    {
        private readonly MovableHandleTable _table;
        private readonly long _handle;
        private readonly nint _payload;

        /// <summary>Address of the payload, valid until the scope is disposed.</summary>
        /// <exception cref="ObjectDisposedException">The scope was disposed (or is a default scope): nothing keeps the
        /// object at that address any more.</exception>
        public nint Payload
        {
            get
            {
                ThrowIfReleased();
                return _payload;
            }
        }

        /// <summary>The payload as bytes, valid until the scope is disposed (a span kept beyond that is not checked).</summary>
        /// <exception cref="ObjectDisposedException">The scope was disposed (or is a default scope).</exception>
        public Span<byte> Bytes
        {
            get
            {
                ThrowIfReleased();
                return new((void*)_payload, _table._payloadSize);
            }
        }

        internal Scope(MovableHandleTable table, long handle, nint payload)
        {
            _table = table;
            _handle = handle;
            _payload = payload;
        }

        /// <summary>
        /// The scope is live while this thread holds the handle's stripe and the table still maps the handle to this
        /// object: no second scope of the same stripe can exist on the thread (Access refuses it), and while the stripe
        /// is held nothing moves or frees the object. A disposed scope fails the first test, or — when the thread has
        /// taken the stripe again for another handle since — the second, unless its object is still exactly where it was.
        /// </summary>
        private void ThrowIfReleased()
        {
            if (_table is null
                || Volatile.Read(ref _table.StripeLock(_handle)) != Environment.CurrentManagedThreadId
                || _table.LiveObject(_handle) + HeaderSize != _payload)
                ThrowReleased();
        }

        [System.Diagnostics.CodeAnalysis.DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
        private void ThrowReleased()
        {
            if (_table is null) throw new ObjectDisposedException(nameof(Scope), "a default MovableHandleTable.Scope has no payload");
            throw new ObjectDisposedException($"MovableHandleTable({_table._cache.Name}).Scope",
                $"{_table._cache.Name}: the Access scope of handle {_handle} has been disposed; its object may have moved or been freed since. Access the handle again");
        }

        /// <summary>Releases the handle's stripe lock, so the object may move or be freed again; a default scope does
        /// nothing, and so does a second call (unless this thread has taken the same stripe again meanwhile: call it
        /// once, as a <c>using</c> does). On the thread that called <see cref="Access"/> (a <c>ref struct</c> cannot leave it).</summary>
        public void Dispose()
        {
            if (_table is null) return;
            // The stripe holds its owner's thread id and a scope never leaves its thread: a second Dispose finds the
            // stripe free or another thread's, and leaves it alone instead of releasing someone else's lock.
            ref int l = ref _table.StripeLock(_handle);
            if (Volatile.Read(ref l) == Environment.CurrentManagedThreadId) SpinLockWord.Exit(ref l);
        }
    }

    /// <summary>The current address of a handle's payload, or 0 when the handle is not live (for diagnostics; it may move right after). Thread-safe.</summary>
    public nint AddressOf(long handle)
    {
        ThrowIfDisposed();
        if (_cache.Allocator.IsDisposed) SlabAllocator.ThrowDisposed(_cache.Name);
        nint obj = LiveObject(handle);
        return obj == 0 ? 0 : obj + HeaderSize;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // runs in defrag bursts: see MigrateCallback
    private void Migrate(KmemCache cache, ReadOnlySpan<nint> objects, int node, object? state, Span<MigrateResult> results)
    {
        // Every replacement is allocated up front, in one pass over the core's reserved target, so no stripe lock
        // (which a user's Access waits on) is held across an allocation; the ones left over go back at the end.
        using var fresh = new MigrationReplacements(cache, objects.Length, node, stackalloc nint[Math.Min(objects.Length, 256)]);
        for (int i = 0; i < objects.Length; i++)
        {
            nint old = objects[i];
            if (old == 0) { results[i] = MigrateResult.Skipped; continue; }
            long handle = *(long*)old;   // a free object's header holds a free pointer or zeroes: its slot never maps it
            long index = handle & IndexMask;
            if (handle <= 0 || index == 0 || index >= Interlocked.Read(ref _nextIndex)) { results[i] = MigrateResult.Skipped; continue; }
            if (fresh.Remaining == 0) { results[i] = MigrateResult.Later; continue; }   // no memory: stays where it is
            ref int l = ref StripeLock(handle);
            EnterStripe(ref l, handle);
            try
            {
                ref nint slot = ref Slot(handle);
                if (slot != old) { results[i] = MigrateResult.Skipped; continue; }   // freed since isolation
                fresh.TryTake(out nint moved);
                Buffer.MemoryCopy((void*)old, (void*)moved, HeaderSize + _payloadSize, HeaderSize + _payloadSize);
                Volatile.Write(ref slot, moved);
                results[i] = MigrateResult.MovedOldLeft;   // the core frees the slab's old objects in one step
            }
            finally
            {
                SpinLockWord.Exit(ref l);
            }
        }
    }

    /// <summary>Takes a stripe lock, storing the thread's id so a thread that already holds it is told so instead of spinning forever.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void EnterStripe(ref int l, long handle)
    {
        int me = Environment.CurrentManagedThreadId;
        if (Interlocked.CompareExchange(ref l, me, 0) != 0) EnterStripeContended(ref l, me, handle);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void EnterStripeContended(ref int l, int me, long handle)
    {
        if (Volatile.Read(ref l) == me)
            throw new InvalidOperationException($"{_cache.Name}: handle {handle} shares its lock stripe with an Access scope this thread holds; " +
                "Allocate, Free, a second Access or a shrink inside a scope would wait for itself. Dispose the scope first.");
        // Sleeps after a short spin, as the defragmenter does on lock words: holders are users' Access scopes.
        var spinner = new SpinWait();
        do spinner.SpinOnce(sleep1Threshold: 20);
        while (Volatile.Read(ref l) != 0 || Interlocked.CompareExchange(ref l, me, 0) != 0);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ref int StripeLock(long handle) => ref _stripeLocks[(int)(handle & (Stripes - 1)) * 16];

    /// <summary>The slot of the handle's index; the caller checked the index is below the bound.</summary>
    private ref nint Slot(long handle) => ref _chunks[(handle & IndexMask) >> ChunkShift]![handle & (ChunkSize - 1)];

    /// <summary>
    /// The object <paramref name="handle"/> maps to, or 0 when it is not live: its slot is empty, or holds an object
    /// whose header is another handle (the slot was reused since: a stale handle; or the handle is another table's).
    /// A live slot's object is allocated, so its header is readable.
    /// </summary>
    private nint LiveObject(long handle)
    {
        long index = handle & IndexMask;
        if (handle <= 0 || index == 0 || index >= Interlocked.Read(ref _nextIndex)) return 0;
        nint obj = Volatile.Read(ref Slot(index));
        return obj != 0 && *(long*)obj == handle ? obj : 0;
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private void ThrowNotLive(long handle)
    {
        string why = handle > 0 && (handle & ~(GenerationMask | IndexMask)) != _tag
            ? "it belongs to another table"
            : "never allocated, already freed, or stale (its slot was reused)";
        throw new ArgumentException($"{_cache.Name}: handle {handle} is not live: {why}", nameof(handle));
    }
}
