using Slub.Benchmarks.Infrastructure;

namespace Slub.Benchmarks;

/// <summary>
/// <c>-- --dcache-cpu-time</c>: the <see cref="DcacheBenchmarks"/> cached lookups (the same tree and the same
/// 1 690 paths, both caches warm) timed in thread CPU time: <see cref="Slub.Dcache.DentryCache.LookupPath"/> hits
/// (relative paths, and the same paths absolute under the root) beside the <see cref="Dictionary{TKey,TValue}"/>
/// path cache in the same rounds. Warm-up passes and a pause for the tier-1 rejit first, then the best of
/// <see cref="Rounds"/> rounds of <see cref="Passes"/> passes, the cases interleaved within each round.
/// </summary>
public static class DcacheCpuTimeProbe
{
    private const int Rounds = 15, Passes = 40, WarmupPasses = 300;

    public static void Run()
    {
        var b = new DcacheBenchmarks();
        b.Setup();
        try
        {
            var cases = new (string Name, Func<int> Pass)[]
            {
                ("DentryCache.LookupPath (relative)", b.DentryCacheLookup),
                ("DentryCache.LookupPath (absolute)", b.DentryCacheLookupAbsolute),
                ("Dictionary<string, InodeKind>", b.DictionaryPathCache),
            };
            // Warm-up: enough calls for tiered compilation and OSR to finish, then a pause for the background rejit.
            for (int w = 0; w < 2; w++)
            {
                foreach (var c in cases) for (int i = 0; i < WarmupPasses; i++) c.Pass();
                Thread.Sleep(500);
            }
            var best = new double[cases.Length];
            Array.Fill(best, double.MaxValue);
            int sink = 0;
            for (int r = 0; r < Rounds; r++)
                for (int c = 0; c < cases.Length; c++)
                {
                    long t0 = ThreadCpuClock.NowNanoseconds();
                    for (int i = 0; i < Passes; i++) sink += cases[c].Pass();
                    long t = ThreadCpuClock.NowNanoseconds() - t0;
                    best[c] = Math.Min(best[c], (double)t / (Passes * DcacheBenchmarks.PathCount));
                }
            Console.WriteLine($"ns per path (cached hit, positive and negative), thread CPU time, best of {Rounds} rounds x {Passes} passes x {DcacheBenchmarks.PathCount} paths (sink {sink})");
            for (int c = 0; c < cases.Length; c++)
                Console.WriteLine($"{cases[c].Name,-36} {best[c],8:F1} ns   {best[c] / best[^1],6:F2}x Dictionary");
        }
        finally { b.Cleanup(); }
    }
}
