using Slub.Benchmarks.Infrastructure;
using Slub.XArray;

namespace Slub.Benchmarks;

/// <summary>
/// XArray write and iteration cost in thread CPU time against <see cref="Dictionary{TKey,TValue}"/> and
/// <see cref="SortedDictionary{TKey,TValue}"/> in the same run, for two key layouts of 100 000 keys:
/// <b>dense</b> (0..N−1, stored in key order) and <b>sparse</b> (N distinct random keys below 2^40, the keys of
/// <see cref="XArrayBenchmarks"/>' Sparse layout, stored in that random insertion order). Per round and
/// container: store into a new container (empty → N), overwrite every key in random order, iterate in index
/// order with a cursor (<see cref="XaState.Find"/> in one read section) and with <c>foreach</c>
/// (<see cref="XArray.XArray.GetEnumerator"/>, one <c>xa_find_after</c> per entry), then erase every key in random
/// order (N → empty). Dictionary iterates unordered (its <c>foreach</c> in both iteration rows); SortedDictionary
/// in key order. Best of <c>--rounds</c> rounds (default 9 dense, 5 sparse), the containers alternating.
/// Node (and leaf directory) growth is inside the store phase, retiring nodes inside the erase phase.
/// <code>
/// dotnet run -c Release --project bench/Slub.Benchmarks -- --xarray-store-cpu-time               # both layouts
/// dotnet run -c Release --project bench/Slub.Benchmarks -- --xarray-store-cpu-time --sparse      # one layout
/// dotnet run -c Release --project bench/Slub.Benchmarks -- --xarray-store-cpu-time --sparse --xarray-only --rounds 50   # for perf record
/// </code>
/// </summary>
public static class XArrayStoreProbe
{
    private const int N = 100_000;

    private static readonly string[] Phases =
        ["store (new container)", "overwrite in random order", "iterate, cursor (XaState.Find)", "iterate, foreach", "erase in random order"];

    public static void Run(string[] args)
    {
        bool dense = !args.Contains("--sparse") || args.Contains("--dense");
        bool sparse = !args.Contains("--dense") || args.Contains("--sparse");
        bool xarrayOnly = args.Contains("--xarray-only");
        int rounds = 0;
        int ri = Array.IndexOf(args, "--rounds");
        if (ri >= 0 && ri + 1 < args.Length) rounds = int.Parse(args[ri + 1], System.Globalization.CultureInfo.InvariantCulture);
        using var alloc = new SlabAllocator(new SlabOptions { BytesPerNode = 1L << 30, EmulatedNodes = 1, Cpus = 2, SlubDebug = "-" });
        if (dense) RunLayout(alloc, "dense", DenseKeys(), rounds > 0 ? rounds : 9, xarrayOnly);
        if (sparse) RunLayout(alloc, "sparse", SparseKeys(), rounds > 0 ? rounds : 5, xarrayOnly);
    }

    private static ulong[] DenseKeys() => Enumerable.Range(0, N).Select(i => (ulong)i).ToArray();

    /// <summary>The keys of <see cref="XArrayBenchmarks"/>' Sparse layout, in its insertion order.</summary>
    private static ulong[] SparseKeys()
    {
        var rnd = new Random(12345);
        var set = new HashSet<ulong>();
        var keys = new ulong[N];
        for (int i = 0; i < N; i++)
        {
            ulong k;
            do k = (ulong)rnd.NextInt64(1L << 40); while (!set.Add(k));
            keys[i] = k;
        }
        return keys;
    }

    private static void RunLayout(SlabAllocator alloc, string layout, ulong[] insertion, int rounds, bool xarrayOnly)
    {
        ulong[] random = (ulong[])insertion.Clone();
        new Random(1).Shuffle(random);
        ulong expectedSum = 0;
        foreach (ulong k in insertion) expectedSum += k + 1;
        var xa = Fill(Phases.Length);
        var dict = Fill(Phases.Length);
        var sorted = Fill(Phases.Length);
        for (int round = 0; round < rounds; round++)
        {
            Min(xa, XArrayRound(alloc, insertion, random, expectedSum));
            if (xarrayOnly) continue;
            Min(dict, DictionaryRound(new Dictionary<ulong, ulong>(), insertion, random, expectedSum));
            Min(sorted, SortedRound(new SortedDictionary<ulong, ulong>(), insertion, random, expectedSum));
        }
        Console.WriteLine($"{layout}: ns per key, thread CPU time, best of {rounds} rounds x {N} keys; ratio = XArray / Dictionary (below 1 is faster)");
        Console.WriteLine($"{"phase",-32} {"XArray",9} {"Dictionary",11} {"SortedDict",11} {"ratio",7}");
        for (int p = 0; p < Phases.Length; p++)
            Console.WriteLine(xarrayOnly
                ? $"{Phases[p],-32} {xa[p],9:F1}"
                : $"{Phases[p],-32} {xa[p],9:F1} {dict[p],11:F1} {sorted[p],11:F1} {xa[p] / dict[p],6:F2}x");
    }

