namespace Slub.Dcache;

// The dentry operations of fs/dcache.c: alloc, add/instantiate, lookup, get/put, delete, drop, move, kill.
public sealed unsafe partial class DentryCache
{
    // ------------------------------------------------------------------ public d_* operations

    /// <summary>
    /// <c>d_alloc</c>: a new dentry named <paramref name="name"/> under <paramref name="parent"/>, with one
    /// reference, linked into the parent's children (taking a reference on the parent) but not hashed and not
    /// instantiated: lookups cannot find it until <see cref="Add"/>. Thread-safe.
    /// </summary>
    public Dentry Alloc(Dentry parent, string name)
    {
        Span<byte> buf = stackalloc byte[DentryName.MaxLength * 3];
        int len = EncodeOrThrow(name, buf);
        var bytes = buf[..len];
        CheckHeld(parent);
        nint p = AllocDentry(parent.Address, DentryName.Hash(parent.Address, bytes), bytes);
        _tree.EnterWriteLock();
        try { LinkChild(parent.Address, p); }
        finally { _tree.ExitWriteLock(); }
        return new Dentry(p);
    }

    /// <summary>
    /// <c>d_add</c>: instantiates <paramref name="dentry"/> (<see cref="InodeKind.Negative"/> makes it a negative
    /// dentry) and hashes it so lookups find it. Fails if it is hashed already or a hashed dentry of the same
    /// name exists under the same parent. Thread-safe.
    /// </summary>
    public void Add(Dentry dentry, InodeKind kind)
    {
        CheckHeld(dentry);
        if (kind == InodeKind.Unknown) throw new ArgumentOutOfRangeException(nameof(kind), kind, "d_add needs a known kind");
        var d = dentry.D;
        _tree.EnterWriteLock();
        try
        {
            if ((d->Flags & (uint)(DentryFlags.Hashed | DentryFlags.Root)) != 0)
                throw new InvalidOperationException($"d_add: {dentry} is hashed already");
            if (_hash.Find(d->Parent, d->Hash, new ReadOnlySpan<byte>((void*)d->Name, d->Length)) != 0)
                throw new InvalidOperationException($"d_add: '{dentry.Name}' is already cached under its parent");
            Lock(d);
            InstantiateLocked(d, kind);
            _hash.Insert(dentry.Address);
            Unlock(d);
        }
        finally { _tree.ExitWriteLock(); }
    }

    /// <summary><c>d_instantiate</c>: attaches an inode of kind <paramref name="kind"/> to an unhashed or negative dentry without hashing it. Thread-safe.</summary>
    public void Instantiate(Dentry dentry, InodeKind kind)
    {
        CheckHeld(dentry);
        if (kind is InodeKind.Unknown or InodeKind.Negative) throw new ArgumentOutOfRangeException(nameof(kind), kind, "d_instantiate needs an inode");
        var d = dentry.D;
        // The tree lock serialises every writer of d_seq (a hashed negative dentry may be instantiated in place).
        _tree.EnterWriteLock();
        Lock(d);
        try
        {
            if (d->Kind is not (InodeKind.Unknown or InodeKind.Negative))
                throw new InvalidOperationException($"d_instantiate: {dentry} already has an inode");
            InstantiateLocked(d, kind);
        }
        finally
        {
            Unlock(d);
            _tree.ExitWriteLock();
        }
    }

    /// <summary>
    /// <c>d_lookup</c>: the hashed child <paramref name="name"/> of <paramref name="parent"/> with a new
    /// reference (positive or negative), or a null handle when it is not cached. Thread-safe.
    /// </summary>
    public Dentry Lookup(Dentry parent, string name)
    {
        Span<byte> buf = stackalloc byte[DentryName.MaxLength * 3];
        CheckHeld(parent);
        int len = DentryName.Encode(name, buf);
        if (len < 0) return default;
        var bytes = buf[..len];
        return new Dentry(LookupFast(parent.Address, DentryName.Hash(parent.Address, bytes), bytes));
    }

