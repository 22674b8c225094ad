using System.Collections.Concurrent;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using Slub.XArray;

namespace Slub.Benchmarks;

/// <summary>Key layouts for <see cref="XArrayBenchmarks"/>.</summary>
public enum KeyLayout
{
    /// <summary>0 .. N−1 (IDs, page indices of a file read sequentially).</summary>
    Dense,
    /// <summary>N random keys below 2^40 (sparse; XArray nodes hold few entries).</summary>
    Sparse,
}

/// <summary>
/// XArray against <see cref="Dictionary{TKey,TValue}"/>, <see cref="SortedDictionary{TKey,TValue}"/> and
/// <see cref="ConcurrentDictionary{TKey,TValue}"/> with <c>ulong</c> keys and values: load, store (into an empty
/// container), erase, and in-order iteration over all entries; loads also through <see cref="XaReader"/> and in key order. One operation = one key (OperationsPerInvoke).
/// Run: <c>dotnet run -c Release --project bench/Slub.Benchmarks -- --filter '*XArrayBenchmarks*' --job short</c>.
/// Memory per entry (XArray nodes are native, invisible to MemoryDiagnoser; for the others, managed bytes retained) is printed by the global setup.
/// </summary>
[MemoryDiagnoser]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
public class XArrayBenchmarks
{
    public const int N = 100_000;

    [Params(KeyLayout.Dense, KeyLayout.Sparse)]
    public KeyLayout Layout;

    private SlabAllocator _alloc = null!;
    private ulong[] _keys = null!;      // insertion order
    private ulong[] _lookups = null!;   // random order
    private XArray.XArray _xa = null!, _xaScratch = null!;
    private Dictionary<ulong, ulong> _dict = null!, _dictScratch = null!;
    private SortedDictionary<ulong, ulong> _sorted = null!, _sortedScratch = null!;
    private ConcurrentDictionary<ulong, ulong> _concurrent = null!, _concurrentScratch = null!;

    [GlobalSetup]
    public void Setup()
    {
        _alloc = new SlabAllocator(new SlabOptions { BytesPerNode = 1L << 30, EmulatedNodes = 1, Cpus = 2, SlubDebug = "-" });
        var rnd = new Random(12345);
        var set = new HashSet<ulong>();
        _keys = new ulong[N];
        for (int i = 0; i < N; i++)
        {
            if (Layout == KeyLayout.Dense) _keys[i] = (ulong)i;
            else
            {
                ulong k;
                do k = (ulong)rnd.NextInt64(1L << 40); while (!set.Add(k));
                _keys[i] = k;
            }
        }
        _lookups = (ulong[])_keys.Clone();
        rnd.Shuffle(_lookups);

        long before = GC.GetTotalMemory(true);
        _dict = new Dictionary<ulong, ulong>();
        foreach (ulong k in _keys) _dict[k] = k;
        long dictBytes = GC.GetTotalMemory(true) - before;
        before = GC.GetTotalMemory(true);
        _sorted = new SortedDictionary<ulong, ulong>();
        foreach (ulong k in _keys) _sorted[k] = k;
        long sortedBytes = GC.GetTotalMemory(true) - before;
        before = GC.GetTotalMemory(true);
        _concurrent = new ConcurrentDictionary<ulong, ulong>();
        foreach (ulong k in _keys) _concurrent[k] = k;
        long concBytes = GC.GetTotalMemory(true) - before;
        _xa = new XArray.XArray(XaFlags.None, _alloc);
        foreach (ulong k in _keys) _xa.StoreValue(k, k);
        var info = _xa.Validate();
        long dirBytes = _xa.DirectoryCapacity == 0 ? 0 : (long)(_xa.DirectoryCapacity + 1) * sizeof(ulong);
        long xaBytes = (long)info.Nodes * _xa.NodeCache.SlabSize + dirBytes;
        Console.WriteLine($"// memory per entry ({Layout}, N={N}): XArray {xaBytes / (double)N:F1} B ({info.Nodes} nodes x {_xa.NodeCache.SlabSize} B, height {info.Height}, leaf directory {dirBytes} B); " +
                          $"Dictionary {dictBytes / (double)N:F1} B; SortedDictionary {sortedBytes / (double)N:F1} B; ConcurrentDictionary {concBytes / (double)N:F1} B (managed bytes retained)");

        _xaScratch = new XArray.XArray(XaFlags.None, _alloc);
        _dictScratch = new Dictionary<ulong, ulong>();
        _sortedScratch = new SortedDictionary<ulong, ulong>();
        _concurrentScratch = new ConcurrentDictionary<ulong, ulong>();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _xa.Dispose();
        _xaScratch.Dispose();
        _alloc.Dispose();
    }

