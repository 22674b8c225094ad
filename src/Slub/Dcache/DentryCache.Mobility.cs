using System.Runtime.CompilerServices;

namespace Slub.Dcache;

// Slab Movable Objects for dentries (the series' patch 13, d_isolate / d_partial_shrink), done the way its
// reviewer asked: isolate collects zero-count dentries under their locks onto a private shrink list without
// taking references; migrate shrinks that list. Dentries are only ever freed, never moved.
public sealed unsafe partial class DentryCache
{
    /// <summary>Why isolate left an object of the slab alone, or that it put it on the shrink list.</summary>
    private enum IsolateReason : byte { Busy, Pinned, Isolated, IsolatedReferenced }

    /// <summary>
    /// Private state handed from isolate to migrate: the shrink list and, per slot of the object vector, what
    /// isolate did. Preallocated and pooled, because isolate runs under a slab lock and must not allocate.
    /// </summary>
    private sealed class IsolateState
    {
        public ShrinkList List;
        /// <summary>Isolate dropped a killed dentry whose free waits for a grace period: migrate must wait for it, or the slab cannot empty.</summary>
        public bool SawRetired;
        public readonly IsolateReason[] Reasons;
        public readonly List<nint> ToFree;

        public IsolateState(int objects)
        {
            Reasons = new IsolateReason[objects];
            ToFree = new List<nint>(objects * 2);
        }
    }

    private IsolateState?[] _isolatePool = [];
    private long _isolateNoState, _partialShrinkEvictedReferenced;

    /// <summary>Isolate calls that found the state pool empty and isolated nothing (the series' kmalloc failure case).</summary>
    public long IsolateWithoutState => Volatile.Read(ref _isolateNoState);

    /// <summary>Dentries freed by partial shrink that were on the LRU with the referenced bit set (recently used): the cost Al Viro asked to see.</summary>
    public long PartialShrinkEvictedReferenced => Volatile.Read(ref _partialShrinkEvictedReferenced);

    private void InitIsolatePool()
    {
        // One per concurrent defragmenter: defrag runs one slab at a time per call; a few calls may overlap.
        var pool = new IsolateState?[Math.Max(4, 2 * _allocator.Topology.CpuCount)];
        int objects = Math.Max(Cache.ObjectsPerSlab, CacheGeometry.OrderObjects(_allocator.Options.MaxOrder, Cache.SlabSize));
        for (int i = 0; i < pool.Length; i++) pool[i] = new IsolateState(objects);
        _isolatePool = pool;
    }

    private IsolateState? RentState(int objects)
    {
        var pool = _isolatePool;
        for (int i = 0; i < pool.Length; i++)
        {
            var s = Interlocked.Exchange(ref pool[i], null);
            if (s is null) continue;
            if (s.Reasons.Length >= objects) return s;
            Volatile.Write(ref pool[i], s);
        }
        return null;
    }

    private void ReturnState(IsolateState s)
    {
        s.List = default;
        s.SawRetired = false;
        s.ToFree.Clear();
        var pool = _isolatePool;
        for (int i = 0; i < pool.Length; i++)
            if (Interlocked.CompareExchange(ref pool[i], s, null) is null) return;
    }

    /// <summary>
    /// <c>d_isolate</c>. Runs with the slab's lock held: takes dentry locks and the LRU lock only (never held by
    /// anyone who allocates or frees dentries), allocates nothing. For each object, under its lock:
    /// a non-zero negative count — free slot state, dead, or still being set up — drops the entry (the series
    /// skipped only positive counts, letting dead dentries through); the root is pinned; a positive count or
    /// membership of somebody else's shrink list means busy; a zero count moves the dentry off the LRU onto our
    /// private shrink list, taking no reference.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // runs in defrag bursts: see MigrateCallback
    private object? Isolate(KmemCache cache, Span<nint> objects)
    {
        if (objects.IsEmpty) return null;   // the core calls no migrate then: a rented state would be lost
        var state = RentState(objects.Length);
        if (state is null)
        {
            Interlocked.Increment(ref _isolateNoState);
            return null;
        }
        if (PartialShrinkMode == PartialShrinkMode.WholeSlabsOnly && !SlabCanEmpty(objects))
        {
            for (int i = 0; i < objects.Length; i++)
            {
                var d = (DentryData*)objects[i];
                Lock(d);
                bool gone = d->Count < 0;
                Unlock(d);
                if (gone) objects[i] = 0;
                else state.Reasons[i] = (d->Flags & (uint)DentryFlags.Root) != 0 ? IsolateReason.Pinned : IsolateReason.Busy;
            }
            return state;
        }
        for (int i = 0; i < objects.Length; i++)
        {
            nint p = objects[i];
            var d = (DentryData*)p;
            Lock(d);
            int count = d->Count;
            uint flags = d->Flags;
            if (count < 0)
            {
                objects[i] = 0;
                if ((flags & (uint)DentryFlags.Killed) != 0) state.SawRetired = true;   // freed later, or already (harmless)
            }
            else if ((flags & (uint)DentryFlags.Root) != 0) state.Reasons[i] = IsolateReason.Pinned;
            else if (count > 0 || (flags & (uint)DentryFlags.ShrinkList) != 0) state.Reasons[i] = IsolateReason.Busy;
            else
            {
                if ((flags & (uint)DentryFlags.LruList) != 0)
                {
                    _lru.Enter();
                    _lru.Remove(p);
                    _lru.Exit();
                }
                d->Flags = flags | (uint)(DentryFlags.ShrinkList | DentryFlags.LruList);
                state.List.Add(p);
                // Counted as evicted only if the shrink kills it: it may gain a reference before then.
                state.Reasons[i] = (flags & (uint)DentryFlags.Referenced) != 0 ? IsolateReason.IsolatedReferenced : IsolateReason.Isolated;
            }
            Unlock(d);
        }
        return state;
    }