    private static double[] Fill(int n)
    {
        var a = new double[n];
        Array.Fill(a, double.MaxValue);
        return a;
    }

    private static void Min(double[] best, double[] round)
    {
        for (int i = 0; i < best.Length; i++) best[i] = Math.Min(best[i], round[i]);
    }

    private static double[] XArrayRound(SlabAllocator alloc, ulong[] insertion, ulong[] random, ulong expectedSum)
    {
        using var xa = new XArray.XArray(XaFlags.None, alloc);
        var t = new long[Phases.Length + 1];
        t[0] = ThreadCpuClock.NowNanoseconds();
        foreach (ulong k in insertion) xa.StoreValue(k, k);
        t[1] = ThreadCpuClock.NowNanoseconds();
        foreach (ulong k in random) xa.StoreValue(k, k + 1);
        t[2] = ThreadCpuClock.NowNanoseconds();
        ulong sum = 0;
        using (xa.ReadLock())
        {
            var xas = new XaState(xa, 0);
            for (var e = xas.Find(); !e.IsNull; e = xas.Find()) sum += e.Value;
        }
        t[3] = ThreadCpuClock.NowNanoseconds();
        ulong sum2 = 0;
        foreach (var kv in xa) sum2 += kv.Value.Value;
        t[4] = ThreadCpuClock.NowNanoseconds();
        foreach (ulong k in random) xa.Erase(k);
        t[5] = ThreadCpuClock.NowNanoseconds();
        if (sum != expectedSum || sum2 != expectedSum) throw new InvalidOperationException("XArray iteration missed entries");
        if (!xa.IsEmpty) throw new InvalidOperationException("XArray not empty after erasing every key");
        return PerKey(t);
    }

    private static double[] DictionaryRound(Dictionary<ulong, ulong> d, ulong[] insertion, ulong[] random, ulong expectedSum)
    {
        // Written twice (here and SortedRound), not through IDictionary: each peer runs its own code, devirtualised.
        var t = new long[Phases.Length + 1];
        t[0] = ThreadCpuClock.NowNanoseconds();
        foreach (ulong k in insertion) d[k] = k;
        t[1] = ThreadCpuClock.NowNanoseconds();
        foreach (ulong k in random) d[k] = k + 1;
        t[2] = ThreadCpuClock.NowNanoseconds();
        ulong sum = 0;
        foreach (var kv in d) sum += kv.Value;
        t[3] = ThreadCpuClock.NowNanoseconds();
        ulong sum2 = 0;
        foreach (var kv in d) sum2 += kv.Value;
        t[4] = ThreadCpuClock.NowNanoseconds();
        foreach (ulong k in random) d.Remove(k);
        t[5] = ThreadCpuClock.NowNanoseconds();
        if (sum != expectedSum || sum2 != expectedSum) throw new InvalidOperationException("iteration missed entries");
        if (d.Count != 0) throw new InvalidOperationException("not empty after removing every key");
        return PerKey(t);
    }

    private static double[] SortedRound(SortedDictionary<ulong, ulong> d, ulong[] insertion, ulong[] random, ulong expectedSum)
    {
        var t = new long[Phases.Length + 1];
        t[0] = ThreadCpuClock.NowNanoseconds();
        foreach (ulong k in insertion) d[k] = k;
        t[1] = ThreadCpuClock.NowNanoseconds();
        foreach (ulong k in random) d[k] = k + 1;
        t[2] = ThreadCpuClock.NowNanoseconds();
        ulong sum = 0;
        foreach (var kv in d) sum += kv.Value;
        t[3] = ThreadCpuClock.NowNanoseconds();
        ulong sum2 = 0;
        foreach (var kv in d) sum2 += kv.Value;
        t[4] = ThreadCpuClock.NowNanoseconds();
        foreach (ulong k in random) d.Remove(k);
        t[5] = ThreadCpuClock.NowNanoseconds();
        if (sum != expectedSum || sum2 != expectedSum) throw new InvalidOperationException("iteration missed entries");
        if (d.Count != 0) throw new InvalidOperationException("not empty after removing every key");
        return PerKey(t);
    }

    private static double[] PerKey(long[] t)
    {
        var r = new double[t.Length - 1];
        for (int i = 0; i < r.Length; i++) r[i] = (t[i + 1] - t[i]) / (double)N;
        return r;
    }
}
