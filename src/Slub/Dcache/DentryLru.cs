namespace Slub.Dcache;

/// <summary>
/// The LRU of unused dentries (the superblock's <c>s_dentry_lru</c>): a doubly linked list threaded through
/// <see cref="DentryData.LruNext"/>/<see cref="DentryData.LruPrev"/>, oldest at the head. New entries go to
/// the tail unreferenced; a dentry already on the LRU whose count drops to zero again only gets
/// <see cref="DentryFlags.Referenced"/> (the second chance).
/// </summary>
/// <remarks>
/// Guarded by its own spin lock word (<see cref="Enter"/>/<see cref="Exit"/>), taken after a dentry lock
/// (dput, isolate) or before one with a try-lock (the prune walk). Never held while allocating or freeing.
/// </remarks>
internal sealed unsafe class DentryLru
{
    private int _lock;
    private nint _head, _tail;
    private long _count;

    public long Count => Volatile.Read(ref _count);
    public nint Head => _head;

    public void Enter() => SpinLockWord.Enter(ref _lock);
    public void Exit() => SpinLockWord.Exit(ref _lock);

    /// <summary><c>d_lru_add</c>'s list part: append at the tail. LRU lock held.</summary>
    public void AddTail(nint p)
    {
        var d = (DentryData*)p;
        d->LruNext = 0;
        d->LruPrev = _tail;
        if (_tail != 0) ((DentryData*)_tail)->LruNext = p; else _head = p;
        _tail = p;
        _count++;
    }

    /// <summary><c>d_lru_del</c>'s list part. LRU lock held.</summary>
    public void Remove(nint p)
    {
        var d = (DentryData*)p;
        if (d->LruPrev != 0) ((DentryData*)d->LruPrev)->LruNext = d->LruNext; else _head = d->LruNext;
        if (d->LruNext != 0) ((DentryData*)d->LruNext)->LruPrev = d->LruPrev; else _tail = d->LruPrev;
        d->LruNext = d->LruPrev = 0;
        _count--;
    }

    /// <summary>LRU_ROTATE: move to the tail. LRU lock held.</summary>
    public void Rotate(nint p)
    {
        if (p == _tail) return;
        Remove(p);
        AddTail(p);
    }

    /// <summary>The dentries on the LRU, oldest first (a snapshot for tests and tools).</summary>
    public List<nint> Snapshot()
    {
        var list = new List<nint>();
        Enter();
        try
        {
            for (nint p = _head; p != 0; p = ((DentryData*)p)->LruNext) list.Add(p);
        }
        finally { Exit(); }
        return list;
    }
}

/// <summary>
/// A private shrink list (the kernel's <c>dispose</c> list): singly linked through
/// <see cref="DentryData.LruNext"/>, in insertion order. Only its owner touches it; a dentry on it carries
/// <see cref="DentryFlags.ShrinkList"/>, which tells everybody else not to free it.
/// </summary>
internal unsafe struct ShrinkList
{
    public nint Head, Tail;
    public int Count;

    /// <summary>Appends <paramref name="p"/> (its dentry lock held by the caller).</summary>
    public void Add(nint p)
    {
        var d = (DentryData*)p;
        d->LruNext = 0;
        d->LruPrev = 0;
        if (Tail != 0) ((DentryData*)Tail)->LruNext = p; else Head = p;
        Tail = p;
        Count++;
    }

    /// <summary>Takes the first entry, or 0.</summary>
    public nint Take()
    {
        nint p = Head;
        if (p == 0) return 0;
        Head = ((DentryData*)p)->LruNext;
        if (Head == 0) Tail = 0;
        ((DentryData*)p)->LruNext = 0;
        Count--;
        return p;
    }
}