    // ------------------------------------------------------------------ load

    [Benchmark(OperationsPerInvoke = N), BenchmarkCategory("Load")]
    public ulong Load_XArray() => XArraySum(_lookups);

    /// <summary>The same loads through one <see cref="XaReader"/> (one read section) per 256 keys.</summary>
    [Benchmark(OperationsPerInvoke = N), BenchmarkCategory("Load")]
    public ulong Load_XArrayReader() => ReaderSum(_lookups);

    /// <summary>The same keys through <see cref="XaReader.LoadMany"/>, one reader and one call per 256 keys, then the same sum.</summary>
    [Benchmark(OperationsPerInvoke = N), BenchmarkCategory("Load")]
    public ulong Load_XArrayLoadMany() => LoadManySum(_lookups);

    [Benchmark(OperationsPerInvoke = N, Baseline = true), BenchmarkCategory("Load")]
    public ulong Load_Dictionary() => DictionarySum(_dict, _lookups);

    [Benchmark(OperationsPerInvoke = N), BenchmarkCategory("Load")]
    public ulong Load_SortedDictionary() => DictionarySum(_sorted, _lookups);

    [Benchmark(OperationsPerInvoke = N), BenchmarkCategory("Load")]
    public ulong Load_ConcurrentDictionary() => DictionarySum(_concurrent, _lookups);

    // ------------------------------------------------------------------ load in key order

    [Benchmark(OperationsPerInvoke = N), BenchmarkCategory("LoadInOrder")]
    public ulong LoadInOrder_XArray() => XArraySum(_keys);

    [Benchmark(OperationsPerInvoke = N), BenchmarkCategory("LoadInOrder")]
    public ulong LoadInOrder_XArrayReader() => ReaderSum(_keys);

    [Benchmark(OperationsPerInvoke = N), BenchmarkCategory("LoadInOrder")]
    public ulong LoadInOrder_XArrayLoadMany() => LoadManySum(_keys);

    [Benchmark(OperationsPerInvoke = N, Baseline = true), BenchmarkCategory("LoadInOrder")]
    public ulong LoadInOrder_Dictionary() => DictionarySum(_dict, _keys);

    // The bodies shared by both key orders: look every key up and sum the values found.

    private ulong XArraySum(ulong[] keys)
    {
        ulong sum = 0;
        var xa = _xa;
        foreach (ulong k in keys) if (xa.TryGetValue(k, out ulong v)) sum += v;
        return sum;
    }

    private ulong ReaderSum(ulong[] keys)
    {
        ulong sum = 0;
        for (int i = 0; i < keys.Length; i += 256)
        {
            using var r = _xa.BeginRead();
            foreach (ulong k in keys.AsSpan(i, Math.Min(256, keys.Length - i))) if (r.TryGetValue(k, out ulong v)) sum += v;
        }
        return sum;
    }

    private readonly XaEntry[] _batch = new XaEntry[256];

    private ulong LoadManySum(ulong[] keys)
    {
        ulong sum = 0;
        var batch = _batch;
        for (int i = 0; i < keys.Length; i += 256)
        {
            var part = keys.AsSpan(i, Math.Min(256, keys.Length - i));
            using (var r = _xa.BeginRead()) r.LoadMany(part, batch);
            foreach (var e in batch.AsSpan(0, part.Length)) if (e.IsValue) sum += e.Raw >> 1;
        }
        return sum;
    }

    // One overload per type, not a generic method: for reference types the JIT shares one generic body and
    // calls TryGetValue through the interface, which would slow down the baseline.
    private static ulong DictionarySum(Dictionary<ulong, ulong> d, ulong[] keys) { ulong sum = 0; foreach (ulong k in keys) if (d.TryGetValue(k, out ulong v)) sum += v; return sum; }
    private static ulong DictionarySum(SortedDictionary<ulong, ulong> d, ulong[] keys) { ulong sum = 0; foreach (ulong k in keys) if (d.TryGetValue(k, out ulong v)) sum += v; return sum; }
    private static ulong DictionarySum(ConcurrentDictionary<ulong, ulong> d, ulong[] keys) { ulong sum = 0; foreach (ulong k in keys) if (d.TryGetValue(k, out ulong v)) sum += v; return sum; }