    /// <summary><c>dget</c>: one more reference on a dentry the caller holds. Thread-safe.</summary>
    public Dentry Get(Dentry dentry)
    {
        ThrowIfDisposed();
        if (dentry.IsNull) throw new ArgumentNullException(nameof(dentry));
        var d = dentry.D;
        Lock(d);
        int c = d->Count;
        if (c < 0) { Unlock(d); throw new InvalidOperationException($"dget on a dead dentry 0x{dentry.Address:x}"); }
        d->Count = c + 1;
        Unlock(d);
        return dentry;
    }

    /// <summary>
    /// <c>dput</c>: drops a reference. At zero, a hashed dentry stays cached as unused (onto the LRU, or marked
    /// referenced if it is on it already); an unhashed one is killed, and so is its parent if that was its
    /// last reference and it is unhashed too. Null handles are ignored. Thread-safe.
    /// </summary>
    public void Put(Dentry dentry)
    {
        if (dentry.IsNull) return;
        ThrowIfDisposed();
        nint p = dentry.Address;
        var d = (DentryData*)p;
        Lock(d);
        int c = d->Count;
        if (c > 1) { d->Count = c - 1; Unlock(d); return; }
        if (c != 1) { Unlock(d); throw new InvalidOperationException($"dput on dentry 0x{p:x} with count {c}"); }
        if ((d->Flags & (uint)DentryFlags.Hashed) != 0)
        {
            d->Count = 0;
            MakeUnusedLocked(p);
            Unlock(d);
            return;
        }
        Unlock(d);
        // Unhashed: the last reference kills it, which needs the tree lock.
        var toFree = new List<nint>(2);
        _tree.EnterWriteLock();
        try { PutTreeLocked(p, toFree); }
        finally { _tree.ExitWriteLock(); }
        FreeAll(toFree);
    }

    /// <summary>
    /// <c>d_delete</c> (after an unlink or rmdir): unused descendants are shrunk; then, if the caller holds the
    /// only reference and no child is left, the dentry turns negative in place, otherwise it is unhashed and
    /// dies with its last reference. Thread-safe.
    /// </summary>
    public void Delete(Dentry dentry)
    {
        CheckHeld(dentry);
        if ((dentry.Flags & DentryFlags.Root) != 0) throw new InvalidOperationException("d_delete on the root");
        ShrinkParent(dentry.Address);
        var d = dentry.D;
        _tree.EnterWriteLock();
        try
        {
            Lock(d);
            if (d->Count == 1 && d->Children == 0 && d->Kind != InodeKind.Negative)
            {
                SeqCount.WriteBegin(ref d->Seq);
                d->SetKind(InodeKind.Negative);
                d->Inode = 0;
                Interlocked.Increment(ref _nrNegative);
                SeqCount.WriteEnd(ref d->Seq);
            }
            else if (d->Kind != InodeKind.Negative)
            {
                SeqCount.WriteBegin(ref d->Seq);
                UnhashLocked(dentry.Address);
                SeqCount.WriteEnd(ref d->Seq);
            }
            Unlock(d);
        }
        finally { _tree.ExitWriteLock(); }
    }

    /// <summary><c>d_drop</c>: unhashes the dentry; lookups miss it from now on and it dies with its last reference. Thread-safe.</summary>
    public void Drop(Dentry dentry)
    {
        CheckHeld(dentry);
        _tree.EnterWriteLock();
        try { DropTreeLocked(dentry.Address); }
        finally { _tree.ExitWriteLock(); }
    }

