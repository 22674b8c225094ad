namespace Slub;

/// <summary>
/// Per-node state of a cache (the kernel's <c>struct kmem_cache_node</c>): the partial list, the full list
/// when it is tracked, and slab/object counts.
/// </summary>
internal sealed class KmemCacheNode
{
    /// <summary>Guards <see cref="Partial"/>, <see cref="Full"/> and list membership of this node's slabs.</summary>
    public readonly Lock ListLock = new();
    public SlabLinkedList Partial;
    public SlabLinkedList Full;
    /// <summary>Slabs and their object capacity on this node (changed atomically, read without locks).</summary>
    public long NrSlabs, TotalObjects;
    public readonly int Node;

    public KmemCacheNode(int node) => Node = node;
}
