namespace Slub.XArray;

/// <summary>
/// The advanced API (<c>struct xa_state</c>, the <c>xas_*</c> functions): a cursor that remembers where it is in
/// the tree, for efficient iteration and multi-step updates.
/// </summary>
/// <remarks>
/// <para><b>Locking.</b> Reading methods (<see cref="Load"/>, <see cref="Reload"/>, <see cref="Find"/>,
/// <see cref="FindMarked"/>, <see cref="Next"/>, <see cref="Prev"/>, <see cref="GetMark"/>) need either the
/// array's lock (<see cref="XArray.Lock"/>) or a read section (<see cref="XArray.ReadLock"/>); writing methods
/// need the lock and throw <see cref="InvalidOperationException"/> without it. As in the kernel, a cursor
/// must not keep its position across giving up the lock or leaving the read section: call
/// <see cref="Pause"/> (forward iteration) or <see cref="Reset"/> first.</para>
/// <para><b>Thread-safety.</b> A cursor is a mutable struct owned by one thread: not thread-safe. Threads share
/// the array, each with its own cursor, under the locking rule above.</para>
/// <para><b>Entries.</b> Unlike the normal API, the cursor returns reserved entries (<see cref="XaEntry.Zero"/>)
/// rather than null. Sibling entries are resolved to their multi-index entry; retry entries restart the walk.
/// <see cref="Store"/> accepts null, <see cref="XaEntry.Zero"/> and user entries (the kernel also lets advanced
/// users store retry entries; we do not, since a lock-free reader would spin on them).</para>
/// <para><b>Preallocation.</b> <see cref="PreallocateNodes"/> allocates nodes outside the lock (the
/// <c>xas_nomem</c> role); stores through this cursor use them first. Unused ones must be given back with
/// <see cref="ReleasePreallocated"/>. Preallocated nodes carry the array's id, as later kernels'
/// <c>xas_split_alloc</c> does, and node migration recognises them by their linkage, not by that id.</para>
/// </remarks>
public unsafe struct XaState
{
    /// <summary>
    /// Restart: not walked. Positioned: on an entry (or an empty slot). Paused: <see cref="Index"/> is where the next
    /// <see cref="Find"/> starts. Bounds: ran off the end. Erased: <see cref="Store"/> removed the entry at
    /// <see cref="Index"/> (or failed), so its node may be gone; <see cref="Find"/> resumes after the stored range
    /// and <see cref="Next"/>/<see cref="Prev"/> step from <see cref="Index"/>.
    /// </summary>
    private enum Status : byte { Restart, Positioned, Paused, Bounds, Erased }

    private readonly XArray _xa;
    private Status _status;
    private XaNode* _node;      // null with Positioned: the head
    private int _offset;        // canonical slot of the current entry
    private ulong _nodeBase;    // first index _node covers
    private XaNode* _alloc;     // preallocated nodes chained through Parent
    private int _allocCount;

    /// <summary>A cursor at <paramref name="index"/> for entries of order <paramref name="order"/> (<c>XA_STATE_ORDER</c>).</summary>
    public XaState(XArray xa, ulong index, int order = 0)
    {
        ArgumentNullException.ThrowIfNull(xa);
        if ((uint)order > 63) throw new ArgumentOutOfRangeException(nameof(order));
        _xa = xa;
        Index = index;
        Order = order;
    }

    /// <summary>The array this cursor walks.</summary>
    public XArray Array => _xa;

    /// <summary>The index the cursor is at (<c>xa_index</c>).</summary>
    public ulong Index { get; private set; }

    /// <summary>The order of stores through this cursor.</summary>
    public int Order { get; private set; }

    /// <summary>The error of the last operation (<c>xas_error</c>).</summary>
    public XaError Error { get; private set; }

    /// <summary>True after a search ran off the end (<c>XAS_BOUNDS</c>).</summary>
    public bool IsAtBounds => _status == Status.Bounds;

