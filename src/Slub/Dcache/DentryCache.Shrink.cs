namespace Slub.Dcache;

// Reclaim: the LRU walk with second chance (prune_dcache_sb), shrink_dcache_sb, shrink_dcache_parent,
// and the shrink-list protocol they share with the SMO callbacks.
public sealed unsafe partial class DentryCache
{
    /// <summary>
    /// <c>prune_dcache_sb</c>: the memory-pressure shrinker. Walks up to <paramref name="nrToScan"/> entries from
    /// the old end of the LRU: a dentry in use is taken off the LRU; a referenced one loses the bit and moves to
    /// the young end (second chance); any other is moved to a private shrink list, which is then killed.
    /// Parents left unused by that are killed too. Returns the dentries freed: their memory is back in the slab
    /// when it returns (one grace period for the whole batch, see <see cref="DrainFrees"/>). Thread-safe.
    /// </summary>
    public int Prune(long nrToScan)
    {
        ThrowIfDisposed();
        int freed = PruneLru(nrToScan, ignoreReferenced: false);
        if (freed > 0) DrainFrees();
        return freed;
    }

    /// <summary>
    /// <c>shrink_dcache_sb</c>: frees every unused dentry (ignoring the referenced bit), repeating until the LRU is
    /// empty. Returns the dentries freed. When it returns, every dentry killed before it (by any operation) is
    /// back in the slab (<see cref="DrainFrees"/>). Thread-safe.
    /// </summary>
    public int ShrinkAll()
    {
        ThrowIfDisposed();
        int freed = 0;
        while (_lru.Count > 0) freed += PruneLru(1024, ignoreReferenced: true);
        DrainFrees();
        return freed;
    }

    /// <summary>
    /// Waits for a grace period of the lock-free walkers (<c>synchronize_rcu</c> + <c>rcu_barrier</c>): every
    /// dentry and name retired before the call is back in its slab afterwards. Kills on other paths (dput of an
    /// unhashed dentry, drop, rename) only retire, one dentry at a time; their memory comes back at the
    /// reclaimer's next pass (every <see cref="Slub.Rcu.EpochReclaimer.PollThreshold"/> retirements), at the next
    /// drain, or — for dentries of a slab SMO isolates — in that migrate call.
    /// No lock of the cache may be held (a walker may be spinning on a dentry lock inside its read section).
    /// </summary>
    private void DrainFrees() => _rcu.Synchronize();

    /// <summary>
    /// <c>shrink_dcache_parent</c>: frees every unused dentry below <paramref name="dentry"/> (which the caller
    /// holds). Dentries in use, and their ancestors, stay. Returns the dentries freed; their memory is back in the
    /// slab when it returns (<see cref="DrainFrees"/>). Thread-safe.
    /// </summary>
    public int ShrinkParent(Dentry dentry)
    {
        CheckHeld(dentry);
        return ShrinkParent(dentry.Address);
    }

    private int PruneLru(long nrToScan, bool ignoreReferenced)
    {
        var dispose = new ShrinkList();
        _lru.Enter();
        try
        {
            for (long i = 0; i < nrToScan; i++)
            {
                nint p = _lru.Head;
                if (p == 0) break;
                var d = (DentryData*)p;
                // LRU lock before dentry lock is the reverse order: only try (the kernel's trylock; LRU_SKIP).
                if (!SpinLockWord.TryEnter(ref d->LockWord)) { _lru.Rotate(p); continue; }
                if (d->Count != 0)
                {
                    // In use: off the LRU (LRU_REMOVED); the last dput puts it back. Like d_lru_isolate, keep
                    // the referenced bit: a hot dentry keeps its second chance.
                    _lru.Remove(p);
                    d->Flags &= ~(uint)DentryFlags.LruList;
                }
                else if (!ignoreReferenced && (d->Flags & (uint)DentryFlags.Referenced) != 0)
                {
                    d->Flags &= ~(uint)DentryFlags.Referenced;   // second chance (LRU_ROTATE)
                    _lru.Rotate(p);
                }
                else
                {
                    _lru.Remove(p);
                    d->Flags |= (uint)(DentryFlags.ShrinkList | DentryFlags.LruList);
                    dispose.Add(p);
                }
                Unlock(d);
            }
        }
        finally { _lru.Exit(); }
        if (dispose.Count == 0) return 0;
        var toFree = new List<nint>(dispose.Count);
        _tree.EnterWriteLock();
        try
        {
            while (dispose.Take() is var p && p != 0) ShrinkOneTreeLocked(p, toFree);
        }
        finally { _tree.ExitWriteLock(); }
        FreeAll(toFree);
        return toFree.Count;
    }

    private int ShrinkParent(nint top)
    {
        int freed = 0;
        var stack = new Stack<nint>();
        var toFree = new List<nint>();
        while (true)
        {
            var list = new ShrinkList();
            toFree.Clear();
            _tree.EnterWriteLock();
            try
            {
                // select_collect: every unused descendant not on somebody else's shrink list.
                stack.Push(top);
                while (stack.Count > 0)
                {
                    var parent = (DentryData*)stack.Pop();
                    for (nint c = parent->Children; c != 0; c = ((DentryData*)c)->SibNext)
                    {
                        var d = (DentryData*)c;
                        if (d->Children != 0) stack.Push(c);
                        Lock(d);
                        if (d->Count == 0 && (d->Flags & (uint)DentryFlags.ShrinkList) == 0)
                        {
                            if ((d->Flags & (uint)DentryFlags.LruList) != 0)
                            {
                                _lru.Enter();
                                _lru.Remove(c);
                                _lru.Exit();
                            }
                            d->Flags |= (uint)(DentryFlags.ShrinkList | DentryFlags.LruList);
                            list.Add(c);
                        }
                        Unlock(d);
                    }
                }
                // The caller holds a reference on top, so killing ancestors stops below it.
                while (list.Take() is var p && p != 0) ShrinkOneTreeLocked(p, toFree);
            }
            finally { _tree.ExitWriteLock(); }
            FreeAll(toFree);
            freed += toFree.Count;
            if (toFree.Count == 0) break;
        }
        // A subtree can be large (an invalidated directory): its memory is back when this returns, as Prune's is.
        if (freed > 0) DrainFrees();
        return freed;
    }

    /// <summary>The outcome of one entry of a shrink list: killed and freed by us, killed by somebody else and freed by us (they left the free to the list owner), or left alone.</summary>
    private enum ShrinkOutcome : byte { Freed, FreedKilledElsewhere, Busy }

    /// <summary>
    /// One step of <c>shrink_dentry_list</c>: takes <paramref name="p"/> off the caller's shrink list; frees it if
    /// somebody killed it meanwhile (they left the free to us); leaves it alone if it gained references (its
    /// last dput puts it back on the LRU); otherwise kills it and any ancestor whose count drops to zero.
    /// Tree lock held for writing.
    /// </summary>
    private ShrinkOutcome ShrinkOneTreeLocked(nint p, List<nint> toFree)
    {
        var d = (DentryData*)p;
        Lock(d);
        d->Flags &= ~(uint)(DentryFlags.ShrinkList | DentryFlags.LruList);
        if ((d->Flags & (uint)DentryFlags.Killed) != 0)
        {
            Unlock(d);
            toFree.Add(p);
            return ShrinkOutcome.FreedKilledElsewhere;
        }
        if (d->Count != 0)
        {
            // A count of zero again after this point would need a dput, which sees LruList clear and re-adds it.
            Unlock(d);
            return ShrinkOutcome.Busy;
        }
        KillAndAncestorsLocked(p, toFree, killAncestors: true);
        return ShrinkOutcome.Freed;
    }
}
