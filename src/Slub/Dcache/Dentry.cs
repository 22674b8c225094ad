namespace Slub.Dcache;

/// <summary>
/// A handle on a dentry in slab memory (the kernel's <c>struct dentry *</c>). Holding a handle is not
/// holding a reference: handles returned by <see cref="DentryCache"/> operations come with one reference
/// that the caller gives back with <see cref="DentryCache.Put"/>.
/// </summary>
/// <remarks>The properties read the native fields without locks: exact while the caller holds a reference and
/// nobody renames the dentry, snapshots otherwise. Use them only on dentries you hold: like the kernel's pointer,
/// a handle whose reference was given back, or whose <see cref="DentryCache"/> was disposed (every reference is
/// then void), names memory the cache may have freed or reused, and reading it is undefined.</remarks>
public readonly unsafe struct Dentry : IEquatable<Dentry>
{
    /// <summary>Address of the object in the <c>dentry</c> slab cache.</summary>
    public nint Address { get; }

    internal Dentry(nint address) => Address = address;

    internal DentryData* D => (DentryData*)Address;

    /// <summary>True for the default handle (address 0), which names no dentry.</summary>
    public bool IsNull => Address == 0;

    /// <summary>Reference count (<c>d_count</c>); negative once dead.</summary>
    public int Count => Volatile.Read(ref D->Count);

    /// <summary>The <c>d_flags</c> bits, read without the dentry's lock.</summary>
    public DentryFlags Flags => (DentryFlags)Volatile.Read(ref D->Flags);

    /// <summary>What the name refers to; <see cref="InodeKind.Negative"/> for a cached miss.</summary>
    public InodeKind Kind => D->Kind;

    /// <summary>True for a negative dentry: a cached miss (<see cref="InodeKind.Negative"/>).</summary>
    public bool IsNegative => Kind == InodeKind.Negative;

    /// <summary>Inode identity (0 for negative dentries).</summary>
    public ulong Inode => D->Inode;

    /// <summary>Whether lookups can find it (<c>d_unhashed</c> negated).</summary>
    public bool IsHashed => (Flags & DentryFlags.Hashed) != 0;

    /// <summary>The name (<c>d_name</c>).</summary>
    public string Name => DentryName.ToString(D);

    /// <summary>The parent (<c>d_parent</c>); the root is its own parent.</summary>
    public Dentry Parent => new(D->Parent);

    /// <summary>True if both handles hold the same address; a freed and reused slot equals its old handle.</summary>
    public bool Equals(Dentry other) => Address == other.Address;
    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is Dentry d && Equals(d);
    /// <inheritdoc/>
    public override int GetHashCode() => Address.GetHashCode();
    /// <summary>True if both handles hold the same address (see <see cref="Equals(Dentry)"/>).</summary>
    public static bool operator ==(Dentry a, Dentry b) => a.Address == b.Address;
    /// <summary>True if the handles hold different addresses.</summary>
    public static bool operator !=(Dentry a, Dentry b) => a.Address != b.Address;
    /// <summary><c>(null)</c>, or address, name, count, kind and flags. Reads the dentry's memory: use it only on dentries you hold.</summary>
    public override string ToString() => IsNull ? "(null)" : $"dentry 0x{Address:x} '{Name}' count={Count} {Kind} {Flags}";
}

/// <summary>Answer of a path lookup.</summary>
/// <param name="Kind">What the path names; <see cref="InodeKind.Negative"/> when it does not exist.</param>
/// <param name="Inode">Inode identity of the last component (0 when negative).</param>
/// <param name="FileSystemQueries">How many components had to be asked of the file system (0: answered from the cache).</param>
public readonly record struct LookupResult(InodeKind Kind, ulong Inode, int FileSystemQueries)
{
    /// <summary>True if the path names something (<see cref="Kind"/> is not <see cref="InodeKind.Negative"/>).</summary>
    public bool Exists => Kind != InodeKind.Negative;
}

/// <summary>Counters of a dentry cache (<c>/proc/sys/fs/dentry-state</c> plus the slab figures).</summary>
/// <param name="Dentries">Dentries alive, the root included (<c>nr_dentry</c>).</param>
/// <param name="Unused">Unused dentries on the LRU (<c>nr_unused</c>).</param>
/// <param name="Negative">Negative dentries (<c>nr_negative</c>).</param>
/// <param name="Lookups">Components looked up in the hash table (each component of a cached walk is one).</param>
/// <param name="Hits">Components found cached.</param>
/// <param name="Misses">Components the file system was asked about.</param>
/// <param name="Slabs">Slabs of the <c>dentry</c> slab cache.</param>
/// <param name="SlabObjects">Objects allocated in them.</param>
/// <param name="OptimalSlabs">Slabs those objects would need if packed.</param>
/// <param name="ObjectsPerSlab">Objects per slab.</param>
/// <param name="RcuWalkFallbacks">Path walks (<see cref="DentryCache.LookupPath(string)"/>, <see cref="DentryCache.Resolve"/>,
/// <see cref="DentryCache.Exists"/>) whose lock-free RCU-walk did not answer and that walked again under the tree
/// lock: a component not cached (every first lookup of a name), or a validation that failed because the dentries
/// it read changed meanwhile. <see cref="DentryCache.IsCached"/>, a peek, counts nothing, as it counts no lookups.
/// Not a kernel counter; docs/dcache.md, "Path walk".</param>
public sealed record DcacheStatistics(
    long Dentries, long Unused, long Negative, long Lookups, long Hits, long Misses,
    long Slabs, long SlabObjects, long OptimalSlabs, int ObjectsPerSlab, long RcuWalkFallbacks);