    /// <summary>
    /// True while the cursor is unwalked (<c>XAS_RESTART</c>): new, after <see cref="Set"/> or <see cref="Reset"/>,
    /// or after a free-mark search of an allocating array found no free index up to its max (see <see cref="FindMarked"/>).
    /// </summary>
    public bool IsRestart => _status == Status.Restart;

    /// <summary>Preallocated nodes not used yet.</summary>
    public int PreallocatedNodes => _allocCount;

    /// <summary>Address of the node holding the current entry, 0 at the head or when not positioned (diagnostics and tests).</summary>
    internal nint NodeAddress => _status == Status.Positioned ? (nint)_node : 0;

    /// <summary><c>xas_set</c>: moves to <paramref name="index"/>, unwalked.</summary>
    public void Set(ulong index)
    {
        Index = index;
        _status = Status.Restart;
        Error = XaError.None;
    }

    /// <summary><c>xas_set_order</c>.</summary>
    public void SetOrder(ulong index, int order)
    {
        if ((uint)order > 63) throw new ArgumentOutOfRangeException(nameof(order));
        Set(index);
        Order = order;
    }

    /// <summary><c>xas_reset</c>: forget the position; the next operation walks from the head.</summary>
    public void Reset() => _status = Status.Restart;

    private void Position(XaNode* n, int off)
    {
        _node = n;
        _offset = off;
        _status = Status.Positioned;
        if (n != null)
            _nodeBase = n->Shift + XaCodec.ChunkShift >= 64 ? 0 : Index & ~((1UL << (n->Shift + XaCodec.ChunkShift)) - 1);
    }

    /// <summary><c>xas_load</c>: the entry at <see cref="Index"/> (reserved entries included), positioning the cursor on it.</summary>
    public XaEntry Load()
    {
        ulong e = _xa.Walk(Index, out var n, out int off);
        if (n == null && Index != 0 && e == 0) _status = Status.Bounds;
        else Position(n, off);
        return new XaEntry(e);
    }

    /// <summary><c>xas_reload</c>: re-reads the slot the cursor is on (after taking a reference to what <see cref="Load"/> returned). Walks again if the node was freed or moved meanwhile.</summary>
    public XaEntry Reload()
    {
        if (_status == Status.Positioned && _node != null)
        {
            ulong e = XaNode.ReadSlot(_node, _offset);
            if (e != XaCodec.RetryEntry && !XaCodec.IsSibling(e) && !(XaCodec.IsNode(e) && _node->Shift > 0))
                return new XaEntry(e);
        }
        return Load();
    }

    private void RequireLock()
    {
        if (!_xa.WriterLock.IsHeldByCurrentThread)
            throw new InvalidOperationException("XaState write operations need the array's lock (XArray.Lock())");
    }

    /// <summary>
    /// <c>xas_store</c>: stores <paramref name="entry"/> as an entry of <see cref="Order"/> at <see cref="Index"/>
    /// and returns the entry that was there (raw: reservations are returned as <see cref="XaEntry.Zero"/>). Sets
    /// <see cref="Error"/> on failure. As in the kernel, the cursor stays on the stored entry, so
    /// <see cref="SetMark"/>, <see cref="GetOrder"/> and <see cref="Next"/> act on it and a <see cref="Find"/>
    /// loop that stores as it goes continues after it; after an erase they step from <see cref="Index"/>.
    /// </summary>
    public XaEntry Store(XaEntry entry)
    {
        RequireLock();
        if (XaCodec.IsAdvanced(entry.Raw)) { Error = XaError.Invalid; return XaEntry.Null; }
        if (_xa.IsDisposed) _xa.ThrowDisposed();
        var err = _xa.StoreWith(Index, Order, entry.Raw, ref _alloc, ref _allocCount, out ulong old);
        Error = err;
        if (err == XaError.None && entry.Raw != 0)
        {
            // The store may have grown the tree or replaced nodes: walk to where the entry now is.
            _xa.Walk(Index, out var n, out int off);
            Position(n, off);
        }
        else
            EraseAfterRange();
        return new XaEntry(old);
    }