    /// <summary>
    /// <c>d_move</c> (after a rename on disk): gives <paramref name="dentry"/> the name <paramref name="newName"/>
    /// under <paramref name="newParent"/> and rehashes it (the hash is salted by the parent). A cached dentry
    /// that had that name is unhashed, and killed at once if unused. Cached children move along, since they
    /// point at the dentry, whose address does not change. Thread-safe.
    /// </summary>
    public void Move(Dentry dentry, Dentry newParent, string newName)
    {
        CheckHeld(dentry);
        CheckHeld(newParent);
        if ((dentry.Flags & DentryFlags.Root) != 0) throw new InvalidOperationException("d_move of the root");
        if (newParent.Kind != InodeKind.Directory) throw new InvalidOperationException($"d_move: {newParent} is not a directory");
        Span<byte> buf = stackalloc byte[DentryName.MaxLength * 3];
        int len = EncodeOrThrow(newName, buf);
        var name = buf[..len];
        nint external = DentryName.AllocExternal(_kmalloc, len);   // never allocate under the tree lock
        nint oldExternal = 0;
        var toFree = new List<nint>(2);
        var d = dentry.D;
        bool renaming = false;
        _tree.EnterWriteLock();
        try
        {
            for (nint a = newParent.Address; ; a = ((DentryData*)a)->Parent)
            {
                if (a == dentry.Address) throw new InvalidOperationException("d_move: the new parent is inside the dentry being moved");
                if (a == _root) break;
            }
            uint hash = DentryName.Hash(newParent.Address, name);
            nint target = _hash.Find(newParent.Address, hash, name);
            if (target == dentry.Address)
            {
                oldExternal = external;   // same place, same name: nothing to do
                return;
            }
            // One rename section for the whole move: lock-free walkers that overlap any part of it fall back. The
            // only writer of the cache-wide sequence: unhashes and kills invalidate just their own dentry's d_seq.
            SeqCount.WriteBegin(ref _renameSeq);
            renaming = true;
            if (target != 0)
            {
                var t = (DentryData*)target;
                Lock(t);
                SeqCount.WriteBegin(ref t->Seq);
                UnhashLocked(target);
                SeqCount.WriteEnd(ref t->Seq);
                if (t->Count == 0) KillAndAncestorsLocked(target, toFree, killAncestors: false);
                else Unlock(t);
            }
            Lock(d);
            SeqCount.WriteBegin(ref d->Seq);   // odd until the dentry is rehashed under its new name
            _hash.Remove(dentry.Address);
            Unlock(d);
            nint oldParent = d->Parent;
            oldExternal = DentryName.External(d);
            DentryName.Store(_kmalloc, d, name, external);
            d->Hash = hash;
            if (oldParent != newParent.Address)
            {
                UnlinkChild(oldParent, dentry.Address);
                d->Parent = newParent.Address;
                LinkChild(newParent.Address, dentry.Address);
                PutTreeLocked(oldParent, toFree);
            }
            Lock(d);
            _hash.Insert(dentry.Address);
            SeqCount.WriteEnd(ref d->Seq);
            Unlock(d);
        }
        finally
        {
            if (renaming) SeqCount.WriteEnd(ref _renameSeq);
            _tree.ExitWriteLock();
            // The replaced name may be under a lock-free walker's comparison: it waits for a grace period.
            if (oldExternal != 0)
            {
                if (renaming) _rcu.Retire(oldExternal, _freeName);
                else _kmalloc.Free(oldExternal);
            }
        }
        FreeAll(toFree);
    }

    // ------------------------------------------------------------------ internals

    private static int EncodeOrThrow(string name, Span<byte> buf)
    {
        int len = DentryName.Encode(name, buf);
        if (len <= 0 || len > DentryName.MaxLength || name is "." or "..")
            throw new ArgumentException($"invalid dentry name '{name}'", nameof(name));
        return len;
    }

    /// <summary>The handle is non-null, of this cache, and referenced (the root always is).</summary>
    private void CheckHeld(Dentry dentry)
    {
        ThrowIfDisposed();
        if (dentry.IsNull) throw new ArgumentNullException(nameof(dentry));
        if (!Cache.Owns(dentry.Address) || dentry.D->Sb != _sb)
            throw new ArgumentException($"0x{dentry.Address:x} is not a dentry of the cache for {RootPath}", nameof(dentry));
        if (dentry.Count <= 0 && (dentry.Flags & DentryFlags.Root) == 0)
            throw new InvalidOperationException($"dentry 0x{dentry.Address:x} is not referenced (count {dentry.Count})");
    }

