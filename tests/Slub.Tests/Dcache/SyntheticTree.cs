using Slub.Dcache;

namespace Slub.Tests.Dcache;

/// <summary>
/// A file system that exists only as a set of paths, used as the dentry cache's probe so SMO and
/// concurrency tests can populate thousands of dentries without touching the disk. Thread-safe for reads.
/// </summary>
internal sealed class SyntheticTree
{
    public string Root { get; } = Path.GetTempPath().TrimEnd('/');
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, InodeKind> _kinds = new();
    public List<string> Files { get; } = new();
    public List<string> Dirs { get; } = new();
    public long Probes;

    /// <summary><paramref name="dirs"/> directories d0..dN-1 with <paramref name="filesPerDir"/> files each.</summary>
    public SyntheticTree(int dirs, int filesPerDir)
    {
        for (int d = 0; d < dirs; d++)
        {
            string dir = $"d{d}";
            Dirs.Add(dir);
            _kinds[Path.Join(Root, dir)] = InodeKind.Directory;
            for (int f = 0; f < filesPerDir; f++)
            {
                string file = $"{dir}/f{f}";
                Files.Add(file);
                _kinds[Path.Join(Root, file)] = InodeKind.File;
            }
        }
    }

    /// <summary>Changes the "disk": creates (or, with <see cref="InodeKind.Negative"/>, deletes) a path.</summary>
    public void Set(string rel, InodeKind kind)
    {
        if (kind == InodeKind.Negative) _kinds.TryRemove(Path.Join(Root, rel), out _);
        else _kinds[Path.Join(Root, rel)] = kind;
    }

    public InodeKind Probe(string full)
    {
        Interlocked.Increment(ref Probes);
        return _kinds.TryGetValue(full, out var k) ? k : InodeKind.Negative;
    }

    public InodeKind Expected(string rel) => _kinds.TryGetValue(Path.Join(Root, rel), out var k) ? k : InodeKind.Negative;

    public DentryCache CreateCache(SlabAllocator a, PartialShrinkMode mode = PartialShrinkMode.WholeSlabsOnly) =>
        new(Root, a, new DentryCacheOptions { Probe = Probe, PartialShrink = mode, HashBits = 14 });
}
