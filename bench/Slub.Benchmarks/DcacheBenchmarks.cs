using BenchmarkDotNet.Attributes;
using Slub.Dcache;

namespace Slub.Benchmarks;

/// <summary>
/// Path lookup through the slab-backed dentry cache beside a <see cref="Dictionary{TKey,TValue}"/> path cache
/// and plain <see cref="File.Exists"/>/<see cref="Directory.Exists"/>, over the same paths in the same run.
/// The tree (1 500 files in 60 directories, three components deep, one long name in ten, plus one missing
/// name per eight entries) is made in the temp directory; both caches are warm, so the cached columns measure
/// hits (positive and negative) and the file-system column measures two stat calls per path at most.
/// </summary>
/// <remarks>Run: <c>dotnet run -c Release --project bench/Slub.Benchmarks -- --filter '*DcacheBenchmarks*' --job short</c>.</remarks>
[MemoryDiagnoser]
public class DcacheBenchmarks
{
    private const int Paths = 1_690;

    /// <summary>Paths per pass (for the CPU-time probe).</summary>
    public const int PathCount = Paths;
    private string _root = "";
    private string[] _relative = [];
    private string[] _full = [];
    private SlabAllocator? _allocator;
    private DentryCache? _dcache;
    private readonly Dictionary<string, InodeKind> _dictionary = new(StringComparer.Ordinal);
    private const int ChurnNames = 32;
    private Dentry _churnDir;
    private string[] _churnNames = [], _churnPaths = [];

    /// <summary>The dentry cache the dcache cases look up in (for the CPU-time probe's counters).</summary>
    public DentryCache Dcache => _dcache!;

    [GlobalSetup]
    public void Setup()
    {
        _root = Path.Combine(Path.GetTempPath(), "slub-dcache-bench-" + Environment.ProcessId);
        var rel = new List<string>();
        for (int d = 0; d < 20; d++)
            for (int s = 0; s < 3; s++)
                for (int f = 0; f < 25; f++)
                {
                    string path = $"dir{d}/sub{s}/file-{f}" + (f % 10 == 0 ? "-" + new string('x', 40) : "") + ".txt";
                    Directory.CreateDirectory(Path.GetDirectoryName(Path.Join(_root, path))!);
                    File.WriteAllText(Path.Join(_root, path), "");
                    rel.Add(path);
                    if (rel.Count % 8 == 0) rel.Add($"dir{d}/sub{s}/missing-{f}.txt");
                }
        _relative = rel.Take(Paths).ToArray();
        _full = _relative.Select(p => Path.Join(_root, p)).ToArray();
        _allocator = new SlabAllocator(new SlabOptions { BytesPerNode = 256L << 20, EmulatedNodes = 1, Cpus = 2, SlubDebug = "-" });
        _dcache = new DentryCache(_root, _allocator);
        foreach (var p in _relative) _dcache.LookupPath(p);
        foreach (var p in _relative) Dictionary(p);
        // A directory no benchmark path goes through, for ChurnRound.
        Directory.CreateDirectory(Path.Join(_root, "churn"));
        _churnDir = _dcache.Resolve("churn", out _);
        _churnNames = Enumerable.Range(0, ChurnNames).Select(i => $"c{i}").ToArray();
        _churnPaths = _churnNames.Select(n => "churn/" + n).ToArray();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        if (!_churnDir.IsNull) _dcache!.Put(_churnDir);
        _churnDir = default;
        _dcache?.Dispose();
        _allocator?.Dispose();
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }

    private InodeKind Dictionary(string relative)
    {
        if (_dictionary.TryGetValue(relative, out var kind)) return kind;
        kind = FileSystemProbe.Probe(Path.Join(_root, relative));
        _dictionary[relative] = kind;
        return kind;
    }

    /// <summary>Asks the OS every time: <c>Directory.Exists || File.Exists</c> on the full path.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = Paths)]
    public int FileSystemExists()
    {
        int found = 0;
        foreach (var p in _full) if (Directory.Exists(p) || File.Exists(p)) found++;
        return found;
    }

    /// <summary>Component-by-component walk through the dentry hash table, taking and dropping references.</summary>
    [Benchmark(OperationsPerInvoke = Paths)]
    public int DentryCacheLookup()
    {
        int found = 0;
        foreach (var p in _relative) if (_dcache!.LookupPath(p).Exists) found++;
        return found;
    }

    /// <summary>The same walk given absolute paths under the root (not a BenchmarkDotNet case; used by <see cref="DcacheCpuTimeProbe"/>).</summary>
    public int DentryCacheLookupAbsolute()
    {
        int found = 0;
        foreach (var p in _full) if (_dcache!.LookupPath(p).Exists) found++;
        return found;
    }

    /// <summary>
    /// Not a BenchmarkDotNet case (used by <see cref="DcacheCpuTimeProbe"/>): dentries created and killed in a
    /// directory ("churn") that no benchmark path goes through, as a file system's creates and an invalidating
    /// watcher or reclaim would: <c>d_alloc</c> + <c>d_add</c> + <c>dput</c> of <see cref="ChurnNames"/> names, then
    /// every other one invalidated by path (<c>d_drop</c>, killed at its last <c>dput</c>) and the rest freed by
    /// <c>shrink_dcache_parent</c> on the directory. No path walk of its own (the invalidations walk under the
    /// tree lock), so every RCU-walk fallback counted while it runs is a reader's. Returns the dentries unhashed.
    /// </summary>
    public int ChurnRound()
    {
        var dc = _dcache!;
        foreach (var name in _churnNames)
        {
            var d = dc.Alloc(_churnDir, name);
            dc.Add(d, InodeKind.File);
            dc.Put(d);
        }
        for (int i = 0; i < _churnPaths.Length; i += 2) dc.Invalidate(_churnPaths[i]);
        dc.ShrinkParent(_churnDir);
        return ChurnNames;
    }

    /// <summary>One hash lookup of the whole path string (no per-component structure, no invalidation of subtrees).</summary>
    [Benchmark(OperationsPerInvoke = Paths)]
    public int DictionaryPathCache()
    {
        int found = 0;
        foreach (var p in _relative) if (Dictionary(p) != InodeKind.Negative) found++;
        return found;
    }
}
