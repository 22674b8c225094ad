using Slub.Rcu;
using Slub.XArray;

namespace Slub.Benchmarks;

/// <summary>
/// Where an XArray load's time goes, in thread CPU time: the benchmark loop alone, the epoch enter/exit alone,
/// the walk alone (no read section), a walk with no checks at all (a floor: three dependent loads for a
/// three-level tree), the full <see cref="XArray.XArray.TryGetValue"/> and <see cref="XaReader.TryGetValue"/>,
/// beside <see cref="Dictionary{TKey,TValue}.TryGetValue"/>; 100 000 dense keys in random and sequential order.
/// Run: <c>dotnet run -c Release --project bench/Slub.Benchmarks -- --xarray-load-breakdown</c>.
/// </summary>
/// <remarks>Bodies are shared between the two orders (unlike <see cref="XArrayLoadProbe"/>), so dynamic PGO sees a
/// mix; use it to compare rows of one run, not as the headline figures.</remarks>
public static unsafe class XArrayLoadBreakdown
{
    private const int N = 100_000, Passes = 20, Rounds = 7;

    public static void Run()
    {
        using var set = new DenseKeySet(N);
        var (xa, d, random, sequential) = (set.Xa, set.Dictionary, set.Random, set.Sequential);
        var rcu = xa.Reclaimer;
        if (xa.Validate().Height != 3) throw new InvalidOperationException("the floor row assumes a three-level tree");

        var cases = new (string Name, Func<ulong[], ulong> Body)[]
        {
            ("loop only (sum of keys)", keys => { ulong s = 0; foreach (ulong k in keys) s += k; return s; }),
            ("epoch enter+exit only", keys => { ulong s = 0; foreach (ulong k in keys) { var r = rcu.EnterReadFast(); s += k; EpochReclaimer.ExitReadFast(r); } return s; }),
            ("walk only (no section)", keys => { ulong s = 0; foreach (ulong k in keys) { ulong e = xa.LoadInSection(k); if ((e & 1) != 0) s += e >> 1; } return s; }),
            ("floor: 3 loads, no checks", keys =>
            {
                ulong s = 0;
                foreach (ulong k in keys)
                {
                    ulong e = Volatile.Read(ref xa._headWalk) & XArray.XArray.HeadWalkAddressMask;
                    e = XaNode.SlotOf(e, k, 12);
                    e = XaNode.SlotOf(e, k, 6);
                    e = XaNode.SlotOf(e, k, 0);
                    if ((e & 1) != 0) s += e >> 1;
                }
                return s;
            }),
            ("XArray.TryGetValue", keys => { ulong s = 0; foreach (ulong k in keys) if (xa.TryGetValue(k, out ulong v)) s += v; return s; }),
            ("XaReader.TryGetValue", keys => { ulong s = 0; using var r = xa.BeginRead(); foreach (ulong k in keys) if (r.TryGetValue(k, out ulong v)) s += v; return s; }),
            ("Dictionary.TryGetValue", keys => { ulong s = 0; foreach (ulong k in keys) if (d.TryGetValue(k, out ulong v)) s += v; return s; }),
        };
        var best = set.BestNsPerKey(cases.Select(c => (c.Body, c.Body)).ToArray(), Rounds, Passes);
        Console.WriteLine($"ns per lookup, thread CPU time, best of {Rounds} rounds x {Passes} passes x {N} dense keys");
        Console.WriteLine($"{"case",-28} {"random",8} {"sequential",11}");
        for (int c = 0; c < cases.Length; c++)
            Console.WriteLine($"{cases[c].Name,-28} {best[c, 0],8:F2} {best[c, 1],11:F2}");
    }
}
