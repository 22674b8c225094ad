using System.Runtime.CompilerServices;
using Slub.Rcu;

namespace Slub.XArray;

/// <summary>
/// A sparse array of 64-bit entries indexed by <see cref="ulong"/>: the Linux XArray, with its data model
/// (64-slot nodes from the movable <c>xa_node</c> slab cache, value/pointer/internal entries, three marks
/// aggregated upwards, multi-index entries) and its semantics.
/// </summary>
/// <remarks>
/// <para><b>Errors.</b> Operations the kernel lets fail come in two forms: <c>TryX</c> returns an
/// <see cref="XaError"/> (never throws for busy, no memory or invalid entry) and <c>X</c> throws
/// <see cref="XArrayException"/>. Reads cannot fail.</para>
/// <para><b>Concurrency.</b> Writers serialise on the array's lock (<see cref="Lock"/>; the normal API takes
/// it). Readers (<see cref="Load"/>, <see cref="Find"/>, marks, enumeration) never block: they run inside an
/// epoch read section of <see cref="Reclaimer"/>, and every node unlinked by erase, shrinking, destroy or
/// migration is freed only after a grace period, so a reader in a section never touches freed memory. (The plain
/// <see cref="Load"/> and <see cref="TryGetValue"/> first try without a section: they validate every read against
/// a count of retirements and never use or return what a freed node held; see <c>TryLoadFast</c>.) A node unlinked with
/// entries in it has its slots overwritten with retry entries, and a reader restarts its walk when it meets one
/// (an empty node deleted by erase keeps its null slots: "nothing here" was true when it was unlinked). Loads below index 2^26
/// go through the leaf directory first (<c>index &gt;&gt; 6</c> → leaf; XArray.LeafDirectory.cs), whose entries
/// writers clear before unlinking a leaf.</para>
/// <para><b>Memory.</b> Nodes are native memory: dispose the array to free them.</para>
/// <para><b>Unsafe code.</b> Node access uses raw <see cref="XaNode"/> pointers obtained from the
/// <c>xa_node</c> cache; the pointers never leave this class, <see cref="XaState"/> and
/// <see cref="XaNodeCache"/>.</para>
/// </remarks>
public sealed unsafe partial class XArray : IDisposable
{
    private readonly XaNodeCache _nodes;
    private readonly EpochReclaimer _rcu;
    private readonly Lock _lock = new();
    private readonly bool _trackFree, _zeroBusy;
    /// <summary>xa_head: null, the entry at index 0, or a node entry for the root.</summary>
    internal ulong _head;
    /// <summary>
    /// The head again, for the lock-free fast paths (<see cref="LoadRaw"/>, <see cref="XaReader"/>): when the head
    /// is the root node of a tree of one to four levels, the height is packed into the top byte (node addresses
    /// leave it zero), so a load reads one word instead of the head and then the root's shift; top byte 0 means
    /// "take the slow path". Written with the head by <see cref="PublishHead"/>; each word is a consistent
    /// snapshot on its own.
    /// </summary>
    internal ulong _headWalk;
    /// <summary>Marks of the head (XA_FLAGS_MARK): the head entry's marks, or "something below is marked" for a root node.</summary>
    private int _headMarks;
    private bool _allocWrapped;
    private bool _disposed;
    /// <summary>Spare nodes preallocated by an <see cref="XaState"/> for the store in progress.</summary>
    private XaNode* _prealloc;

    /// <summary>The id stored in every node's <c>array</c> field (see <see cref="XArrayRegistry"/>).</summary>
    internal readonly long Id;