    /// <summary>
    /// <c>__d_alloc</c>: a slab object set up as a dentry with count 1, not linked anywhere. No locks held.
    /// The slot's count is <see cref="DentryData.DeadCount"/> (constructor or last free) while the fields are
    /// written, so a concurrent isolate sees it as not evictable; the count then goes from non-zero to
    /// non-zero under the dentry lock, and the lock word itself is never re-initialised.
    /// </summary>
    private nint AllocDentry(nint parent, uint hash, ReadOnlySpan<byte> name)
    {
        nint external = DentryName.AllocExternal(_kmalloc, name.Length);
        nint p;
        try { p = Cache.Alloc(); }
        catch { if (external != 0) _kmalloc.Free(external); throw; }
        var d = (DentryData*)p;
        d->Flags = 0;
        d->SetKind(InodeKind.Unknown);
        d->Seq = 0;
        d->HashNext = d->HashPrev = 0;
        d->Parent = parent;
        d->Hash = hash;
        DentryName.Store(_kmalloc, d, name, external);
        d->Inode = 0;
        d->Time = DateTime.UtcNow.Ticks;
        d->LruNext = d->LruPrev = 0;
        d->SibNext = d->SibPrev = d->Children = 0;
        d->Sb = _sb;
        Lock(d);
        d->Count = 1;
        Unlock(d);
        Interlocked.Increment(ref _nrDentry);
        return p;
    }

    /// <summary>
    /// Frees a dead dentry once no lock-free walker can hold it: retired to the cache's reclaimer (RCU-delayed
    /// <c>dentry_free</c>). Until its grace period ends the slot stays allocated and intact — dead
    /// (<see cref="DentryData.DeadCount"/>, <see cref="DentryFlags.Killed"/>), which isolate skips. Any locks may be held.
    /// </summary>
    private void FreeDentry(nint p) => _rcu.Retire(p, _freeDentry);

    /// <summary>
    /// The free itself (a retired dentry's free action, or a dentry no walker ever saw): back to the constructed
    /// state (lock word untouched, count already dead; only <see cref="DentryFlags.Killed"/> stays set), then to
    /// the slab, and its external name to kmalloc. Nothing to do once the allocator's memory is gone.
    /// </summary>
    private void FreeDentryNow(nint p)
    {
        if (_allocator.IsDisposed) return;
        var d = (DentryData*)p;
        nint external = DentryName.External(d);
        d->Flags = (uint)DentryFlags.Killed;   // tells isolate's estimate this slot is going, until reused
        d->Seq = 0;
        d->HashNext = d->HashPrev = d->Parent = 0;
        d->Hash = 0;
        d->Length = 0;
        d->Name = 0;
        d->Inode = 0;
        new Span<byte>(d->InlineName, DentryData.InlineNameLength).Clear();
        d->Time = 0;
        d->LruNext = d->LruPrev = d->SibNext = d->SibPrev = d->Children = 0;
        d->Sb = 0;
        Cache.Free(p);
        if (external != 0) _kmalloc.Free(external);
    }

    private void FreeNameNow(nint external)
    {
        if (!_allocator.IsDisposed) _kmalloc.Free(external);
    }

    private void FreeAll(List<nint> toFree)
    {
        foreach (var p in toFree) FreeDentry(p);
    }

    /// <summary>Sets the kind and inode of a dentry. Tree lock held for writing, its lock held.</summary>
    private void InstantiateLocked(DentryData* d, InodeKind kind)
    {
        bool wasNegative = d->Kind == InodeKind.Negative;
        SeqCount.WriteBegin(ref d->Seq);
        d->SetKind(kind);
        d->Inode = kind == InodeKind.Negative ? 0 : (ulong)Interlocked.Increment(ref _nextIno);
        SeqCount.WriteEnd(ref d->Seq);
        if (kind == InodeKind.Negative && !wasNegative) Interlocked.Increment(ref _nrNegative);
        else if (kind != InodeKind.Negative && wasNegative) Interlocked.Decrement(ref _nrNegative);
    }

    /// <summary>Hash lookup that takes a reference (<c>__d_lookup</c>). Takes the tree lock for reading.</summary>
    private nint LookupFast(nint parent, uint hash, ReadOnlySpan<byte> name)
    {
        Interlocked.Increment(ref _lookups);
        _tree.EnterReadLock();
        try
        {
            nint p = _hash.Find(parent, hash, name);
            if (p == 0) return 0;
            // Hashed dentries are alive (killing unhashes under the write lock), so the count is >= 0.
            var d = (DentryData*)p;
            Lock(d);
            d->Count++;
            Unlock(d);
            Interlocked.Increment(ref _hits);
            return p;
        }
        finally { _tree.ExitReadLock(); }
    }

