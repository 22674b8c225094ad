namespace Slub;

// The free slow path and list maintenance: SLUB's __slab_free, deactivate_slab, put_cpu_partial,
// unfreeze_partials, flush_all.
public sealed unsafe partial class KmemCache
{
    /// <summary>
    /// Frees <paramref name="obj"/> into <paramref name="slab"/>, which is not the CPU slab of
    /// <paramref name="c"/> (or the cache is a debug cache). Entered with the CPU lock held; returns with it released.
    /// </summary>
    private void FreeSlow(KmemCacheCpu c, Slab slab, nint obj)
    {
        if (_allocator.IsDisposed)
        {
            SpinLockWord.Exit(ref c.LockWord);
            ThrowDisposed();
        }
        if (_debug)
        {
            SpinLockWord.Exit(ref c.LockWord);
            FreeDebug(slab, obj);
            return;
        }
        if (slab == c.Slab && obj == c.Freelist)
        {
            SpinLockWord.Exit(ref c.LockWord);
            throw new InvalidFreeException(Name, obj, $"kmem_cache_free({Name}): double free of object 0x{obj:x} (it is the first object on the CPU free list)");
        }
        try
        {
            Slab? discard = SlabFree(c, slab, obj, obj, new ReadOnlySpan<nint>(in obj));
            if (discard is not null) DiscardSlab(discard);
        }
        finally
        {
            SpinLockWord.Exit(ref c.LockWord);
        }
    }

    /// <summary>
    /// Returns a chain of slots of one slab (<paramref name="head"/> … <paramref name="tail"/>, linked through
    /// their free pointers; <paramref name="objects"/> holds the same slots, in any order) to the slab and does whatever list move that implies
    /// (<c>__slab_free</c>; bulk frees hand over a whole chain at once, like the kernel's detached free lists).
    /// Returns a slab to discard (after locks are dropped) or null. CPU lock of <paramref name="c"/> held.
    /// </summary>
    private Slab? SlabFree(KmemCacheCpu c, Slab slab, nint head, nint tail, ReadOnlySpan<nint> objects)
    {
        int count = objects.Length;
        var n = _nodes[slab.Node];
        bool haveList = false;
        try
        {
            while (true)
            {
                SpinLockWord.Enter(ref slab.LockWord);
                nint prior = slab.Freelist;
                if (prior == head)
                {
                    SpinLockWord.Exit(ref slab.LockWord);
                    throw new InvalidFreeException(Name, head, $"kmem_cache_free({Name}): double free of object 0x{head:x} (already first on {slab})");
                }
                if (slab.Frozen)
                {
                    // Owned by a CPU or by the defragmenter: just return the slots.
                    *(nint*)(tail + _fpOffset) = prior;
                    slab.Freelist = head;
                    slab.Inuse -= count;
                    MarkFree(slab, objects);
                    SpinLockWord.Exit(ref slab.LockWord);
                    return null;
                }
                int inuse = slab.Inuse - count;
                bool wasFull = prior == 0;
                if (wasFull && CpuPartial > 0)
                {
                    // A full slab gets free slots: freeze it onto this CPU's partial chain.
                    if (_trackFull && !haveList) { SpinLockWord.Exit(ref slab.LockWord); n.ListLock.Enter(); haveList = true; continue; }
                    *(nint*)(tail + _fpOffset) = 0;
                    slab.Freelist = head;
                    slab.Inuse = inuse;
                    MarkFree(slab, objects);
                    slab.Frozen = true;
                    if (slab.List == SlabList.Full) n.Full.Remove(slab);
                    slab.List = SlabList.CpuPartial;
                    SpinLockWord.Exit(ref slab.LockWord);
                    if (haveList) { n.ListLock.Exit(); haveList = false; }
                    PutCpuPartial(c, slab);
                    return null;
                }
                // A partial slab of a bucketed list whose fill crosses into another bucket moves too.
                bool refile = slab.List == SlabList.Partial && n.Partial.Buckets > 1
                              && n.Partial.BucketOf(slab.Objects - inuse, slab.Objects) != slab.Bucket;
                bool needList = inuse == 0 || wasFull || refile;
                if (needList && !haveList) { SpinLockWord.Exit(ref slab.LockWord); n.ListLock.Enter(); haveList = true; continue; }
                *(nint*)(tail + _fpOffset) = prior;
                slab.Freelist = head;
                slab.Inuse = inuse;
                MarkFree(slab, objects);
                n.Freed(slab, count);
                Slab? toDiscard = null;
                if (inuse == 0 && n.Partial.Count >= MinPartial)
                {
                    RemoveFromNodeList(n, slab);
                    toDiscard = slab;
                }
                else if (wasFull)
                {
                    RemoveFromNodeList(n, slab);
                    n.AddPartial(slab);
                }
                else if (refile)
                {
                    n.Partial.Refile(slab);
                }
                SpinLockWord.Exit(ref slab.LockWord);
                return toDiscard;
            }
        }
        finally
        {
            if (haveList) n.ListLock.Exit();
        }
    }

