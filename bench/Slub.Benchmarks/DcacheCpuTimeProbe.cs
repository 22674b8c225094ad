using Slub.Benchmarks.Infrastructure;

namespace Slub.Benchmarks;

/// <summary>
/// <c>-- --dcache-cpu-time</c>: the <see cref="DcacheBenchmarks"/> cached lookups (the same tree and the same
/// 1 690 paths, both caches warm) timed in thread CPU time: <see cref="Slub.Dcache.DentryCache.LookupPath"/> hits
/// (relative paths, and the same paths absolute under the root) beside the <see cref="Dictionary{TKey,TValue}"/>
/// path cache in the same rounds. Warm-up passes and a pause for the tier-1 rejit first, then the best of
/// <see cref="Rounds"/> rounds of <see cref="Passes"/> passes, the cases interleaved within each round; then
/// each case on two threads at once (the slower thread's CPU time per path, best round), which shows what
/// the shared tree lock and counters cost when both cores look up; then the relative lookups on one thread while
/// another creates and kills dentries in a directory none of the paths goes through
/// (<see cref="DcacheBenchmarks.ChurnRound"/>), with the share of walks whose lock-free RCU-walk fell back to the
/// locked walk (<see cref="Slub.Dcache.DcacheStatistics.RcuWalkFallbacks"/>).
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
            Console.WriteLine($"two threads at once, each its own CPU time, best of {Rounds} rounds (the tree lock and counters shared):");
            for (int c = 0; c < cases.Length; c++)
                Console.WriteLine($"{cases[c].Name + " x2",-36} {TwoThreads(cases[c].Pass),8:F1} ns");
            var churn = WithChurn(b, b.DentryCacheLookup);
            Console.WriteLine($"one reader while another thread creates and kills dentries elsewhere, best and mean of {Rounds} rounds (reader's CPU time; fallbacks over all rounds):");
            Console.WriteLine($"{cases[0].Name + " + churn",-36} {churn.Ns,8:F1} ns (mean {churn.MeanNs:F1})   fell back {churn.Fallbacks} of {churn.Walks} walks ({100.0 * churn.Fallbacks / churn.Walks:F3} %), " +
                $"rounds {churn.MinPct:F3}-{churn.MaxPct:F3} %; {churn.Unhashes} dentries unhashed meanwhile ({1000.0 * churn.Unhashes / churn.Walks:F1} per 1000 walks)");
        }
        finally { b.Cleanup(); }
    }

    /// <summary>
    /// A reader thread runs <paramref name="pass"/> for a round while a churner thread repeats
    /// <see cref="DcacheBenchmarks.ChurnRound"/> until the reader is done: the reader's best and mean ns per path, the
    /// RCU-walk fallbacks over all rounds (only the reader walks paths), and the unhashes the churner did meanwhile.
    /// </summary>
    private static (double Ns, double MeanNs, long Fallbacks, long Walks, double MinPct, double MaxPct, long Unhashes) WithChurn(DcacheBenchmarks b, Func<int> pass)
    {
        double best = double.MaxValue, sum = 0, minPct = double.MaxValue, maxPct = 0;
        long fallbacks = 0, unhashes = 0, walks = 0;
        for (int r = 0; r < Rounds; r++)
        {
            int stop = 0;
            long unhashed = 0;
            using var started = new ManualResetEventSlim();
            var churner = new Thread(() =>
            {
                started.Set();
                long n = 0;
                while (Volatile.Read(ref stop) == 0) n += b.ChurnRound();
                unhashed = n;
            });
            long fb = 0;
            double ns = 0;
            var reader = new Thread(() =>
            {
                started.Wait();
                long fb0 = b.Dcache.GetStatistics().RcuWalkFallbacks;
                long t0 = ThreadCpuClock.NowNanoseconds();
                for (int i = 0; i < Passes; i++) pass();
                ns = (double)(ThreadCpuClock.NowNanoseconds() - t0) / (Passes * DcacheBenchmarks.PathCount);
                fb = b.Dcache.GetStatistics().RcuWalkFallbacks - fb0;
            });
            churner.Start();
            reader.Start();
            reader.Join();
            Volatile.Write(ref stop, 1);
            churner.Join();
            best = Math.Min(best, ns);
            sum += ns;
            double pct = 100.0 * fb / (Passes * DcacheBenchmarks.PathCount);
            minPct = Math.Min(minPct, pct);
            maxPct = Math.Max(maxPct, pct);
            fallbacks += fb;
            walks += Passes * DcacheBenchmarks.PathCount;
            unhashes += unhashed;
        }
        return (best, sum / Rounds, fallbacks, walks, minPct, maxPct, unhashes);
    }

    /// <summary>Both threads run <paramref name="pass"/> for a round at the same time; the slower thread's ns per path, best round.</summary>
    private static double TwoThreads(Func<int> pass)
    {
        double best = double.MaxValue;
        using var start = new Barrier(2);
        var ns = new double[2];
        for (int r = 0; r < Rounds; r++)
        {
            var threads = new Thread[2];
            for (int k = 0; k < 2; k++)
            {
                int id = k;
                threads[k] = new Thread(() =>
                {
                    start.SignalAndWait();
                    long t0 = ThreadCpuClock.NowNanoseconds();
                    for (int i = 0; i < Passes; i++) pass();
                    ns[id] = (double)(ThreadCpuClock.NowNanoseconds() - t0) / (Passes * DcacheBenchmarks.PathCount);
                });
                threads[k].Start();
            }
            foreach (var t in threads) t.Join();
            best = Math.Min(best, Math.Max(ns[0], ns[1]));
        }
        return best;
    }
}
