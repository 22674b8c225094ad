namespace Slub.Dcache;

/// <summary>
/// <c>d_flags</c> bits that this dcache uses. Bit positions follow the kernel's where a kernel flag exists
/// (REFERENCED 6, SHRINK_LIST 10, LRU_LIST 18, type field 19–21); the rest are this implementation's.
/// Protected by the dentry's lock (<see cref="Dentry"/> lock word).
/// </summary>
[Flags]
public enum DentryFlags : uint
{
    /// <summary>No flag set.</summary>
    None = 0,
    /// <summary>Recently used while on the LRU: the LRU walk clears it and gives the dentry a second chance.</summary>
    Referenced = 1u << 6,
    /// <summary>On somebody's private shrink list (<see cref="LruList"/> is set too); only the owner may free it.</summary>
    ShrinkList = 1u << 10,
    /// <summary>Torn down by <c>__dentry_kill</c>; the memory is freed by whoever owns it (a shrink list owner).</summary>
    Killed = 1u << 14,
    /// <summary>Hashed: reachable through the hash table (the kernel tests <c>d_hash.pprev != NULL</c>).</summary>
    Hashed = 1u << 15,
    /// <summary>The <c>d_lru</c> links are in use: on the LRU or on a shrink list.</summary>
    LruList = 1u << 18,
    /// <summary>Mask of the type field (bits 19–21).</summary>
    TypeMask = 7u << 19,
    /// <summary>The cache root (<c>IS_ROOT</c>): pinned for the life of the cache.</summary>
    Root = 1u << 24,
    /// <summary>The name lives in a separately kmalloc'ed buffer, not inline.</summary>
    ExternalName = 1u << 25,
}

/// <summary>What a dentry names, stored in the type field of <see cref="DentryFlags"/> (<c>DCACHE_*_TYPE</c>).</summary>
public enum InodeKind : byte
{
    /// <summary>A negative dentry: the name is known not to exist (<c>DCACHE_MISS_TYPE</c>).</summary>
    Negative = 0,
    /// <summary>A directory (<c>DCACHE_DIRECTORY_TYPE</c>): the only kind a path walk descends into.</summary>
    Directory = 1,
    /// <summary>An existing name that is not a directory (a regular file or any other non-directory type).</summary>
    File = 2,
    /// <summary>Allocated but not yet instantiated; never visible to lookups.</summary>
    Unknown = 7,
}
