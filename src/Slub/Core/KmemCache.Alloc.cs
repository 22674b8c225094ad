using Slub.Pages;

namespace Slub;

// The allocation slow path: SLUB's ___slab_alloc, get_partial and new_slab.
public sealed unsafe partial class KmemCache
{
    /// <summary>
    /// Refills CPU <paramref name="c"/> and returns one object (0 when memory ran out).
    /// Entered with the CPU lock held; always returns with it released.
    /// </summary>
    private nint AllocSlow(KmemCacheCpu c, int node)
    {
        if (_destroyed || _allocator.IsDisposed)
        {
            SpinLockWord.Exit(ref c.LockWord);
            ThrowDisposed();
        }
        if (_debug)
        {
            SpinLockWord.Exit(ref c.LockWord);
            return AllocDebug(c.Node, node);
        }
        bool wantedNodeFull = false;   // the node asked for has no pages: other nodes' partial slabs are next
        while (true)
        {
            var slab = c.Slab;
            if (slab is not null)
            {
                if (node >= 0 && slab.Node != node)
                {
                    DeactivateCpuSlab(c);
                    Stats._allocNodeMismatch++;
                }
                else
                {
                    nint fl = c.Freelist;
                    if (fl == 0) fl = TakeRemoteFrees(slab);
                    if (fl != 0)
                    {
                        c.Freelist = *(nint*)(fl + _fpOffset);
                        SpinLockWord.Exit(ref c.LockWord);
                        Stats._allocRefill++;
                        return fl;
                    }
                    c.Slab = null;       // full and already unfrozen by TakeRemoteFrees
                    Stats._deactivateBypass++;
                }
            }

            // A slab from this CPU's partial chain; slabs of other nodes on the way go back to their nodes.
            var p = c.Partial;
            if (p is not null && node >= 0 && p.Node != node)
            {
                UnfreezeCpuPartialHead(c);
                continue;
            }
            if (p is not null)
            {
                c.Partial = p.Next;
                p.Next = null;
                c.PartialSlabs--;
                c.PartialObjects -= p.CpuPartialFree;   // the chain keeps the counts of join time, as pobjects does
                p.List = SlabList.CpuSlab;
                c.Slab = p;
                c.Freelist = 0;
                Stats._cpuPartialAlloc++;
                continue;   // TakeRemoteFrees hands out its free list
            }

            // Partial slabs of a node.
            var got = GetPartial(c, node, anyNode: node < 0 || wantedNodeFull, out nint freelist);
            if (got is not null)
            {
                c.Slab = got;
                got.List = SlabList.CpuSlab;
                c.Freelist = *(nint*)(freelist + _fpOffset);
                SpinLockWord.Exit(ref c.LockWord);
                Stats._allocFromPartial++;
                return freelist;
            }

            // A new slab. Drop the CPU lock while the page allocator and the constructors run.
            SpinLockWord.Exit(ref c.LockWord);
            var fresh = NewSlabFor(node, c.Node, ref wantedNodeFull, out bool tryOtherNodes);
            if (tryOtherNodes) { SpinLockWord.Enter(ref c.LockWord); continue; }
            if (fresh is null) return 0;
            SpinLockWord.Enter(ref c.LockWord);
            if (c.Slab is not null) DeactivateCpuSlab(c);   // someone refilled meanwhile; ours is newer
            nint first = fresh.Freelist;
            fresh.Freelist = 0;
            fresh.ClearFreeMap();
            fresh.Inuse = fresh.Objects;
            fresh.Frozen = true;
            fresh.List = SlabList.CpuSlab;
            c.Slab = fresh;
            c.Freelist = *(nint*)(first + _fpOffset);
            SpinLockWord.Exit(ref c.LockWord);
            Stats._allocSlab++;
            return first;
        }
    }

    /// <summary>
    /// Takes the objects other CPUs freed into the CPU slab (SLUB's <c>get_freelist</c>). When there are
    /// none the slab is full: it is unfrozen here and, if full slabs are tracked, put on the full list.
    /// </summary>
    private nint TakeRemoteFrees(Slab slab)
    {
        var n = _nodes[slab.Node];
        if (_trackFull)
        {
            // The list lock first: a free that sees this slab unfrozen and full must find it on the full list.
            lock (n.ListLock)
            {
                SpinLockWord.Enter(ref slab.LockWord);
                nint fl = slab.Freelist;
                slab.Freelist = 0;
                slab.ClearFreeMap();
                slab.Inuse = slab.Objects;
                if (fl == 0)
                {
                    slab.Frozen = false;
                    slab.List = SlabList.Full;
                    n.Full.AddTail(slab);
                }
                SpinLockWord.Exit(ref slab.LockWord);
                return fl;
            }
        }
        SpinLockWord.Enter(ref slab.LockWord);
        nint f = slab.Freelist;
        slab.Freelist = 0;
        slab.ClearFreeMap();
        slab.Inuse = slab.Objects;
        if (f == 0) { slab.Frozen = false; slab.List = SlabList.None; }
        SpinLockWord.Exit(ref slab.LockWord);
        return f;
    }