    /// <summary>Links a new child into its parent's children and takes a reference on the parent. Tree lock held for writing.</summary>
    private static void LinkChild(nint parent, nint child)
    {
        var pd = (DentryData*)parent;
        var c = (DentryData*)child;
        c->SibPrev = 0;
        c->SibNext = pd->Children;
        if (pd->Children != 0) ((DentryData*)pd->Children)->SibPrev = child;
        pd->Children = child;
        Lock(pd);
        pd->Count++;
        Unlock(pd);
    }

    /// <summary>Removes a child from its parent's children (the parent's reference is dropped by the caller). Tree lock held for writing.</summary>
    private static void UnlinkChild(nint parent, nint child)
    {
        var c = (DentryData*)child;
        if (c->SibPrev != 0) ((DentryData*)c->SibPrev)->SibNext = c->SibNext;
        else ((DentryData*)parent)->Children = c->SibNext;
        if (c->SibNext != 0) ((DentryData*)c->SibNext)->SibPrev = c->SibPrev;
        c->SibNext = c->SibPrev = 0;
    }

    /// <summary>
    /// A dentry's count just reached zero and it stays cached: not on the LRU yet → onto its tail (a new
    /// dentry unreferenced; like <c>d_lru_add</c>, one that left the LRU while in use keeps its referenced bit);
    /// already on the LRU or on a shrink list → mark it referenced. Its lock held.
    /// </summary>
    private void MakeUnusedLocked(nint p)
    {
        var d = (DentryData*)p;
        if ((d->Flags & (uint)DentryFlags.LruList) != 0)
        {
            d->Flags |= (uint)DentryFlags.Referenced;
            return;
        }
        _lru.Enter();
        _lru.AddTail(p);
        _lru.Exit();
        d->Flags |= (uint)DentryFlags.LruList;
    }

    /// <summary><c>dput</c> with the tree lock already held for writing.</summary>
    private void PutTreeLocked(nint p, List<nint> toFree)
    {
        var d = (DentryData*)p;
        Lock(d);
        int c = d->Count;
        if (c > 1 || (d->Flags & (uint)DentryFlags.Root) != 0 && c > 0) { d->Count = c - 1; Unlock(d); return; }
        if (c != 1) { Unlock(d); throw new InvalidOperationException($"dput on dentry 0x{p:x} with count {c}"); }
        d->Count = 0;
        if ((d->Flags & (uint)DentryFlags.Hashed) != 0) { MakeUnusedLocked(p); Unlock(d); return; }
        KillAndAncestorsLocked(p, toFree, killAncestors: false);
    }

    /// <summary>
    /// Takes a hashed dentry out of its chain (<c>__d_drop</c>). Tree lock held for writing, its lock held, and the
    /// caller inside a write section of the dentry's own <see cref="DentryData.Seq"/> (drop, delete, kill, the target
    /// of a move): that invalidation is all a lock-free walker needs — the kernel's <c>write_seqcount_invalidate</c>
    /// in <c>__d_drop</c>. The cache-wide rename sequence is not touched: walkers elsewhere in the tree go on.
    /// Why each walker still answers right (docs/dcache.md, "Locking", "Unhash and kill during a walk"):
    /// <list type="bullet">
    /// <item>one that ended on this dentry sampled its <c>d_seq</c> before the change, so it fails to legitimise;</item>
    /// <item>one that steps onto it afterwards samples the new value, with which it must read it unhashed
    /// (acquire/release), so <see cref="DentryHashTable.FindRcu"/> skips it;</item>
    /// <item>one passing over it for another name keeps going: the unhash leaves <see cref="DentryData.HashNext"/>,
    /// and the memory stays a dentry until the walker's read section ends;</item>
    /// <item>one that misses because of it (the name it wanted was this dentry) falls back and walks under the tree
    /// lock: a miss is never an answer;</item>
    /// <item>one below it, if it was a directory on the path, went through it while it was hashed, as a walk holding
    /// references would (and its parent check fails if the unhash came while it looked up the child); a kill
    /// comes only after every dentry below it died, the walker's last one included, and that one fails to legitimise.</item>
    /// </list>
    /// </summary>
    private void UnhashLocked(nint p)
    {
        var d = (DentryData*)p;
        if ((d->Flags & (uint)DentryFlags.Hashed) == 0) return;
        System.Diagnostics.Debug.Assert(SeqCount.IsWriting(d->Seq), "unhash outside the dentry's d_seq write section");
        _hash.Remove(p);
    }

