namespace Slub.Cli.Slabinfo;

/// <summary>
/// Everything slabinfo reads about one cache directory. Field types follow the C tool's struct (int, unsigned int,
/// unsigned long), because its output depends on C's conversions and wrap-around.
/// </summary>
public sealed class SlabCache
{
    /// <summary>Display name: the directory name, replaced by an alias for merged caches, or "*" when hidden.</summary>
    public required string Name { get; set; }
    /// <summary>The directory name as read (attribute reads and writes use <see cref="Name"/>, as the tool does).</summary>
    public required string DirectoryName { get; init; }
    public int Refs { get; set; }

    public int Aliases, Align, CacheDma, CpuSlabs, DestroyByRcu;
    public uint HwcacheAlign, ObjectSize, ObjsPerSlab;
    public uint SanityChecks, SlabSize, StoreUser, Trace;
    public int Order, Poison, ReclaimAccount, RedZone;
    public bool Movable, Ctor;
    public int DefragUsedRatio, RemoteNodeDefragRatio;
    public ulong Partial, Objects, Slabs, ObjectsPartial, ObjectsTotal;
    public ulong AllocFastpath, AllocSlowpath, FreeFastpath, FreeSlowpath;
    public ulong FreeFrozen, FreeAddPartial, FreeRemovePartial;
    public ulong AllocFromPartial, AllocSlab, FreeSlab, AllocRefill;
    public ulong CpuslabFlush, DeactivateFull, DeactivateEmpty;
    public ulong DeactivateToHead, DeactivateToTail;
    public ulong DeactivateRemoteFrees, OrderFallback;
    public ulong CmpxchgDoubleCpuFail, CmpxchgDoubleFail;
    public ulong AllocNodeMismatch, DeactivateBypass;
    public ulong CpuPartialAlloc, CpuPartialFree;

    /// <summary>Slabs per NUMA node (index = node), from the "N&lt;node&gt;=&lt;count&gt;" part of <c>slabs</c>.</summary>
    public int[] Numa = [];
    /// <summary>Partial slabs per node, from <c>partial</c>.</summary>
    public int[] NumaPartial = [];

    /// <summary>Bytes of one slab: page_size &lt;&lt; order, in C int arithmetic.</summary>
    public int SlabBytes(int pageSize) => pageSize << Order;

    /// <summary>Memory of the cache: slabs * (page_size &lt;&lt; order).</summary>
    public ulong TotalSize(int pageSize) => unchecked(Slabs * (ulong)(long)SlabBytes(pageSize));

    /// <summary>Memory not used by objects (can wrap, as in C).</summary>
    public ulong Waste(int pageSize) => unchecked(TotalSize(pageSize) - Objects * ObjectSize);

    /// <summary>alloc + free, fast and slow paths.</summary>
    public ulong Activity => unchecked(AllocFastpath + FreeFastpath + AllocSlowpath + FreeSlowpath);
}

/// <summary>An alias symlink: its name, the cache name it points to, and (once linked) that cache.</summary>
public sealed class SlabAlias
{
    public required string Name { get; init; }
    public required string Ref { get; init; }
    public SlabCache? Slab { get; set; }
}
