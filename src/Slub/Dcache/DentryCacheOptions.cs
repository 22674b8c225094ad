namespace Slub.Dcache;

/// <summary>Settings of a <see cref="DentryCache"/>.</summary>
public sealed class DentryCacheOptions
{
    /// <summary>Name of the slab cache; when taken in this allocator, "-2", "-3", … is appended.</summary>
    public string CacheName { get; init; } = "dentry";

    /// <summary>log2 of the hash-table buckets (4..24). The kernel sizes it by RAM; 2^16 suits ~100 k dentries.</summary>
    public int HashBits { get; init; } = 16;

    /// <summary>What the SMO isolate callback takes from a sparse slab.</summary>
    public PartialShrinkMode PartialShrink { get; init; } = PartialShrinkMode.WholeSlabsOnly;

    /// <summary>How a name that misses the cache is looked up on disk; default <see cref="FileSystemProbe.Probe"/>.</summary>
    public Func<string, InodeKind>? Probe { get; init; }
}

/// <summary>Which unused dentries the partial-shrink (SMO) callbacks evict from a slab being emptied.</summary>
public enum PartialShrinkMode
{
    /// <summary>
    /// Only when the whole slab can empty: every dentry in it is unused, dead, or a directory whose only
    /// references are evictable children in the same slab. Otherwise nothing is evicted, so no cached entry is
    /// thrown away for a slab that stays allocated anyway. (This implementation's default.)
    /// </summary>
    WholeSlabsOnly,
    /// <summary>The series' patch 13: evict every unused dentry of the slab, whether or not the slab can empty.</summary>
    EvictAllUnused,
}

/// <summary>The default file-system lookup of a dentry cache: what the OS says a full path is, following symbolic links.</summary>
public static class FileSystemProbe
{
    /// <summary><see cref="InodeKind.Directory"/> if <see cref="Directory.Exists"/>, <see cref="InodeKind.File"/> if <see cref="File.Exists"/>, otherwise <see cref="InodeKind.Negative"/>.</summary>
    public static InodeKind Probe(string fullPath) =>
        Directory.Exists(fullPath) ? InodeKind.Directory : File.Exists(fullPath) ? InodeKind.File : InodeKind.Negative;
}