    /// <summary>Unhash (<c>__d_drop</c>). Tree lock held for writing.</summary>
    private void DropTreeLocked(nint p)
    {
        var d = (DentryData*)p;
        Lock(d);
        if ((d->Flags & (uint)DentryFlags.Hashed) != 0)
        {
            SeqCount.WriteBegin(ref d->Seq);
            UnhashLocked(p);
            SeqCount.WriteEnd(ref d->Seq);
        }
        // An unused dentry that can no longer be found would only wait for the LRU walk: kill it now.
        if (d->Count == 0 && d->Children == 0) KillAndAncestorsLocked(p, new List<nint>(0), killAncestors: false, freeNow: true);
        else Unlock(d);
    }

    /// <summary>
    /// Kills <paramref name="p"/> (tree lock held for writing, its lock held, count 0 or owned by the caller),
    /// then walks up: a parent whose count drops to zero is killed too when <paramref name="killAncestors"/>
    /// (shrinking, as the kernel's <c>shrink_kill</c>) or when it is unhashed; a hashed one stays cached as unused.
    /// </summary>
    private void KillAndAncestorsLocked(nint p, List<nint> toFree, bool killAncestors, bool freeNow = false)
    {
        while (true)
        {
            nint parent = KillLocked(p, toFree);
            if (parent == 0) break;
            var pd = (DentryData*)parent;   // locked, count 0
            if (!killAncestors && (pd->Flags & (uint)DentryFlags.Hashed) != 0)
            {
                MakeUnusedLocked(parent);
                Unlock(pd);
                break;
            }
            p = parent;
        }
        if (freeNow)
        {
            // Only callers whose toFree is private and who hold no dentry lock get here; freeing under the
            // tree lock is allowed (no lock of ours is taken by the slab free path).
            FreeAll(toFree);
            toFree.Clear();
        }
    }

    /// <summary>
    /// <c>__dentry_kill</c>: marks the dentry dead, takes it off the LRU (not off a shrink list), unhashes it,
    /// unlinks it from its parent and releases the inode; it is freed by the caller (added to
    /// <paramref name="toFree"/>) unless it is on a shrink list, whose owner frees it. Drops the reference on
    /// the parent: returns the parent, locked, when that was its last reference, else 0.
    /// Tree lock held for writing; the dentry's lock held on entry, released on return.
    /// </summary>
    private nint KillLocked(nint p, List<nint> toFree)
    {
        var d = (DentryData*)p;
        if (d->Children != 0) { Unlock(d); throw new InvalidOperationException($"dentry 0x{p:x} killed with children"); }
        d->Count = DentryData.DeadCount;
        SeqCount.WriteBegin(ref d->Seq);
        uint flags = d->Flags;
        if ((flags & (uint)(DentryFlags.LruList | DentryFlags.ShrinkList)) == (uint)DentryFlags.LruList)
        {
            _lru.Enter();
            _lru.Remove(p);
            _lru.Exit();
            d->Flags &= ~(uint)(DentryFlags.LruList | DentryFlags.Referenced);
        }
        UnhashLocked(p);
        if (d->Kind == InodeKind.Negative) Interlocked.Decrement(ref _nrNegative);
        d->Inode = 0;
        nint parent = d->Parent;
        if (parent != p && parent != 0) UnlinkChild(parent, p);
        d->Flags |= (uint)DentryFlags.Killed;
        bool ownedByList = (flags & (uint)DentryFlags.ShrinkList) != 0;
        SeqCount.WriteEnd(ref d->Seq);
        Unlock(d);
        Interlocked.Decrement(ref _nrDentry);
        if (!ownedByList) toFree.Add(p);
        if (parent == p || parent == 0) return 0;
        var pd = (DentryData*)parent;
        Lock(pd);
        if (--pd->Count > 0) { Unlock(pd); return 0; }
        return parent;
    }
}
