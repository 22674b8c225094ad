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
/// in key order. Then marked enumeration (<c>xa_for_each_marked</c>, <see cref="XArray.XArray.EnumerateMarked"/> of
/// <see cref="XaMark.Mark1"/>, set on every even key outside the timed phases), in the same array and in an
/// allocating one (<see cref="XaFlags.Alloc"/>, mark 0 being its free mark) holding the same keys; those two rows are
/// ns per <i>marked</i> entry, and the peers' rows filter their own <c>foreach</c> by the same key test. A line after the
/// table gives one <c>EnumerateMarked(Mark0)</c> over the allocating array (the free mark: it yields nothing), in µs
/// per call. Best of
/// <c>--rounds</c> rounds (default 9 dense, 5 sparse), the containers alternating.
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
        ["store (new container)", "overwrite in random order", "iterate, cursor (XaState.Find)", "iterate, foreach",
         "marked foreach (per marked)", "marked foreach, ALLOC array", "erase in random order"];

    /// <summary>Rows 4 and 5 count marked entries, not keys.</summary>
    private const int FirstMarkedPhase = 4, LastMarkedPhase = 5;

    /// <summary>Which keys carry the mark: a bit of the key itself, so every container tests the same set.</summary>
    private static bool IsMarked(ulong k) => (k & 1) == 0;

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
        ulong expectedSum = 0, expectedMarked = 0;
        int marked = 0;
        foreach (ulong k in insertion)
        {
            expectedSum += k + 1;
            if (IsMarked(k)) { expectedMarked += k + 1; marked++; }
        }
        var xa = Fill(Phases.Length);
        var dict = Fill(Phases.Length);
        var sorted = Fill(Phases.Length);
        double freeMarkUs = double.MaxValue;
        for (int round = 0; round < rounds; round++)
        {
            Min(xa, XArrayRound(alloc, insertion, random, expectedSum, expectedMarked, marked, out double us));
            freeMarkUs = Math.Min(freeMarkUs, us);
            if (xarrayOnly) continue;
            Min(dict, DictionaryRound(new Dictionary<ulong, ulong>(), insertion, random, expectedSum, expectedMarked, marked));
            Min(sorted, SortedRound(new SortedDictionary<ulong, ulong>(), insertion, random, expectedSum, expectedMarked, marked));
        }
        Console.WriteLine($"{layout}: ns per key ({marked} marked for the marked rows), thread CPU time, best of {rounds} rounds x {N} keys; ratio = XArray / Dictionary (below 1 is faster)");
        Console.WriteLine($"{"phase",-32} {"XArray",9} {"Dictionary",11} {"SortedDict",11} {"ratio",7}");
        for (int p = 0; p < Phases.Length; p++)
            Console.WriteLine(xarrayOnly
                ? $"{Phases[p],-32} {xa[p],9:F1}"
                : $"{Phases[p],-32} {xa[p],9:F1} {dict[p],11:F1} {sorted[p],11:F1} {xa[p] / dict[p],6:F2}x");
        Console.WriteLine($"EnumerateMarked(Mark0) on the ALLOC array (free mark, yields nothing): {freeMarkUs:F1} us per call");
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

    private static double[] XArrayRound(SlabAllocator alloc, ulong[] insertion, ulong[] random, ulong expectedSum, ulong expectedMarked, int marked, out double freeMarkUs)
    {
        using var xa = new XArray.XArray(XaFlags.None, alloc);
        using var xaAlloc = new XArray.XArray(XaFlags.Alloc, alloc);
        var ns = new long[Phases.Length];
        long t = ThreadCpuClock.NowNanoseconds();
        foreach (ulong k in insertion) xa.StoreValue(k, k);
        t = Lap(ns, 0, t);
        foreach (ulong k in random) xa.StoreValue(k, k + 1);
        t = Lap(ns, 1, t);
        ulong sum = 0;
        using (xa.ReadLock())
        {
            var xas = new XaState(xa, 0);
            for (var e = xas.Find(); !e.IsNull; e = xas.Find()) sum += e.Value;
        }
        t = Lap(ns, 2, t);
        ulong sum2 = 0;
        foreach (var kv in xa) sum2 += kv.Value.Value;
        Lap(ns, 3, t);
        // Untimed: mark the even keys in both arrays, and give the allocating one the same keys.
        foreach (ulong k in insertion) xaAlloc.StoreValue(k, k + 1);
        foreach (ulong k in insertion)
            if (IsMarked(k)) { xa.SetMark(k, XaMark.Mark1); xaAlloc.SetMark(k, XaMark.Mark1); }
        t = ThreadCpuClock.NowNanoseconds();
        ulong sum3 = 0;
        foreach (var kv in xa.EnumerateMarked(XaMark.Mark1)) sum3 += kv.Value.Value;
        t = Lap(ns, 4, t);
        ulong sum4 = 0;
        foreach (var kv in xaAlloc.EnumerateMarked(XaMark.Mark1)) sum4 += kv.Value.Value;
        t = Lap(ns, 5, t);
        int free = 0;
        foreach (var kv in xaAlloc.EnumerateMarked(XaMark.Mark0)) free++;
        long after = ThreadCpuClock.NowNanoseconds();
        freeMarkUs = (after - t) / 1000.0;
        t = after;
        if (free != 0) throw new InvalidOperationException("an entry carries the free mark");
        foreach (ulong k in random) xa.Erase(k);
        Lap(ns, 6, t);
        if (sum != expectedSum || sum2 != expectedSum) throw new InvalidOperationException("XArray iteration missed entries");
        if (sum3 != expectedMarked || sum4 != expectedMarked) throw new InvalidOperationException("XArray marked iteration missed entries");
        if (!xa.IsEmpty) throw new InvalidOperationException("XArray not empty after erasing every key");
        return PerKey(ns, marked);
    }

    private static double[] DictionaryRound(Dictionary<ulong, ulong> d, ulong[] insertion, ulong[] random, ulong expectedSum, ulong expectedMarked, int marked)
    {
        // Written twice (here and SortedRound), not through IDictionary: each peer runs its own code, devirtualised.
        var ns = new long[Phases.Length];
        long t = ThreadCpuClock.NowNanoseconds();
        foreach (ulong k in insertion) d[k] = k;
        t = Lap(ns, 0, t);
        foreach (ulong k in random) d[k] = k + 1;
        t = Lap(ns, 1, t);
        ulong sum = 0;
        foreach (var kv in d) sum += kv.Value;
        t = Lap(ns, 2, t);
        ulong sum2 = 0;
        foreach (var kv in d) sum2 += kv.Value;
        t = Lap(ns, 3, t);
        ulong sum3 = 0;
        foreach (var kv in d) if (IsMarked(kv.Key)) sum3 += kv.Value;
        t = Lap(ns, 4, t);
        ulong sum4 = 0;
        foreach (var kv in d) if (IsMarked(kv.Key)) sum4 += kv.Value;
        t = Lap(ns, 5, t);
        foreach (ulong k in random) d.Remove(k);
        Lap(ns, 6, t);
        if (sum != expectedSum || sum2 != expectedSum || sum3 != expectedMarked || sum4 != expectedMarked) throw new InvalidOperationException("iteration missed entries");
        if (d.Count != 0) throw new InvalidOperationException("not empty after removing every key");
        return PerKey(ns, marked);
    }

    private static double[] SortedRound(SortedDictionary<ulong, ulong> d, ulong[] insertion, ulong[] random, ulong expectedSum, ulong expectedMarked, int marked)
    {
        var ns = new long[Phases.Length];
        long t = ThreadCpuClock.NowNanoseconds();
        foreach (ulong k in insertion) d[k] = k;
        t = Lap(ns, 0, t);
        foreach (ulong k in random) d[k] = k + 1;
        t = Lap(ns, 1, t);
        ulong sum = 0;
        foreach (var kv in d) sum += kv.Value;
        t = Lap(ns, 2, t);
        ulong sum2 = 0;
        foreach (var kv in d) sum2 += kv.Value;
        t = Lap(ns, 3, t);
        ulong sum3 = 0;
        foreach (var kv in d) if (IsMarked(kv.Key)) sum3 += kv.Value;
        t = Lap(ns, 4, t);
        ulong sum4 = 0;
        foreach (var kv in d) if (IsMarked(kv.Key)) sum4 += kv.Value;
        t = Lap(ns, 5, t);
        foreach (ulong k in random) d.Remove(k);
        Lap(ns, 6, t);
        if (sum != expectedSum || sum2 != expectedSum || sum3 != expectedMarked || sum4 != expectedMarked) throw new InvalidOperationException("iteration missed entries");
        if (d.Count != 0) throw new InvalidOperationException("not empty after removing every key");
        return PerKey(ns, marked);
    }

    /// <summary>Charges the CPU time since <paramref name="since"/> to phase <paramref name="phase"/>; returns now.</summary>
    private static long Lap(long[] ns, int phase, long since)
    {
        long now = ThreadCpuClock.NowNanoseconds();
        ns[phase] = now - since;
        return now;
    }

    private static double[] PerKey(long[] ns, int marked)
    {
        var r = new double[ns.Length];
        for (int i = 0; i < r.Length; i++) r[i] = ns[i] / (double)(i is >= FirstMarkedPhase and <= LastMarkedPhase ? marked : N);
        return r;
    }
}