    /// <summary>Creates an empty array whose nodes come from <paramref name="allocator"/>'s <c>xa_node</c> cache (default: <see cref="SlabAllocator.Shared"/>). Thread-safe.</summary>
    /// <exception cref="ObjectDisposedException"><paramref name="allocator"/> has been disposed.</exception>
    public XArray(XaFlags flags = XaFlags.None, SlabAllocator? allocator = null)
    {
        Flags = flags;
        _trackFree = (flags & XaFlags.TrackFree) != 0;
        _zeroBusy = (flags & XaFlags.ZeroBusy) != 0;
        allocator ??= SlabAllocator.Shared;
        // Its Dispose detached the arrays it had; a new one would be a live array over a cache with no memory.
        if (allocator.IsDisposed) SlabAllocator.ThrowDisposed(XaNodeCache.CacheName);
        _nodes = XaNodeCache.For(allocator);
        _rcu = _nodes.Reclaimer;
        _headMarks = _trackFree ? 1 : 0;
        Id = XArrayRegistry.Register(this);
    }

    /// <summary>The flags the array was created with.</summary>
    public XaFlags Flags { get; }

    /// <summary>True for arrays created with <see cref="XaFlags.Alloc"/> or <see cref="XaFlags.Alloc1"/>.</summary>
    public bool IsAllocating => _trackFree;

    /// <summary>The deferred-reclamation domain of this array's nodes (shared by every array of the allocator).</summary>
    public EpochReclaimer Reclaimer => _rcu;

    /// <summary>The <c>xa_node</c> cache this array allocates from.</summary>
    public KmemCache NodeCache => _nodes.Cache;

    /// <summary>Takes the array's lock (<c>xa_lock</c>), for multi-step updates through <see cref="XaState"/>. <c>using (xa.Lock()) { … }</c> Thread-safe; the scope belongs to the calling thread.</summary>
    public Lock.Scope Lock() => _lock.EnterScope();

    /// <summary>Enters a read section (<c>rcu_read_lock</c>) for lock-free reads through <see cref="XaState"/>.</summary>
    public EpochReclaimer.ReadScope ReadLock() => _rcu.EnterRead();

    internal Lock WriterLock => _lock;
    internal XaNodeCache Nodes => _nodes;
    internal bool IsDisposed => _disposed;
    internal bool TrackFree => _trackFree;
    internal bool ZeroBusy => _zeroBusy;

    /// <summary>True if no index holds anything, reserved entries included (<c>xa_empty</c>). Lock-free.</summary>
    public bool IsEmpty => Volatile.Read(ref _head) == 0;

    // ------------------------------------------------------------------ reading

    /// <summary><c>xa_load</c>: the entry at <paramref name="index"/>; <see cref="XaEntry.Null"/> if none or reserved. Lock-free.</summary>
    public XaEntry Load(ulong index)
    {
        ulong e = LoadAny(index);
        return new XaEntry(e == XaCodec.ZeroEntry ? 0 : e);
    }

    /// <summary>
    /// Opens a read section for many loads: <c>using var r = xa.BeginRead();</c> then <c>r.Load(i)</c> or
    /// <c>r.TryGetValue(i, out v)</c>, or <c>r.LoadMany</c> for a batch. As cheap per load as <see cref="Load"/> or a little cheaper; see <see cref="XaReader"/>. Lock-free.
    /// </summary>
    public XaReader BeginRead() => new(this);

    /// <summary>Loads a value entry: true and its value, or false if the index holds no value entry. Lock-free.</summary>
    public bool TryGetValue(ulong index, out ulong value)
    {
        ulong e = LoadAny(index);
        value = e >> 1;
        return (e & 1) != 0;
    }

    /// <summary>
    /// The entry at <paramref name="index"/> for a caller outside any read section: first without one
    /// (<see cref="TryLoadFast{TGuard}"/>), and inside one when that cannot answer.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ulong LoadAny(ulong index) => TryLoadFast(index, new RetireSeqGuard(this), out ulong e) ? e : LoadInNewSection(index);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private ulong LoadInNewSection(ulong index)
    {
        var r = _rcu.EnterReadFast();   // the walk cannot throw: no try/finally needed
        ulong e = LoadRaw(index);
        EpochReclaimer.ExitReadFast(r);
        return e;
    }