    /// <summary>
    /// Sets the free-map bits of slots just pushed onto the slab's free list. Slab lock held. From the caller's
    /// array, not by walking the chain: the index computations are independent, where a walk waits on each
    /// free pointer load (that walk cost the bulk free ~3 ns per object).
    /// </summary>
    private void MarkFree(Slab slab, ReadOnlySpan<nint> objects)
    {
        if (slab.FreeMap is not { } map) return;
        nint first = slab.FirstObject;
        ulong reciprocal = _sizeReciprocal;
        if (map.Length == 1)
        {
            // Up to 64 slots (the common small-object slab): gather the bits, one store.
            ulong bits = 0;
            foreach (nint p in objects) bits |= 1UL << (int)Math.BigMul(reciprocal, (ulong)(p - first), out _);
            map[0] |= bits;
            return;
        }
        foreach (nint p in objects)
        {
            int i = (int)Math.BigMul(reciprocal, (ulong)(p - first), out _);
            map[i >> 6] |= 1UL << i;
        }
    }

    /// <summary>Takes a slab off whichever node list it is on. List lock and slab lock held.</summary>
    private static void RemoveFromNodeList(KmemCacheNode n, Slab slab)
    {
        switch (slab.List)
        {
            case SlabList.Partial: n.RemovePartial(slab); break;
            case SlabList.Full: n.Full.Remove(slab); break;
        }
        slab.List = SlabList.None;
    }

    /// <summary>Adds a frozen slab to the CPU's partial chain, first draining the chain to the nodes when it already holds more than <see cref="CpuPartial"/> free objects, or <see cref="CpuPartialSlabs"/> slabs with <see cref="SlabOptions.CpuPartialCountsSlabs"/> (<c>put_cpu_partial</c>). CPU lock held.</summary>
    private void PutCpuPartial(KmemCacheCpu c, Slab slab)
    {
        if (_allocator.Options.CpuPartialCountsSlabs ? c.PartialSlabs >= CpuPartialSlabs : c.PartialObjects > CpuPartial)
        {
            UnfreezePartials(c);
            Stats._cpuPartialDrain++;
        }
        PushCpuPartial(c, slab, slab.Objects - Volatile.Read(ref slab.Inuse));
        Stats._cpuPartialFree++;
    }

    private static void PushCpuPartial(KmemCacheCpu c, Slab slab, int free)
    {
        slab.List = SlabList.CpuPartial;
        slab.Next = c.Partial;
        slab.Prev = null;
        c.Partial = slab;
        c.PartialSlabs++;
        slab.CpuPartialFree = free;
        c.PartialObjects += free;
    }

    /// <summary>Moves every slab of the CPU's partial chain back to its node (<c>unfreeze_partials</c>). CPU lock held.</summary>
    private void UnfreezePartials(KmemCacheCpu c)
    {
        var s = c.Partial;
        c.Partial = null;
        c.PartialSlabs = 0;
        c.PartialObjects = 0;
        Slab? discard = null;   // chained through Next (the slabs are on no list): no garbage on this path
        while (s is not null)
        {
            var next = s.Next;
            s.Next = null;
            UnfreezeToNode(s, ref discard);
            s = next;
        }
        DiscardChain(discard);
    }