    /// <summary>
    /// Takes partial slabs from a node (<c>get_partial</c>): the first becomes the CPU slab (its free list
    /// is returned in <paramref name="freelist"/>), more go to the CPU's partial chain until it holds half
    /// of <see cref="CpuPartial"/> free objects (or more than half of <see cref="CpuPartialSlabs"/> slabs, with
    /// <see cref="SlabOptions.CpuPartialCountsSlabs"/>). Tries the wanted node, then, with <paramref name="anyNode"/>
    /// (node -1, or a wanted node without pages) and subject to <see cref="RemoteNodeDefragRatio"/>, the
    /// others that hold more than <see cref="MinPartial"/> partial slabs. CPU lock held.
    /// </summary>
    private Slab? GetPartial(KmemCacheCpu c, int node, bool anyNode, out nint freelist)
    {
        int local = node < 0 ? c.Node : node;
        var s = GetPartialNode(c, _nodes[local], out freelist);
        if (s is not null || !anyNode || _nodes.Length == 1) return s;
        // get_any_partial: other nodes' partial slabs, but only with probability ratio/100 (sysfs value),
        // so a node prefers fresh local memory over remote partial slabs most of the time.
        int ratio = RemoteNodeDefragRatio;
        if (ratio == 0 || Random.Shared.Next(1024) > ratio * 10) return null;
        for (int i = 1; i < _nodes.Length; i++)
        {
            var n = _nodes[(local + i) % _nodes.Length];
            if (n.Partial.Count <= MinPartial) continue;
            s = GetPartialNode(c, n, out freelist);
            if (s is not null) return s;
        }
        return null;
    }

    private Slab? GetPartialNode(KmemCacheCpu c, KmemCacheNode n, out nint freelist)
    {
        freelist = 0;
        if (Volatile.Read(ref n.Partial.Count) == 0) return null;
        Slab? result = null;
        int available = 0, taken = -1;   // slabs put on the CPU's partial chain (the first one becomes the CPU slab)
        lock (n.ListLock)
        {
            var s = n.Partial.Head;
            while (s is not null)
            {
                var next = s.Next;
                SpinLockWord.Enter(ref s.LockWord);
                n.RemovePartial(s);
                s.Frozen = true;
                if (result is null)
                {
                    freelist = s.Freelist;
                    available += s.Objects - s.Inuse;
                    s.Freelist = 0;
                    s.ClearFreeMap();
                    s.Inuse = s.Objects;
                    s.List = SlabList.CpuSlab;
                    result = s;
                    SpinLockWord.Exit(ref s.LockWord);
                }
                else
                {
                    int free = s.Objects - s.Inuse;
                    available += free;
                    SpinLockWord.Exit(ref s.LockWord);
                    PushCpuPartial(c, s, free);
                }
                if (CpuPartial == 0) break;
                if (_allocator.Options.CpuPartialCountsSlabs ? ++taken > CpuPartialSlabs / 2 : available > CpuPartial / 2) break;
                s = next;
            }
        }
        return result;
    }

    /// <summary>
    /// The new slab of an allocation slow path. For a node asked for, first on that node only (the kernel's
    /// <c>__GFP_THISNODE</c> try); when it has no pages, null with <paramref name="tryOtherNodes"/> set and
    /// <paramref name="wantedNodeFull"/> raised, so the caller looks at other nodes' partial slabs before the
    /// next call takes a slab anywhere — else every allocation on a full node took one more remote slab.
    /// A migration run's target node has no such fallback (<see cref="ReplacementsOnlyOn"/>). No locks held.
    /// </summary>
    private Slab? NewSlabFor(int node, int localNode, ref bool wantedNodeFull, out bool tryOtherNodes)
    {
        tryOtherNodes = false;
        if (node < 0 || wantedNodeFull || _nodes.Length == 1) return NewSlab(node < 0 ? localNode : node, exactNode: false);
        var fresh = NewSlab(node, exactNode: true);
        if (fresh is not null || ReplacementsOnlyOn(node)) return fresh;
        wantedNodeFull = tryOtherNodes = true;
        return null;
    }