    /// <summary>
    /// The load's fast path: the leaf directory, then the unrolled walk. True with the answer; false when the answer
    /// needs the general walk (a head the unrolled walk does not take, a sibling, retry or reserved entry) or, with a
    /// validating guard, when a retirement may have overlapped the load. With <see cref="XaUnrolledWalk.InSection"/>
    /// the caller is inside a read section or holds the lock (<see cref="LoadRaw"/>) and nothing is checked; with
    /// <see cref="RetireSeqGuard"/> it runs without a read section, validated instead: a seqcount read on the way in
    /// and checked after the reads whose results are used.
    /// </summary>
    /// <remarks>
    /// <para><b>Why it is safe.</b> Every node and directory block is unlinked, then <see cref="_retireSeq"/> is
    /// bumped (lock held), then it is retired; it is freed only after that. What the load may read after a block it
    /// reached was freed, and why that cannot fault:</para>
    /// <list type="bullet">
    /// <item><b>The directory.</b> Blocks are type-stable (<see cref="XaDirectoryPool"/>): a freed block stays a
    /// directory of the same length, so the entry read is inside it and is <see cref="NoLeaf"/> or a leaf of some
    /// array of this allocator; the leaf's slot is then arena memory, mapped while the allocator lives. No check is
    /// needed before the final one.</item>
    /// <item><b>The tree.</b> A freed node can be reused by any cache, and a pointer read from it could point
    /// anywhere, so the walk checks the count after every slot read, before following what it read: a node pointer
    /// that passes was read from a node not yet retired, so it names a real node, whose memory is in the arena
    /// even if it is freed right after.</item>
    /// </list>
    /// <para>The last check follows the read of the entry returned: that entry was in a block not yet retired, the
    /// same answer a reader inside a section would get. Slot and directory reads are acquire reads, so a check's
    /// read of the count cannot be satisfied before them (free on x86; <c>ldar</c> on Arm64).</para>
    /// <para><b>Why.</b> A read section costs the thread's reader record, which .NET finds through a call into the
    /// runtime's thread-local storage on every load: measured as about half of a plain load (docs/benchmarks.md).
    /// A check is a read of one word of this object, which the load already has in its cache.</para>
    /// <para><paramref name="guard"/>'s <c>BeforeRead</c> runs before every read through a pointer (tests run a
    /// writer there); the production guard's is empty.</para>
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool TryLoadFast<TGuard>(ulong index, TGuard guard, out ulong entry) where TGuard : struct, XaUnrolledWalk.IWalkGuard
    {
        nint d = Volatile.Read(ref _dir);
        ulong e, key = index >> XaCodec.ChunkShift;
        guard.BeforeRead();
        if (key < DirectoryLength(d))
        {
            ulong leaf = Volatile.Read(ref DirectoryEntries(d)[key]);   // NoLeaf or a leaf (of this allocator: see remarks)
            guard.BeforeRead();
            e = XaNode.SlotAt(leaf, index & XaCodec.ChunkMask);
            if (((e - 2) & 3) != 0 && guard.Holds()) goto Found;   // not internal: null, value or pointer
        }
        ulong w = Volatile.Read(ref _headWalk);
        int levels = (int)(w >> 56);
        if (!XaUnrolledWalk.TryWalk(w & HeadWalkAddressMask, levels, index, guard, out e))
        {
            if ((uint)(levels - 1) >= 4u) goto Slow;   // a head the unrolled walk does not take
            e = 0;   // beyond the root's reach: nothing stored there (nothing was dereferenced)
        }
        else if (((e - 2) & 3) == 0) goto Slow;   // sibling, retry, zero, or the guard failed
    Found:
        entry = e;
        return true;
    Slow:
        entry = 0;
        return false;
    }

    /// <summary>
    /// Bumped (lock held) each time a node or directory block of this array is unlinked, before it is retired:
    /// the seqcount <see cref="TryLoadFast{TGuard}"/> validates against.
    /// </summary>
    internal long _retireSeq;

    /// <summary>The walk guard of <see cref="TryLoadFast{TGuard}"/>: holds while <see cref="_retireSeq"/> keeps the value it had when the guard was made.</summary>
    internal readonly struct RetireSeqGuard(XArray xa) : XaUnrolledWalk.IWalkGuard
    {
        private readonly long _seq = Volatile.Read(ref xa._retireSeq);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public bool Holds() => Volatile.Read(ref xa._retireSeq) == _seq;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void BeforeRead() { }
    }

