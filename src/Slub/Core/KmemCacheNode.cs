namespace Slub;

/// <summary>
/// Per-node state of a cache (the kernel's <c>struct kmem_cache_node</c>): the partial list, the full list
/// when it is tracked, and slab/object counts.
/// </summary>
/// <remarks>
/// <para><b>Partial-list counters.</b> <see cref="PartialFree"/> and <see cref="PartialCapacity"/> are the free
/// slots and the slots of the slabs whose <see cref="Slab.List"/> is <see cref="SlabList.Partial"/>, kept as
/// the slabs come and go and as objects are freed into them, so the figures sysfs derives from a walk of the
/// partial list (<c>objects</c>, <c>objects_partial</c>) are read in O(1) without the list lock. The rule that
/// keeps them exact: a slab's <see cref="Slab.List"/> changes to or from <see cref="SlabList.Partial"/>, and
/// <see cref="Slab.Inuse"/> of a slab on the partial list changes, only under the slab lock, together with the
/// counter update (<see cref="AddPartial"/>, <see cref="LeavePartial"/>, <see cref="Freed"/>,
/// <see cref="Allocated"/>). Readers without locks see a value that was exact at some recent instant.</para>
/// </remarks>
internal sealed class KmemCacheNode
{
    /// <summary>Guards <see cref="Partial"/>, <see cref="Full"/> and list membership of this node's slabs.</summary>
    public readonly Lock ListLock = new();
    public readonly PartialList Partial = new();
    public SlabLinkedList Full;
    /// <summary>Slabs and their object capacity on this node (changed atomically, read without locks).</summary>
    public long NrSlabs, TotalObjects;
    /// <summary>Free slots, and all slots, of the slabs on the partial list (see remarks).</summary>
    public long PartialFree, PartialCapacity;
    public readonly int Node;

    public KmemCacheNode(int node) => Node = node;

    /// <summary>Puts <paramref name="s"/> on the partial list (its bucket's head or tail) and counts it. List lock and slab lock held (or the slab is private).</summary>
    public void AddPartial(Slab s, bool atHead = false)
    {
        s.List = SlabList.Partial;
        if (atHead) Partial.AddHead(s); else Partial.AddTail(s);
        Interlocked.Add(ref PartialFree, s.Objects - s.Inuse);
        Interlocked.Add(ref PartialCapacity, s.Objects);
    }

    /// <summary>Takes <paramref name="s"/> off the partial list and uncounts it; its list becomes None. List lock and slab lock held.</summary>
    public void RemovePartial(Slab s)
    {
        Partial.Remove(s);
        LeavePartial(s);
    }

    /// <summary>Uncounts a partial slab that the caller has already unlinked (a list rebuild); its list becomes None. Slab lock held.</summary>
    public void LeavePartial(Slab s)
    {
        Interlocked.Add(ref PartialFree, -(s.Objects - s.Inuse));
        Interlocked.Add(ref PartialCapacity, -s.Objects);
        s.List = SlabList.None;
    }

    /// <summary>
    /// <see cref="LeavePartial"/> for many slabs at once: uncounts slabs the caller has unlinked and marked
    /// <see cref="SlabList.None"/> (each under its slab lock, where it summed their free slots and capacities).
    /// List lock held.
    /// </summary>
    public void LeftPartial(long free, long capacity)
    {
        Interlocked.Add(ref PartialFree, -free);
        Interlocked.Add(ref PartialCapacity, -capacity);
    }

    /// <summary>Counts <paramref name="count"/> objects just freed into <paramref name="s"/> (after its Inuse went down). Slab lock held.</summary>
    public void Freed(Slab s, int count)
    {
        if (s.List == SlabList.Partial) Interlocked.Add(ref PartialFree, count);
    }

    /// <summary>Counts <paramref name="count"/> objects just allocated from <paramref name="s"/> in place (debug caches). Slab lock held.</summary>
    public void Allocated(Slab s, int count)
    {
        if (s.List == SlabList.Partial) Interlocked.Add(ref PartialFree, -count);
    }
}