    /// <summary>After an erase (or a failed store) the node may be gone: remember where a <see cref="Find"/> resumes.</summary>
    private void EraseAfterRange()
    {
        ulong mask = Order == 64 ? ulong.MaxValue : (1UL << Order) - 1;
        ulong last = Index | mask;
        if (last == ulong.MaxValue) { _status = Status.Bounds; return; }
        _status = Status.Erased;
        _resume = last + 1;
    }

    /// <summary>Where <see cref="Find"/> resumes in the <see cref="Status.Erased"/> state.</summary>
    private ulong _resume;

    /// <summary>
    /// <c>xas_pause</c>: lets the caller drop the lock or leave the read section. As in the kernel,
    /// <see cref="Index"/> moves to the first index after the current entry (skipping the rest of a multi-index
    /// entry), where the next <see cref="Find"/> or <see cref="Next"/> continues; past the last index the cursor
    /// is at its bounds (<see cref="Index"/> 0).
    /// </summary>
    public void Pause()
    {
        if (_status != Status.Positioned) return;
        ulong last = _node == null ? 0 : _nodeBase + ((ulong)(XArray.SiblingCount(_node, _offset) + _offset + 1) << _node->Shift) - 1;
        Index = unchecked(last + 1);
        _status = last == ulong.MaxValue ? Status.Bounds : Status.Paused;
    }

    /// <summary><c>xas_find</c>: the next non-null entry (reservations included) up to <paramref name="max"/>; the first call looks at <see cref="Index"/> itself. Null at the end.</summary>
    public XaEntry Find(ulong max = ulong.MaxValue)
    {
        // The common step of a scan: the next slot of the leaf the cursor is on holds a plain entry (not null,
        // not internal: no sibling, retry or reservation), so it is the next entry. Everything else searches.
        if (_status == Status.Positioned && _node != null && _offset < XaCodec.ChunkMask && _node->Shift == 0)
        {
            ulong e = XaNode.ReadSlot(_node, _offset + 1);
            ulong index = _nodeBase + (ulong)(_offset + 1);
            if (e != 0 && ((e - 2) & 3) != 0 && index <= max)
            {
                _offset++;
                Index = index;
                return new XaEntry(e);
            }
        }
        return FindFiltered(max, XArray.FilterPresentOrZero, out _);
    }

    /// <summary>
    /// <c>xas_find_marked</c>: like <see cref="Find"/> for entries carrying <paramref name="mark"/>.
    /// </summary>
    /// <remarks>
    /// In an allocating array mark 0 is the free mark (<c>XA_FREE_MARK</c>), and the cursor then stops at free
    /// indices as the kernel's does: positioned on the lowest free slot of the tree at or after the cursor, with
    /// <see cref="Index"/> set and a null entry returned. When the tree has no free slot there, the first free index
    /// lies past the tree's reach: if it is at most <paramref name="max"/> the cursor is at its bounds
    /// (<see cref="IsAtBounds"/>) with <see cref="Index"/> on it; otherwise no index up to max is free and the
    /// cursor is left unwalked (<see cref="IsRestart"/>, the kernel's <c>XAS_RESTART</c>), which is how
    /// <c>__xa_alloc</c> tells "busy".
    /// </remarks>
    public XaEntry FindMarked(XaMark mark, ulong max = ulong.MaxValue)
    {
        if (mark == XaMark.Present) return Find(max);
        if (mark == XaMark.Mark0 && _xa.TrackFree) return FindFree(max);
        return FindFiltered(max, XArray.FilterOf(mark), out _);
    }