    /// <summary>Counts a retirement for <see cref="TryLoadFast{TGuard}"/>; call it (lock held) before handing the block to the reclaimer.</summary>
    private void CountRetirement() => Volatile.Write(ref _retireSeq, _retireSeq + 1);

    /// <summary>The walk of <see cref="Load"/> without the read section: the caller is inside one (or the load-cost probe).</summary>
    internal ulong LoadInSection(ulong index) => LoadRaw(index);

    /// <summary>
    /// The entry at <paramref name="index"/>, as <see cref="Walk"/> returns it, on the shortest path: one test
    /// per level separates user entries (returned) from internal ones, and only siblings, retry and zero
    /// entries leave the loop for <see cref="Walk"/>. Caller is inside a read section or holds the lock.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ulong LoadRaw(ulong index) => TryLoadFast(index, new XaUnrolledWalk.InSection(), out ulong e) ? e : LoadRawSlow(index);

    /// <summary>
    /// <see cref="LoadRaw"/> for what the fast path does not answer: a head the unrolled walk does not take (null, an
    /// entry at index 0, five levels or more), or a sibling, retry or reserved entry on the way (the general
    /// <see cref="Walk"/>, which restarts on retry entries). Caller is inside a read section or holds the lock.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private ulong LoadRawSlow(ulong index) =>
        (uint)((int)(Volatile.Read(ref _headWalk) >> 56) - 1) < 4u ? Walk(index, out _, out _) : LoadRawOther(index);

    /// <summary>
    /// <see cref="LoadRaw"/> for every head the unrolled walk does not take: null, an entry at index 0, or a root
    /// of five levels or more (or at an address with its top byte in use).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private ulong LoadRawOther(ulong index)
    {
        ulong e = Volatile.Read(ref _head);
        if (!XaCodec.IsNode(e)) return index == 0 ? e : 0;   // null, a user entry or a reservation at index 0
        int shift = ((XaNode*)XaCodec.ToNode(e))->Shift;
        if ((index >> shift) > XaCodec.ChunkMask) return 0;
        return WalkDeep(index, e, shift);
    }

    /// <summary><see cref="LoadRaw"/> for trees of five levels or more: the same walk as a loop.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal ulong WalkDeep(ulong index, ulong e, int shift)
    {
        while (true)
        {
            e = XaNode.SlotOf(e, index, shift);
            if ((e & 3) != 2) return e;
            if (e <= 4096 || shift == 0) return Walk(index, out _, out _);
            shift -= XaCodec.ChunkShift;
        }
    }

    /// <summary>
    /// Walks to the slot holding <paramref name="index"/> and returns its entry (siblings resolved to their
    /// canonical slot; retry entries make the walk restart). <paramref name="node"/> is null when the entry is
    /// the head. Callers hold the lock or are inside a read section.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ulong Walk(ulong index, out XaNode* node, out int offset)
    {
    restart:
        ulong e = Volatile.Read(ref _head);
        node = null;
        offset = 0;
        if (!XaCodec.IsNode(e)) return index == 0 ? e : 0;
        XaNode* n = (XaNode*)XaCodec.ToNode(e);
        int shift = n->Shift;
        if ((index >> shift) > XaCodec.ChunkMask) return 0;
        while (true)
        {
            // The shift of each level follows from the root's (a child sits 6 bits below its parent, in any node a
            // reader can reach, retired ones included), so a level costs the slot's line, not the header's too.
            int off = (int)((index >> shift) & XaCodec.ChunkMask);
            e = XaNode.ReadSlot(n, off);
            if (XaCodec.IsSibling(e))
            {
                off = XaCodec.SiblingOffset(e);
                e = XaNode.ReadSlot(n, off);
                // A canonical slot never holds a node or retry entry while its siblings are live: we raced
                // with a store that replaced the multi-index entry; start again.
                if (XaCodec.IsNode(e) || e == XaCodec.RetryEntry) goto restart;
            }
            if (e == XaCodec.RetryEntry) goto restart;
            node = n;
            offset = off;
            if (shift == 0 || !XaCodec.IsNode(e)) return e;
            n = (XaNode*)XaCodec.ToNode(e);
            shift -= XaCodec.ChunkShift;
        }
    }

