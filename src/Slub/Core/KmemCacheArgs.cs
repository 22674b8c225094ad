namespace Slub;

/// <summary>
/// Less common cache creation arguments (the kernel's <c>struct kmem_cache_args</c>), for
/// <see cref="SlabAllocator.CreateCache(string, int, int, SlabFlags, ObjectConstructor?, KmemCacheArgs)"/>.
/// </summary>
public sealed record KmemCacheArgs
{
    /// <summary>
    /// Where the free pointer of a free object lives, for a cache with a constructor or
    /// <see cref="SlabFlags.TypesafeByRcu"/> (the kernel's <c>freeptr_offset</c>). Such caches normally put it
    /// in a word after the object, because a free object must keep its constructed state; a cache whose
    /// objects have a word that does not need to survive while free (a header the allocating code rewrites
    /// anyway) can name it here and save that word in every slot. Must be word-aligned and leave the word
    /// inside the object. Ignored with <see cref="SlabFlags.Poison"/> (poisoning needs the whole object). The
    /// kernel allows it for RCU caches only; this extension also allows it for constructor caches, whose
    /// constructor must then not rely on that word while the object is free. Null: the default placement.
    /// </summary>
    public int? FreePointerOffset { get; init; }
}
