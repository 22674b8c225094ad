namespace Slub;

/// <summary>Cache creation flags (the kernel's SLAB_* flags that mean something in user space).</summary>
[Flags]
public enum SlabFlags
{
    /// <summary>No flags.</summary>
    None = 0,
    /// <summary>Check metadata and free-list consistency on every operation (slub_debug=F, SLAB_CONSISTENCY_CHECKS).</summary>
    ConsistencyChecks = 1 << 0,
    /// <summary>Red zones before and after each object (slub_debug=Z).</summary>
    RedZone = 1 << 1,
    /// <summary>Fill free objects with a pattern and check it on allocation (slub_debug=P). Ignored for caches with a constructor or RCU.</summary>
    Poison = 1 << 2,
    /// <summary>Record allocation and free call sites (slub_debug=U).</summary>
    StoreUser = 1 << 3,
    /// <summary>Trace allocations and frees to the allocator's log (slub_debug=T).</summary>
    Trace = 1 << 4,
    /// <summary>Align objects to the hardware cache line (SLAB_HWCACHE_ALIGN).</summary>
    HwCacheAlign = 1 << 5,
    /// <summary>Objects are reclaimable (SLAB_RECLAIM_ACCOUNT): counted as such, shown by slabinfo.</summary>
    ReclaimAccount = 1 << 6,
    /// <summary>Freed slabs are kept until readers of the objects are done (SLAB_TYPESAFE_BY_RCU): an object may be reused but its memory stays a valid object of this type.</summary>
    TypesafeByRcu = 1 << 7,
    /// <summary>Never merge this cache with another (SLAB_NO_MERGE).</summary>
    NoMerge = 1 << 8,
    /// <summary>Allocation failure throws instead of returning zero (SLAB_PANIC is the kernel's nearest).</summary>
    Panic = 1 << 9,
    /// <summary>The cache starts with its failslab switch on (SLAB_FAILSLAB, slub_debug=A): fault rules with cache-filter apply to it. Never merged.</summary>
    FailSlab = 1 << 10,

    /// <summary>All debug flags (what bare <c>slub_debug</c> turns on).</summary>
    DebugFlags = ConsistencyChecks | RedZone | Poison | StoreUser,

    /// <summary>Every defined flag; cache creation refuses any other bit (<see cref="ArgumentOutOfRangeException"/>), as the
    /// kernel refuses flags outside <c>SLAB_FLAGS_PERMITTED</c>.</summary>
    All = DebugFlags | Trace | HwCacheAlign | ReclaimAccount | TypesafeByRcu | NoMerge | Panic | FailSlab,
}