    /// <summary><c>xa_get_order</c>: the order of the entry covering <paramref name="index"/> (0 if none). Lock-free.</summary>
    public int GetOrder(ulong index)
    {
        using var rs = _rcu.EnterRead();
        while (true)
        {
            ulong e = Walk(index, out var n, out int off);
            if (e == 0 || n == null) return 0;
            int order = EntryOrder(n, off);
            // A node that is migrated or freed under this reader has its slots turned into retry entries, first
            // to last. If the entry's own slot still holds it after the siblings were counted, the count came
            // from a live node; otherwise a sibling may have read as a retry entry and the order be too small.
            if (XaNode.ReadSlot(n, off) == e) return order;
        }
    }

    /// <summary>Order of the entry whose canonical slot is (<paramref name="n"/>, <paramref name="off"/>).</summary>
    internal static int EntryOrder(XaNode* n, int off) => n->Shift + System.Numerics.BitOperations.Log2((uint)(SiblingCount(n, off) + 1));

    internal static int SiblingCount(XaNode* n, int canonical)
    {
        ulong sib = XaCodec.MkSibling(canonical);
        int k = 0;
        while (canonical + k + 1 < XaCodec.ChunkSize && XaNode.ReadSlot(n, canonical + k + 1) == sib) k++;
        return k;
    }

    // ------------------------------------------------------------------ writing (normal API)

    private void CheckWritable()
    {
        if (_disposed) ThrowDisposed();
    }

