using Slub.Benchmarks.Infrastructure;
using Slub.XArray;

namespace Slub.Benchmarks;

/// <summary>
/// XArray store, overwrite and erase cost in thread CPU time against <see cref="Dictionary{TKey,TValue}"/> in the
/// same run: 100 000 dense keys stored in key order into a new container, overwritten in random order, then
/// erased in random order (empty → N → empty); best of 9 rounds, the two containers alternating. Node (and leaf
/// directory) growth is inside the store phase, retiring nodes inside the erase phase.
/// Run with <c>dotnet run -c Release --project bench/Slub.Benchmarks -- --xarray-store-cpu-time</c>.
/// </summary>
public static class XArrayStoreProbe
{
    private const int N = 100_000, Rounds = 9;

    public static void Run()
    {
        using var alloc = new SlabAllocator(new SlabOptions { BytesPerNode = 1L << 30, EmulatedNodes = 1, Cpus = 2, SlubDebug = "-" });
        ulong[] sequential = Enumerable.Range(0, N).Select(i => (ulong)i).ToArray();
        ulong[] random = (ulong[])sequential.Clone();
        new Random(1).Shuffle(random);
        var xa = new double[3];
        var dict = new double[3];
        Array.Fill(xa, double.MaxValue);
        Array.Fill(dict, double.MaxValue);
        for (int round = 0; round < Rounds; round++)
        {
            Min(xa, XArrayRound(alloc, sequential, random));
            Min(dict, DictionaryRound(sequential, random));
        }
        Console.WriteLine($"ns per key, thread CPU time, best of {Rounds} rounds x {N} dense keys; ratio = this / Dictionary (below 1 is faster)");
        Console.WriteLine($"{"phase",-36} {"XArray",8} {"Dictionary",11} {"ratio",7}");
        string[] names = ["store in key order (new container)", "overwrite in random order", "erase in random order"];
        for (int p = 0; p < 3; p++) Console.WriteLine($"{names[p],-36} {xa[p],8:F2} {dict[p],11:F2} {xa[p] / dict[p],6:F2}x");
    }

    private static void Min(double[] best, double[] round)
    {
        for (int i = 0; i < best.Length; i++) best[i] = Math.Min(best[i], round[i]);
    }

    private static double[] XArrayRound(SlabAllocator alloc, ulong[] sequential, ulong[] random)
    {
        using var xa = new XArray.XArray(XaFlags.None, alloc);
        long t0 = ThreadCpuClock.NowNanoseconds();
        foreach (ulong k in sequential) xa.StoreValue(k, k);
        long t1 = ThreadCpuClock.NowNanoseconds();
        foreach (ulong k in random) xa.StoreValue(k, k + 1);
        long t2 = ThreadCpuClock.NowNanoseconds();
        foreach (ulong k in random) xa.Erase(k);
        long t3 = ThreadCpuClock.NowNanoseconds();
        if (!xa.IsEmpty) throw new InvalidOperationException("XArray not empty after erasing every key");
        return [(t1 - t0) / (double)N, (t2 - t1) / (double)N, (t3 - t2) / (double)N];
    }

    private static double[] DictionaryRound(ulong[] sequential, ulong[] random)
    {
        var d = new Dictionary<ulong, ulong>();
        long t0 = ThreadCpuClock.NowNanoseconds();
        foreach (ulong k in sequential) d[k] = k;
        long t1 = ThreadCpuClock.NowNanoseconds();
        foreach (ulong k in random) d[k] = k + 1;
        long t2 = ThreadCpuClock.NowNanoseconds();
        foreach (ulong k in random) d.Remove(k);
        long t3 = ThreadCpuClock.NowNanoseconds();
        if (d.Count != 0) throw new InvalidOperationException("Dictionary not empty after removing every key");
        return [(t1 - t0) / (double)N, (t2 - t1) / (double)N, (t3 - t2) / (double)N];
    }
}
