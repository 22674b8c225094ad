using Slub.Benchmarks.Infrastructure;
using Slub.XArray;

namespace Slub.Benchmarks;

/// <summary>
/// The data of the XArray load probes: keys 0..n-1 stored as value entries in an <see cref="XArray.XArray"/>
/// and in a <see cref="Dictionary{TKey,TValue}"/>, and the keys in a fixed random order and in key order.
/// </summary>
public sealed class DenseKeySet : IDisposable
{
    private readonly SlabAllocator _alloc;
    public XArray.XArray Xa { get; }
    public Dictionary<ulong, ulong> Dictionary { get; } = new();
    public ulong[] Random { get; }
    public ulong[] Sequential { get; }

    public DenseKeySet(int n)
    {
        _alloc = new SlabAllocator(new SlabOptions { BytesPerNode = 1L << 30, EmulatedNodes = 1, Cpus = 2, SlubDebug = "-" });
        Xa = new XArray.XArray(XaFlags.None, _alloc);
        for (ulong i = 0; i < (ulong)n; i++) { Xa.StoreValue(i, i); Dictionary[i] = i; }
        Sequential = Enumerable.Range(0, n).Select(i => (ulong)i).ToArray();
        Random = (ulong[])Sequential.Clone();
        new Random(1).Shuffle(Random);
    }

    /// <summary>
    /// Thread CPU ns per key of each body over the random [c, 0] and the sequential [c, 1] keys: the best of
    /// <paramref name="rounds"/> rounds, each timing <paramref name="passes"/> passes; rounds interleave the cases.
    /// </summary>
    public double[,] BestNsPerKey((Func<ulong[], ulong> Random, Func<ulong[], ulong> Sequential)[] bodies, int rounds, int passes)
    {
        var best = new double[bodies.Length, 2];
        for (int c = 0; c < bodies.Length; c++) best[c, 0] = best[c, 1] = double.MaxValue;
        // Tier every body up before timing: at 1 000 000 keys the rounds call each body only 18 times, so without
        // this the timed code is an on-stack-replacement variant, whose quality varied from process to process
        // (bimodal results). A method with loops goes tier 0 → instrumented tier → tier 1, 30 calls per step
        // once call counting starts, each step compiled in the background after a delay: four rounds of 40
        // calls and a pause reach tier 1 (checked with DOTNET_JitDisasm; two rounds left some bodies instrumented).
        ulong[] few = Random.AsSpan(0, Math.Min(Random.Length, 1024)).ToArray(), fewSeq = Sequential.AsSpan(0, few.Length).ToArray();
        for (int rep = 0; rep < 4; rep++)
        {
            for (int i = 0; i < 40; i++)
                foreach (var (r, q) in bodies) { r(few); q(fewSeq); }
            Thread.Sleep(300);   // the tier-1 compilations run on a background thread after a short delay
        }
        for (int round = 0; round < rounds; round++)
            for (int c = 0; c < bodies.Length; c++)
            {
                best[c, 0] = Math.Min(best[c, 0], NsPerKey(bodies[c].Random, Random, passes));
                best[c, 1] = Math.Min(best[c, 1], NsPerKey(bodies[c].Sequential, Sequential, passes));
            }
        return best;
    }

    private static double NsPerKey(Func<ulong[], ulong> body, ulong[] keys, int passes)
    {
        long t = ThreadCpuClock.NowNanoseconds();
        ulong s = 0;
        for (int p = 0; p < passes; p++) s += body(keys);
        GC.KeepAlive(s);
        return (ThreadCpuClock.NowNanoseconds() - t) / ((double)passes * keys.Length);
    }

    public void Dispose()
    {
        Xa.Dispose();
        _alloc.Dispose();
    }
}