    /// <summary>
    /// Whether freeing the unused dentries of this slab could empty it: every object is dead or unused, or
    /// is a directory whose references all come from such children in the same slab (transitively). A racy
    /// estimate from unlocked reads; the real decisions are made under the dentry locks afterwards.
    /// </summary>
    private static bool SlabCanEmpty(ReadOnlySpan<nint> objects)
    {
        int n = objects.Length;
        Span<bool> evictable = n <= 256 ? stackalloc bool[n] : new bool[n];
        for (int i = 0; i < n; i++)
        {
            var d = (DentryData*)objects[i];
            int count = Volatile.Read(ref d->Count);
            uint flags = Volatile.Read(ref d->Flags);
            if ((flags & (uint)DentryFlags.Root) != 0) return false;
            // Dead and killed: going away. Count < 0 without Killed: being set up, will be live.
            if (count < 0) { if ((flags & (uint)DentryFlags.Killed) == 0) return false; evictable[i] = true; }
            else if (count == 0) evictable[i] = (flags & (uint)DentryFlags.ShrinkList) == 0;
        }
        for (bool changed = true; changed;)
        {
            changed = false;
            for (int i = 0; i < n; i++)
            {
                if (evictable[i]) continue;
                var d = (DentryData*)objects[i];
                int count = Volatile.Read(ref d->Count);
                int children = 0;
                for (int j = 0; j < n; j++)
                    if (evictable[j] && j != i && ((DentryData*)objects[j])->Parent == objects[i] && ((DentryData*)objects[j])->Count >= 0) children++;
                if (count > 0 && children == count) { evictable[i] = true; changed = true; }
            }
        }
        foreach (bool e in evictable) if (!e) return false;
        return true;
    }

    /// <summary>
    /// <c>d_partial_shrink</c>. No allocator locks held. Shrinks the private list isolate built: each entry is
    /// freed (<see cref="MigrateResult.Freed"/>) unless it gained a reference meanwhile
    /// (<see cref="MigrateResult.Later"/>); dentries isolate found in use are <see cref="MigrateResult.Later"/>,
    /// the root <see cref="MigrateResult.CannotMove"/>. A directory of the slab freed because its last child
    /// went is reported freed too. The target node is ignored: dentries are freed, never moved.
    /// Frees go through the reclaimer (lock-free walkers may hold any dentry); one grace period at the end of the
    /// call, not one per object, puts every dentry reported freed — and every one killed earlier whose free was
    /// still waiting — back in the slab before the call returns, so the core can free the slab in this run.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // runs in defrag bursts: see MigrateCallback
    private void Migrate(KmemCache cache, ReadOnlySpan<nint> objects, int node, object? privateState, Span<MigrateResult> results)
    {
        if (privateState is not IsolateState state)
        {
            for (int i = 0; i < objects.Length; i++) if (objects[i] != 0) results[i] = MigrateResult.Later;
            return;
        }
        try
        {
            var toFree = state.ToFree;
            _tree.EnterWriteLock();
            try
            {
                for (int i = 0; i < objects.Length; i++)
                {
                    if (objects[i] == 0) continue;
                    switch (state.Reasons[i])
                    {
                        case IsolateReason.Pinned: results[i] = MigrateResult.CannotMove; break;
                        case IsolateReason.Busy: results[i] = MigrateResult.Later; break;
                        default:
                            nint p = state.List.Take();
                            if (p != objects[i]) throw new InvalidOperationException($"d_partial_shrink: shrink list out of order at 0x{p:x}");
                            var outcome = ShrinkOneTreeLocked(p, toFree);
                            results[i] = outcome == ShrinkOutcome.Busy ? MigrateResult.Later : MigrateResult.Freed;
                            if (outcome == ShrinkOutcome.Freed && state.Reasons[i] == IsolateReason.IsolatedReferenced)
                                Interlocked.Increment(ref _partialShrinkEvictedReferenced);
                            break;
                    }
                }
            }
            finally { _tree.ExitWriteLock(); }
            // An address on toFree is ours until we free it, so it can be matched against the vector exactly.
            foreach (nint f in toFree)
                for (int i = 0; i < objects.Length; i++)
                    if (objects[i] == f) results[i] = MigrateResult.Freed;
            FreeAll(toFree);
            // Quietly: another retirement's failing free action is not this migration's failure.
            if (toFree.Count > 0 || state.SawRetired) _rcu.SynchronizeQuietly();
        }
        finally { ReturnState(state); }
    }
}