    /// <summary>Creates a slab on <paramref name="node"/>: pages, free list, debug patterns, constructors. No locks held.</summary>
    internal Slab? NewSlab(int node, bool exactNode)
    {
        // Destroy flushed every CPU, so the first allocation after it gets here: a use of a destroyed cache
        // would otherwise take pages no one can ever give back.
        if (_destroyed) ThrowDisposed();
        if (_allocator.Faults.ShouldFailSlab(this)) return null;
        // Frozen until its creator publishes it: the page owner table makes it visible to a full-slab scan
        // (KmemCache.Numa.cs) while its fields are still being set up without the slab lock.
        var slab = RentSlabDescriptor();
        int order = Geometry.Order;
        if (!_pages.TryAllocate(order, node, slab, exactNode))
        {
            order = Geometry.MinOrderFallback;
            if (order == Geometry.Order || !_pages.TryAllocate(order, node, slab, exactNode)) { RecycleSlabDescriptor(slab); return null; }
            Stats._orderFallback++;
        }
        int objects = CacheGeometry.OrderObjects(slab.Order, _size);
        slab.Objects = objects;
        slab.FirstObject = slab.Address + Geometry.RedLeftPad;
        if (_debug) InitSlabDebug(slab);
        var ctor = Constructor;
        if (ctor is not null)
        {
            try
            {
                for (int i = 0; i < objects; i++) ctor(slab.FirstObject + (nint)i * _size);
            }
            catch
            {
                _pages.Free(slab);
                RecycleSlabDescriptor(slab);
                throw;
            }
        }
        // Linked after the constructors: the free pointer may sit in a word of the object (KmemCacheArgs.FreePointerOffset).
        // Back to front, so the free list runs in address order.
        nint prev = 0;
        for (int i = objects - 1; i >= 0; i--)
        {
            nint obj = slab.FirstObject + (nint)i * _size;
            *(nint*)(obj + _fpOffset) = prev;
            prev = obj;
        }
        slab.Freelist = prev;
        if (!_debug && Mobility is not null) slab.InitFreeMap();
        else slab.FreeMap = null;
        var n = _nodes[slab.Node];
        Interlocked.Increment(ref n.NrSlabs);
        Interlocked.Add(ref n.TotalObjects, objects);
        return slab;
    }

    /// <summary>
    /// <see cref="DiscardSlab"/> for many slabs at once (defragmentation frees thousands): the page allocator
    /// returns adjacent ones to the OS in one call. The slabs must be on no list.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]   // see DefragNode
    internal void DiscardSlabs(List<Slab> slabs)
    {
        if (slabs.Count == 0) return;
        if (slabs.Count == 1) { DiscardSlab(slabs[0]); return; }
        // Pooled: the background defragmenter discards through here beside allocating threads.
        PageBlock[] rented = System.Buffers.ArrayPool<PageBlock>.Shared.Rent(slabs.Count);
        var blocks = rented.AsSpan(0, slabs.Count);
        // The node counters are summed and added once per node: an atomic add per slab is a locked
        // instruction per slab, and a shrink discards thousands of slabs, nearly always of one node.
        int node = slabs[0].Node;
        long nrSlabs = 0, objects = 0;
        for (int i = 0; i < blocks.Length; i++)
        {
            var slab = slabs[i];
            if (slab.Node != node)
            {
                UncountSlabs(node, nrSlabs, objects);
                node = slab.Node;
                nrSlabs = objects = 0;
            }
            nrSlabs++;
            objects += slab.Objects;
            slab.List = SlabList.None;
            blocks[i] = slab;
        }
        UncountSlabs(node, nrSlabs, objects);
        try
        {
            _pages.FreeMany(blocks);
            foreach (var slab in slabs) RecycleSlabDescriptor(slab);
        }
        finally
        {
            blocks.Clear();
            System.Buffers.ArrayPool<PageBlock>.Shared.Return(rented);
        }
        Stats._freeSlab += slabs.Count;
    }

    private void UncountSlabs(int node, long slabs, long objects)
    {
        var n = _nodes[node];
        Interlocked.Add(ref n.NrSlabs, -slabs);
        Interlocked.Add(ref n.TotalObjects, -objects);
    }

    /// <summary>Gives a slab's pages back to the page allocator (<c>discard_slab</c>). The slab must be on no list.</summary>
    internal void DiscardSlab(Slab slab)
    {
        var n = _nodes[slab.Node];
        Interlocked.Decrement(ref n.NrSlabs);
        Interlocked.Add(ref n.TotalObjects, -slab.Objects);
        slab.List = SlabList.None;
        _pages.Free(slab);
        RecycleSlabDescriptor(slab);
        Stats._freeSlab++;
    }
}