    /// <summary><see cref="FindMarked"/> for the free mark of an allocating array (see its remarks).</summary>
    private XaEntry FindFree(ulong max)
    {
        if (_status == Status.Bounds) return XaEntry.Null;
        ulong from = Index;   // unchanged by a failed search
        // ALLOC1 (XA_FLAGS_ZERO_BUSY): index 0 is never free (its slot keeps the free bit; TryAlloc starts at 1 too).
        if (_xa.ZeroBusy && Index == 0 && _status is Status.Restart or Status.Paused) Index = 1;
        XaEntry e = FindFiltered(max, XArray.FilterFree, out ulong start);
        if (_status == Status.Positioned) return e;
        // Nothing free inside the tree from start on: the first free index is the first one past the tree's
        // reach (a root of shift 60 reaches every index), or index 1 when the head holds the entry at 0.
        bool free = true;
        ulong first = start;
        ulong head = Volatile.Read(ref _xa._head);
        if (XaCodec.IsNode(head))
        {
            int shift = ((XaNode*)XaCodec.ToNode(head))->Shift;
            if (shift >= 58) free = false;
            else if (start <= (64UL << shift) - 1) first = 64UL << shift;
        }
        else if (start == 0 && head != 0) first = 1;
        if (free && start <= max && first <= max)
        {
            Index = first;
            _status = Status.Bounds;
        }
        else
        {
            Index = from;
            _status = Status.Restart;
        }
        return XaEntry.Null;
    }

    /// <summary>The search behind <see cref="Find"/> and <see cref="FindMarked"/>; <paramref name="start"/> is the first index it looked at.</summary>
    private XaEntry FindFiltered(ulong max, int filter, out ulong start)
    {
        XArray.Found f;
        bool ok;
        switch (_status)
        {
            case Status.Bounds:
                start = Index;
                return XaEntry.Null;
            case Status.Positioned when _node != null:
            {
                int next = _offset + XArray.SiblingCount(_node, _offset) + 1;
                start = next >= XaCodec.ChunkSize && _node->Shift + XaCodec.ChunkShift >= 64
                    ? ulong.MaxValue
                    : _nodeBase + ((ulong)next << _node->Shift);
                ok = _xa.FindCore(Index, max, filter, out f, _node, next, _nodeBase);
                break;
            }
            case Status.Positioned:   // at the head entry (index 0): nothing after it unless the tree grew
                start = unchecked(Index + 1);
                if (Index == ulong.MaxValue || Index + 1 > max) { _status = Status.Bounds; return XaEntry.Null; }
                ok = _xa.FindCore(Index + 1, max, filter, out f);
                break;
            default:
            {
                start = _status == Status.Erased ? _resume : Index;
                if (start > max) { _status = Status.Bounds; return XaEntry.Null; }
                ok = _xa.FindCore(start, max, filter, out f);
                break;
            }
        }
        if (!ok) { _status = Status.Bounds; return XaEntry.Null; }
        Index = f.Index;
        _node = f.Node;
        _offset = f.Offset;
        _nodeBase = f.NodeBase;
        _status = Status.Positioned;
        return new XaEntry(f.Entry);
    }

    /// <summary>
    /// <c>xas_next</c>: moves to the next index (wrapping from <see cref="ulong.MaxValue"/> to 0) and returns its
    /// entry, null included. On an unwalked cursor it just loads <see cref="Index"/>.
    /// </summary>
    public XaEntry Next()
    {
        if (_status is Status.Restart or Status.Paused) return Load();
        Index = unchecked(Index + 1);
        if (_status == Status.Positioned && _node != null && _node->Shift == 0 && (Index & XaCodec.ChunkMask) != 0)
            return StepInLeaf((int)(Index & XaCodec.ChunkMask));
        return Load();
    }

    /// <summary><c>xas_prev</c>: like <see cref="Next"/>, backwards (wrapping from 0 to <see cref="ulong.MaxValue"/>).</summary>
    public XaEntry Prev()
    {
        if (_status is Status.Restart or Status.Paused) return Load();
        Index = unchecked(Index - 1);
        if (_status == Status.Positioned && _node != null && _node->Shift == 0 && (Index & XaCodec.ChunkMask) != XaCodec.ChunkMask)
            return StepInLeaf((int)(Index & XaCodec.ChunkMask));
        return Load();
    }

