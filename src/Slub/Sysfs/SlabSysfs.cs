using System.Globalization;

namespace Slub.Sysfs;

/// <summary>An entry at the root of the slab tree: a cache directory or an alias symlink pointing at one.</summary>
public readonly record struct SlabEntry(string Name, bool IsLink, string? Target, KmemCache Cache);

/// <summary>
/// The /sys/kernel/slab of this process: read and write cache attributes by path
/// (<c>"dentry/partial"</c>), list the root, export a snapshot as real files, and serve it to other
/// processes (<see cref="LiveEndpoint"/>). Directory naming follows SLUB: a cache that others may merge
/// into lives under a unique id such as <c>:0000064</c> with a symlink per name; any other cache under its
/// own name. Thread-safe.
/// </summary>
public sealed class SlabSysfs
{
    private readonly SlabAllocator _allocator;

    /// <summary>The attribute tree of <paramref name="allocator"/>; <see cref="SlabAllocator.Sysfs"/> already holds one.</summary>
    public SlabSysfs(SlabAllocator allocator) => _allocator = allocator ?? throw new ArgumentNullException(nameof(allocator));

    /// <summary>The root entries in cache-list order: each cache's directory, then its alias links.</summary>
    public IReadOnlyList<SlabEntry> Entries()
    {
        var list = new List<SlabEntry>();
        foreach (var c in _allocator.Caches)
        {
            string dir = DirectoryName(c);
            list.Add(new SlabEntry(dir, false, null, c));
            if (dir != c.Name) list.Add(new SlabEntry(c.Name, true, dir, c));
            foreach (string alias in c.AliasNames) list.Add(new SlabEntry(alias, true, dir, c));
        }
        return list;
    }

    /// <summary>The directory name of a cache: its name, or the unique id (<c>create_unique_id</c>) when it is mergeable.</summary>
    public string DirectoryName(KmemCache c)
    {
        if (!_allocator.IsMergeable(c)) return c.Name;
        string flags = "";
        if ((c.Flags & SlabFlags.ReclaimAccount) != 0) flags += "a";
        if ((c.Flags & SlabFlags.ConsistencyChecks) != 0) flags += "F";
        return ":" + (flags.Length > 0 ? flags + "-" : "") + c.SlabSize.ToString("D7", CultureInfo.InvariantCulture);
    }

    /// <summary>Reads <c>cache/attribute</c> (the cache by directory or alias name).</summary>
    /// <exception cref="SysfsException">ENOENT for an unknown cache or attribute, EACCES for a write-only file.</exception>
    /// <exception cref="ArgumentNullException"><paramref name="path"/> is null.</exception>
    public string Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var (cache, attr) = Resolve(path);
        if (attr.Show is null) throw new SysfsException(Errno.EACCES, path, "not readable");
        return attr.Show(cache);
    }

    /// <summary>Writes <c>cache/attribute</c>. A bad value changes nothing and throws with the kernel's error kind.</summary>
    /// <exception cref="SysfsException">ENOENT unknown, EIO read-only attribute, EINVAL/ERANGE bad value.</exception>
    /// <exception cref="ArgumentNullException"><paramref name="path"/> or <paramref name="value"/> is null.</exception>
    public void Write(string path, string value)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(value);
        var (cache, attr) = Resolve(path);
        if (attr.Store is null) throw new SysfsException(Errno.EIO, path, "read-only attribute");
        attr.Store(cache, path, value);
    }

    private (KmemCache, SlabAttribute) Resolve(string path)
    {
        int slash = path.IndexOf('/');
        if (slash <= 0 || slash == path.Length - 1 || path.IndexOf('/', slash + 1) >= 0)
            throw new SysfsException(Errno.ENOENT, path, "expected <cache>/<attribute>");
        string cacheName = path[..slash], attrName = path[(slash + 1)..];
        var entry = Entries().FirstOrDefault(e => e.Name == cacheName);
        if (entry.Cache is null) throw new SysfsException(Errno.ENOENT, path, $"no cache {cacheName}");
        var attr = SlabAttribute.All.FirstOrDefault(a => a.Name == attrName)
                   ?? throw new SysfsException(Errno.ENOENT, path, $"no attribute {attrName}");
        return (entry.Cache, attr);
    }

    // A file whose read fails (alloc_calls without store_user: ENOSYS) is exported empty, as a copy of the kernel's
    // file comes out and as slabinfo reads it (no bytes).
    private static string ExportText(SlabAttribute a, KmemCache c)
    {
        if (a.Show is null) return "";
        try { return a.Show(c); }
        catch (SysfsException) { return ""; }
    }

    /// <summary>
    /// Writes the tree to <paramref name="directory"/> as real files: one directory per cache holding its
    /// readable attributes, one symlink per alias. Write-only files, and files whose read fails, are written empty.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The allocator is disposed: nothing is written (some attributes, such as
    /// <c>slab_occupancy</c>, flush the CPUs and would fail part way, leaving a partial tree).</exception>
    public void Export(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        _allocator.ThrowIfDisposed("Export");
        Directory.CreateDirectory(directory);
        foreach (var e in Entries())
        {
            string path = Path.Combine(directory, e.Name);
            if (e.IsLink)
            {
                if (File.Exists(path) || Directory.Exists(path)) File.Delete(path);
                File.CreateSymbolicLink(path, e.Target!);
                continue;
            }
            Directory.CreateDirectory(path);
            foreach (var a in SlabAttribute.All)
                File.WriteAllText(Path.Combine(path, a.Name), ExportText(a, e.Cache));
        }
    }
}