    // ------------------------------------------------------------------ store + erase (fill an empty container, then empty it)

    [Benchmark(OperationsPerInvoke = N), BenchmarkCategory("StoreErase")]
    public void StoreErase_XArray()
    {
        var xa = _xaScratch;
        foreach (ulong k in _keys) xa.StoreValue(k, k);
        foreach (ulong k in _lookups) xa.Erase(k);
    }

    [Benchmark(OperationsPerInvoke = N, Baseline = true), BenchmarkCategory("StoreErase")]
    public void StoreErase_Dictionary()
    {
        var d = _dictScratch;
        foreach (ulong k in _keys) d[k] = k;
        foreach (ulong k in _lookups) d.Remove(k);
    }

    [Benchmark(OperationsPerInvoke = N), BenchmarkCategory("StoreErase")]
    public void StoreErase_SortedDictionary()
    {
        var d = _sortedScratch;
        foreach (ulong k in _keys) d[k] = k;
        foreach (ulong k in _lookups) d.Remove(k);
    }

    [Benchmark(OperationsPerInvoke = N), BenchmarkCategory("StoreErase")]
    public void StoreErase_ConcurrentDictionary()
    {
        var d = _concurrentScratch;
        foreach (ulong k in _keys) d[k] = k;
        foreach (ulong k in _lookups) d.TryRemove(k, out _);
    }

    // ------------------------------------------------------------------ overwrite existing keys

    [Benchmark(OperationsPerInvoke = N), BenchmarkCategory("Overwrite")]
    public void Overwrite_XArray()
    {
        var xa = _xa;
        foreach (ulong k in _lookups) xa.StoreValue(k, k);
    }

    [Benchmark(OperationsPerInvoke = N, Baseline = true), BenchmarkCategory("Overwrite")]
    public void Overwrite_Dictionary()
    {
        var d = _dict;
        foreach (ulong k in _lookups) d[k] = k;
    }

    [Benchmark(OperationsPerInvoke = N), BenchmarkCategory("Overwrite")]
    public void Overwrite_SortedDictionary()
    {
        var d = _sorted;
        foreach (ulong k in _lookups) d[k] = k;
    }

    [Benchmark(OperationsPerInvoke = N), BenchmarkCategory("Overwrite")]
    public void Overwrite_ConcurrentDictionary()
    {
        var d = _concurrent;
        foreach (ulong k in _lookups) d[k] = k;
    }

    // ------------------------------------------------------------------ iterate in key order

    [Benchmark(OperationsPerInvoke = N), BenchmarkCategory("Iterate")]
    public ulong Iterate_XArrayCursor()
    {
        ulong sum = 0;
        using (_xa.ReadLock())
        {
            var xas = new XaState(_xa, 0);
            for (var e = xas.Find(); !e.IsNull; e = xas.Find()) sum += e.Value;
        }
        return sum;
    }

    [Benchmark(OperationsPerInvoke = N), BenchmarkCategory("Iterate")]
    public ulong Iterate_XArrayForEach()
    {
        ulong sum = 0;
        foreach (var kv in _xa) sum += kv.Value.Value;
        return sum;
    }

    [Benchmark(OperationsPerInvoke = N, Baseline = true), BenchmarkCategory("Iterate")]
    public ulong Iterate_Dictionary_Unordered()
    {
        ulong sum = 0;
        foreach (var kv in _dict) sum += kv.Value;
        return sum;
    }

    [Benchmark(OperationsPerInvoke = N), BenchmarkCategory("Iterate")]
    public ulong Iterate_SortedDictionary()
    {
        ulong sum = 0;
        foreach (var kv in _sorted) sum += kv.Value;
        return sum;
    }

    [Benchmark(OperationsPerInvoke = N), BenchmarkCategory("Iterate")]
    public ulong Iterate_ConcurrentDictionary_Unordered()
    {
        ulong sum = 0;
        foreach (var kv in _concurrent) sum += kv.Value;
        return sum;
    }
}