    /// <summary>Throws <see cref="ObjectDisposedException"/> saying whether the array or its allocator was disposed.</summary>
    [System.Diagnostics.CodeAnalysis.DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    internal void ThrowDisposed() =>
        throw new ObjectDisposedException(nameof(XArray), _nodes.Cache.Allocator.IsDisposed
            ? $"XArray: the SlabAllocator of its {XaNodeCache.CacheName} cache has been disposed; its entries and nodes are gone"
            : "XArray: the array has been disposed (its entries were erased and its nodes freed); create a new one");

    /// <summary>
    /// <c>xa_store</c>: replaces whatever is at <paramref name="index"/> (the whole multi-index entry if one
    /// covers it) and returns the old entry (null for a reserved one). Storing null erases, except in an
    /// allocating array, where it leaves the index reserved. Marks are kept unless the entry is null.
    /// Thread-safe: takes the array's lock.
    /// </summary>
    /// <exception cref="XArrayException">Internal entry (<see cref="XaError.Invalid"/>) or no memory.</exception>
    public XaEntry Store(ulong index, XaEntry entry)
    {
        var error = TryStore(index, entry, out var old);
        if (error != XaError.None) XArrayException.Throw(error, $"{nameof(Store)}({index})");
        return old;
    }

    /// <summary>Stores a value entry; see <see cref="Store"/>. Thread-safe: takes the array's lock.</summary>
    public XaEntry StoreValue(ulong index, ulong value) => Store(index, XaEntry.FromValue(value));

    /// <summary><see cref="Store"/> without exceptions. Thread-safe: takes the array's lock.</summary>
    public XaError TryStore(ulong index, XaEntry entry, out XaEntry old) => TryStoreOrder(index, 0, entry, out old);

    /// <summary>
    /// Multi-index store (<c>xa_store_order</c> of the test suite, <c>xas_store</c> on an order-k state): ties
    /// the naturally aligned 2^<paramref name="order"/> indices around <paramref name="index"/> to one entry,
    /// replacing everything in that range (the new entry gets the union of the replaced entries' marks).
    /// Thread-safe: takes the array's lock.
    /// </summary>
    public XaEntry StoreOrder(ulong index, int order, XaEntry entry)
    {
        var error = TryStoreOrder(index, order, entry, out var old);
        if (error != XaError.None) XArrayException.Throw(error, $"{nameof(StoreOrder)}({index}, order {order})");
        return old;
    }

    /// <summary><see cref="StoreOrder"/> without exceptions. Thread-safe: takes the array's lock.</summary>
    public XaError TryStoreOrder(ulong index, int order, XaEntry entry, out XaEntry old)
    {
        old = default;
        if ((uint)order > 63 || XaCodec.IsAdvanced(entry.Raw)) return XaError.Invalid;
        ulong e = entry.Raw;
        if (e == 0 && _trackFree) e = XaCodec.ZeroEntry;
        lock (_lock)
        {
            CheckWritable();
            var err = StoreCore(index, order, e, out ulong prev);
            old = new XaEntry(prev == XaCodec.ZeroEntry ? 0 : prev);
            return err;
        }
    }

    /// <summary><c>xa_erase</c>: removes the entry at <paramref name="index"/> (all of a multi-index entry) and returns it (null for a reserved one). In an allocating array the index becomes free. Cannot fail. Thread-safe: takes the array's lock.</summary>
    public XaEntry Erase(ulong index)
    {
        lock (_lock)
        {
            CheckWritable();
            StoreCore(index, 0, 0, out ulong prev);
            return new XaEntry(prev == XaCodec.ZeroEntry ? 0 : prev);
        }
    }

    /// <summary><c>xa_insert</c>: stores only if nothing, not even a reservation, is at <paramref name="index"/>. Null inserts a reservation. Returns <see cref="XaError.Busy"/> if occupied. Thread-safe: takes the array's lock.</summary>
    public XaError TryInsert(ulong index, XaEntry entry)
    {
        if (XaCodec.IsAdvanced(entry.Raw)) return XaError.Invalid;
        ulong e = entry.Raw == 0 ? XaCodec.ZeroEntry : entry.Raw;
        lock (_lock)
        {
            CheckWritable();
            if (LoadLocked(index) != 0) return XaError.Busy;
            return StoreCore(index, 0, e, out _);
        }
    }

    /// <summary><see cref="TryInsert"/>, throwing <see cref="XArrayException"/> (also for <see cref="XaError.Busy"/>). Thread-safe: takes the array's lock.</summary>
    public void Insert(ulong index, XaEntry entry)
    {
        var error = TryInsert(index, entry);
        if (error != XaError.None) XArrayException.Throw(error, $"{nameof(Insert)}({index})");
    }

    /// <summary>
    /// <c>xa_cmpxchg</c>: if the entry at <paramref name="index"/> equals <paramref name="expected"/>, stores
    /// <paramref name="entry"/>. Returns the entry that was there (success iff it equals expected). A reserved
    /// index compares equal to <see cref="XaEntry.Zero"/> but is returned as null.
    /// Thread-safe: takes the array's lock.
    /// </summary>
    public XaEntry CompareExchange(ulong index, XaEntry expected, XaEntry entry)
    {
        var error = TryCompareExchange(index, expected, entry, out var cur);
        if (error != XaError.None) XArrayException.Throw(error, $"{nameof(CompareExchange)}({index})");
        return cur;
    }

    /// <summary><see cref="CompareExchange"/> without exceptions. Thread-safe: takes the array's lock.</summary>
    public XaError TryCompareExchange(ulong index, XaEntry expected, XaEntry entry, out XaEntry current)
    {
        current = default;
        if (XaCodec.IsAdvanced(entry.Raw)) return XaError.Invalid;
        lock (_lock)
        {
            CheckWritable();
            ulong cur = LoadLocked(index);
            current = new XaEntry(cur == XaCodec.ZeroEntry ? 0 : cur);
            if (cur != expected.Raw) return XaError.None;
            return StoreCore(index, 0, entry.Raw, out _);
        }
    }

    /// <summary><c>xa_reserve</c>: reserves <paramref name="index"/> if it is empty, so that a later store there needs no allocation. Reads still return null. Thread-safe: takes the array's lock.</summary>
    public XaError TryReserve(ulong index) => TryCompareExchange(index, XaEntry.Null, XaEntry.Zero, out _);

    /// <summary><see cref="TryReserve"/>, throwing on no memory. Thread-safe: takes the array's lock.</summary>
    public void Reserve(ulong index)
    {
        var error = TryReserve(index);
        if (error != XaError.None) XArrayException.Throw(error, $"{nameof(Reserve)}({index})");
    }

    /// <summary><c>xa_release</c>: removes a reservation that is still unused; does nothing otherwise. Thread-safe: takes the array's lock.</summary>
    public void Release(ulong index) => TryCompareExchange(index, XaEntry.Zero, XaEntry.Null, out _);

    /// <summary>
    /// <c>xa_store_range</c>: afterwards every index in [<paramref name="first"/>, <paramref name="last"/>] loads
    /// <paramref name="entry"/> (stored as the fewest aligned multi-index entries); null erases the range.
    /// <see cref="XaError.Invalid"/> for internal entries (reservations included) or last &lt; first.
    /// Thread-safe: takes the array's lock.
    /// </summary>
    public XaError TryStoreRange(ulong first, ulong last, XaEntry entry)
    {
        if (last < first || XaCodec.IsInternal(entry.Raw)) return XaError.Invalid;
        lock (_lock)
        {
            CheckWritable();
            ulong i = first;
            while (true)
            {
                int align = i == 0 ? 64 : System.Numerics.BitOperations.TrailingZeroCount(i);
                ulong span = last - i;   // count - 1
                int fit = span == ulong.MaxValue ? 64 : System.Numerics.BitOperations.Log2(span + 1);
                int order = Math.Min(63, Math.Min(align, fit));
                var err = StoreCore(i, order, entry.Raw, out _);
                if (err != XaError.None) return err;
                ulong end = i + (1UL << order) - 1;
                if (end >= last) return XaError.None;
                i = end + 1;
            }
        }
    }

    /// <summary><see cref="TryStoreRange"/>, throwing on error. Thread-safe: takes the array's lock.</summary>
    public void StoreRange(ulong first, ulong last, XaEntry entry)
    {
        var error = TryStoreRange(first, last, entry);
        if (error != XaError.None) XArrayException.Throw(error, $"{nameof(StoreRange)}({first}..{last})");
    }

    /// <summary><c>xa_destroy</c>: removes every entry and frees every node (after a grace period). The array stays usable. Thread-safe: takes the array's lock.</summary>
    public void Destroy()
    {
        lock (_lock)
        {
            if (_disposed) return;
            DestroyLocked();
        }
    }

    /// <summary>Destroys the contents and unregisters the array; afterwards writes throw <see cref="ObjectDisposedException"/> and reads return null. Idempotent; thread-safe (takes the array's lock; readers in flight keep valid nodes until their read sections end).</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed) return;
            DestroyLocked();
            ReleaseDirectory();
            _disposed = true;
        }
        XArrayRegistry.Unregister(Id);
    }

    /// <summary>
    /// Called by <see cref="SlabAllocator.Dispose"/> before it releases the memory: every array whose nodes come from
    /// <paramref name="allocator"/> becomes disposed and empty without touching its nodes, so reads return null
    /// and writes throw <see cref="ObjectDisposedException"/> instead of walking unmapped memory.
    /// </summary>
    internal static void DetachAll(SlabAllocator allocator)
    {
        foreach (var xa in XArrayRegistry.Snapshot())
        {
            if (xa._nodes.Cache.Allocator != allocator) continue;
            lock (xa._lock)
            {
                if (xa._disposed) continue;
                xa.ForgetAllLeaves();   // the directory is native memory of its own; the leaves it names are not
                xa.PublishHead(0);
                xa.ReleaseDirectory();
                xa._disposed = true;
            }
            XArrayRegistry.Unregister(xa.Id);
        }
    }

    private void DestroyLocked()
    {
        DropTree();
        _allocWrapped = false;
    }

    /// <summary>Empties the array: the head becomes null and every node is retired.</summary>
    private void DropTree()
    {
        ulong head = _head;
        ForgetAllLeaves();   // before the head stops reaching them
        PublishHead(0);
        _headMarks = _trackFree ? 1 : 0;
        if (XaCodec.IsNode(head)) FreeSubtree((XaNode*)XaCodec.ToNode(head));
    }

    /// <summary>Sets the head (lock held): <see cref="_head"/> and the packed copy the load fast path reads.</summary>
    private void PublishHead(ulong e)
    {
        Volatile.Write(ref _head, e);
        Volatile.Write(ref _headWalk, PackHead(e));
    }

    /// <summary>Mask of the node entry in <see cref="_headWalk"/>.</summary>
    internal const ulong HeadWalkAddressMask = 0x00FF_FFFF_FFFF_FFFF;

    /// <summary>
    /// The <see cref="_headWalk"/> form of head <paramref name="e"/>: a node entry of a root at shift 0..18 with
    /// the tree's height (1..4) in the top byte; 0 in the top byte (slow path) for anything else.
    /// </summary>
    private static ulong PackHead(ulong e)
    {
        if (!XaCodec.IsNode(e) || (e >> 56) != 0) return e & HeadWalkAddressMask;   // top byte 0: slow path
        int shift = ((XaNode*)XaCodec.ToNode(e))->Shift;
        if (shift > 18) return e;
        return e | ((ulong)(shift / XaCodec.ChunkShift + 1) << 56);
    }

    internal ulong LoadLocked(ulong index) => WalkLocked(index, out _, out _);

    /// <summary>
    /// <see cref="Walk"/> for writers (lock held): through the leaf directory when it names the leaf covering
    /// <paramref name="index"/> (under the lock every entry is exact: the linked leaf there, or <see cref="NoLeaf"/>),
    /// else down the tree.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ulong WalkLocked(ulong index, out XaNode* node, out int offset, bool forErase = false)
    {
        nint d = _dir;
        ulong key = index >> XaCodec.ChunkShift;
        if (key < DirectoryLength(d))
        {
            ulong leaf = DirectoryEntries(d)[key];
            if (leaf != NoLeaf)
            {
                XaNode* n = (XaNode*)XaCodec.ToNode(leaf);
                int off = (int)(index & XaCodec.ChunkMask);
                ulong e = n->Slots[off];
                if (XaCodec.IsSibling(e))
                {
                    off = XaCodec.SiblingOffset(e);
                    e = n->Slots[off];
                }
                node = n;
                offset = off;
                return e;
            }
        }
        return WalkTreeLocked(index, out node, out offset, forErase);
    }

    /// <summary>
    /// <see cref="Walk"/> under the lock (no retry entries in live nodes). For an erase (<paramref name="forErase"/>)
    /// it asks for each node's header line on the way down: an erase that empties a node climbs the parent chain
    /// through the headers (count, parent, offset), which are then on their way instead of missed one by one.
    /// </summary>
    private ulong WalkTreeLocked(ulong index, out XaNode* node, out int offset, bool forErase)
    {
        ulong e = _head;
        node = null;
        offset = 0;
        if (!XaCodec.IsNode(e)) return index == 0 ? e : 0;
        XaNode* n = (XaNode*)XaCodec.ToNode(e);
        int shift = n->Shift;
        if ((index >> shift) > XaCodec.ChunkMask) return 0;
        while (true)
        {
            if (forErase && System.Runtime.Intrinsics.X86.Sse.IsSupported) System.Runtime.Intrinsics.X86.Sse.Prefetch0(n);
            int off = (int)((index >> shift) & XaCodec.ChunkMask);
            e = n->Slots[off];
            if (XaCodec.IsSibling(e))
            {
                off = XaCodec.SiblingOffset(e);
                e = n->Slots[off];
            }
            node = n;
            offset = off;
            if (shift == 0 || !XaCodec.IsNode(e)) return e;
            n = (XaNode*)XaCodec.ToNode(e);
            shift -= XaCodec.ChunkShift;
        }
    }

    /// <summary>The array's id and flags and whether it is empty; entries are not listed.</summary>
    public override string ToString() => $"XArray#{Id} (flags={Flags}, {(IsEmpty ? "empty" : "non-empty")})";
}