    /// <summary>
    /// Moves the head of the CPU's partial chain back to its node: an allocation for another node passes it
    /// by this way (the kernel's <c>__put_partials</c> of a slab whose node does not match), so a chain
    /// filled from a remote node is not kept from that node's own allocations. CPU lock held.
    /// </summary>
    private void UnfreezeCpuPartialHead(KmemCacheCpu c)
    {
        var s = c.Partial!;
        c.Partial = s.Next;
        s.Next = null;
        c.PartialSlabs--;
        c.PartialObjects -= s.CpuPartialFree;
        Slab? discard = null;
        UnfreezeToNode(s, ref discard);
        DiscardChain(discard);
    }

    /// <summary>A slab leaving a CPU's partial chain: onto its node's partial or full list, or onto <paramref name="discard"/> if empty and the node has enough partial slabs.</summary>
    private void UnfreezeToNode(Slab s, ref Slab? discard)
    {
        var n = _nodes[s.Node];
        lock (n.ListLock)
        {
            SpinLockWord.Enter(ref s.LockWord);
            s.Frozen = false;
            if (s.Inuse == 0 && n.Partial.Count >= MinPartial)
            {
                s.List = SlabList.None;
                s.Next = discard;
                discard = s;
            }
            else if (s.Freelist != 0)
            {
                n.AddPartial(s);
            }
            else
            {
                AddFull(n, s);
            }
            SpinLockWord.Exit(ref s.LockWord);
        }
    }

    private void DiscardChain(Slab? discard)
    {
        while (discard is not null)
        {
            var next = discard.Next;   // read first: once discarded, the descriptor may be recycled
            discard.Next = null;
            DiscardSlab(discard);
            discard = next;
        }
    }

    private void AddFull(KmemCacheNode n, Slab s)
    {
        if (_trackFull) { s.List = SlabList.Full; n.Full.AddTail(s); }
        else s.List = SlabList.None;
    }

    /// <summary>
    /// Gives the CPU slab back to its node (<c>deactivate_slab</c>): the CPU's private free objects go back
    /// onto the slab, which then lands on the partial list (head, or tail if others freed into it meanwhile),
    /// the full list, or is discarded if empty and the node has enough partial slabs. CPU lock held.
    /// </summary>
    private void DeactivateCpuSlab(KmemCacheCpu c)
    {
        var slab = c.Slab;
        nint fl = c.Freelist;
        c.Slab = null;
        c.Freelist = 0;
        if (slab is null) return;
        var n = _nodes[slab.Node];
        bool discard = false;
        lock (n.ListLock)
        {
            SpinLockWord.Enter(ref slab.LockWord);
            bool remoteFrees = slab.Freelist != 0;
            int returned = 0;
            while (fl != 0)
            {
                nint next = *(nint*)(fl + _fpOffset);
                *(nint*)(fl + _fpOffset) = slab.Freelist;
                slab.Freelist = fl;
                slab.MarkFree(fl);
                returned++;
                fl = next;
            }
            slab.Inuse -= returned;
            slab.Frozen = false;
            if (slab.Inuse == 0 && n.Partial.Count >= MinPartial)
            {
                slab.List = SlabList.None;
                discard = true;
            }
            else if (slab.Freelist != 0)
            {
                n.AddPartial(slab, atHead: !remoteFrees);
            }
            else
            {
                AddFull(n, slab);
            }
            SpinLockWord.Exit(ref slab.LockWord);
        }
        if (discard) DiscardSlab(slab);
    }

    /// <summary>Empties one CPU's state into the node lists (<c>flush_slab</c> + <c>unfreeze_partials</c>). Takes that CPU's lock.</summary>
    internal void FlushCpu(KmemCacheCpu c)
    {
        SpinLockWord.Enter(ref c.LockWord);
        try
        {
            if (c.Slab is not null)
            {
                DeactivateCpuSlab(c);
                Stats._cpuSlabFlush++;   // flush_slab's count: a flush, not every deactivation
            }
            UnfreezePartials(c);
        }
        finally
        {
            SpinLockWord.Exit(ref c.LockWord);
        }
    }

    /// <summary>Flushes every CPU's slabs back to the nodes (<c>flush_all</c>). Other threads may keep allocating; they simply refill. Thread-safe.</summary>
    public void FlushAll()
    {
        _allocator.ThrowIfDisposed(Name);
        FlushMagazines();
        foreach (var c in _cpus) FlushCpu(c);
    }
}