    private XaEntry StepInLeaf(int off)
    {
        ulong e = XaNode.ReadSlot(_node, off);
        if (XaCodec.IsSibling(e))
        {
            off = XaCodec.SiblingOffset(e);
            e = XaNode.ReadSlot(_node, off);
        }
        if (e == XaCodec.RetryEntry || XaCodec.IsNode(e)) return Load();
        _offset = off;
        return new XaEntry(e);
    }

    /// <summary><c>xas_get_order</c>: order of the entry the cursor is on.</summary>
    public int GetOrder()
    {
        if (_status != Status.Positioned || _node == null) return 0;
        ulong e = XaNode.ReadSlot(_node, _offset);
        if (e == 0) return 0;
        int order = XArray.EntryOrder(_node, _offset);
        // The node may have been migrated meanwhile (its slots turn into retry entries): then ask the array.
        return XaNode.ReadSlot(_node, _offset) == e && e != XaCodec.RetryEntry ? order : _xa.GetOrder(Index);
    }

    /// <summary><c>xas_get_mark</c> on the current entry.</summary>
    public bool GetMark(XaMark mark) =>
        _status == Status.Positioned && _xa.GetMarkAt(_node, _offset, XArray.FilterOf(mark) is var m && m <= 2 ? m : throw new ArgumentOutOfRangeException(nameof(mark)));

    /// <summary><c>xas_set_mark</c> on the current entry (lock held). No-op when not positioned on an entry.</summary>
    public void SetMark(XaMark mark)
    {
        RequireLock();
        if (_status != Status.Positioned || CurrentRaw() == 0) return;
        _xa.SetMarkAt(_node, _offset, MarkNumber(mark));
    }

    /// <summary><c>xas_clear_mark</c> on the current entry (lock held).</summary>
    public void ClearMark(XaMark mark)
    {
        RequireLock();
        if (_status != Status.Positioned || CurrentRaw() == 0) return;
        _xa.ClearMarkAt(_node, _offset, MarkNumber(mark));
    }

    private static int MarkNumber(XaMark mark) =>
        mark is XaMark.Mark0 or XaMark.Mark1 or XaMark.Mark2 ? (int)mark : throw new ArgumentOutOfRangeException(nameof(mark));

    private ulong CurrentRaw() => _node == null ? Volatile.Read(ref _xa._head) : XaNode.ReadSlot(_node, _offset);

    /// <summary>
    /// Allocates <paramref name="count"/> nodes now, without the lock, for later stores through this cursor
    /// (<c>xas_nomem</c>). Returns <see cref="XaError.NoMemory"/> if the cache is exhausted (keeping what it got).
    /// </summary>
    public XaError PreallocateNodes(int count)
    {
        var cache = _xa.NodeCache;
        for (int i = 0; i < count; i++)
        {
            XaNode* n = (XaNode*)cache.TryAlloc();
            if (n == null) return Error = XaError.NoMemory;
            _xa.Nodes.CountAllocation();
            XaNode.Clear(n);
            n->Parent = _alloc;
            Volatile.Write(ref n->Array, _xa.Id);
            _alloc = n;
            _allocCount++;
        }
        return XaError.None;
    }

    /// <summary><c>xas_destroy</c>: frees preallocated nodes that were not used.</summary>
    public void ReleasePreallocated()
    {
        var cache = _xa.NodeCache;
        while (_alloc != null)
        {
            XaNode* n = _alloc;
            _alloc = n->Parent;
            Volatile.Write(ref n->Array, XaNode.NoArray);
            cache.Free((nint)n);
        }
        _allocCount = 0;
    }

    /// <summary>Index, order, cursor status and last error, for debugging.</summary>
    public override string ToString() => $"XaState(index={Index}, order={Order}, {_status}, error={Error})";
}
