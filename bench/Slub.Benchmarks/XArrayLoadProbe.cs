using Slub.XArray;

namespace Slub.Benchmarks;

/// <summary>
/// XArray load cost in thread CPU time (BenchmarkDotNet measures wall time, which a loaded shared machine
/// inflates several-fold): 100 000 dense keys in random and in sequential order, best of 9 rounds of 20 passes,
/// <see cref="XArray.XArray.TryGetValue"/>, <see cref="XaReader.TryGetValue"/> (one read section per pass of
/// 100 000 keys, and one per 256 keys), <see cref="XaReader.LoadMany"/> over batches of 256 keys (with and without
/// the pass summing the results), against <see cref="Dictionary{TKey,TValue}.TryGetValue"/> in the same run, one key
/// at a time and with the same batching.
/// Run with <c>dotnet run -c Release --project bench/Slub.Benchmarks -- --xarray-cpu-time [--keys N]</c> (default 100 000).
/// </summary>
public static class XArrayLoadProbe
{
    private const int DefaultKeys = 100_000, Rounds = 9;

    /// <summary>Runs the probe over <paramref name="n"/> dense keys (passes scaled so every round loads about 2 million keys).</summary>
    public static void Run(int n = DefaultKeys)
    {
        if (n < 256) throw new ArgumentOutOfRangeException(nameof(n), n, "--xarray-cpu-time: --keys must be at least 256");
        int Passes = Math.Max(1, 2_000_000 / n), N = n;
        using var set = new DenseKeySet(N);
        var (xa, d, random, sequential) = (set.Xa, set.Dictionary, set.Random, set.Sequential);

        // Every case is a generic method instantiated once per key order, so each (case, order) pair gets its own
        // machine code and its own dynamic-PGO profile: sharing one body between orders made block layout, hence
        // the timings, depend on which order the profile happened to see more of.
        var cases = new (string Name, Func<ulong[], ulong> Random, Func<ulong[], ulong> Sequential)[]
        {
            ("XArray.TryGetValue", k => XaLoads<RandomOrder>(xa, k), k => XaLoads<SequentialOrder>(xa, k)),
            ("XaReader.TryGetValue, 1 section/pass", k => ReaderLoadsOneSection<RandomOrder>(xa, k), k => ReaderLoadsOneSection<SequentialOrder>(xa, k)),
            ("XaReader.TryGetValue, 1 section/256", k => ReaderLoads<RandomOrder>(xa, k, 256), k => ReaderLoads<SequentialOrder>(xa, k, 256)),
            ("XaReader.LoadMany, 1 section/pass", k => ReaderLoadMany<RandomOrder>(xa, k), k => ReaderLoadMany<SequentialOrder>(xa, k)),
            ("XaReader.LoadMany only, no sum pass", k => ReaderLoadManyNoSum<RandomOrder>(xa, k), k => ReaderLoadManyNoSum<SequentialOrder>(xa, k)),
            ("Dictionary, same 256-key batches", k => DictBatches<RandomOrder>(d, k), k => DictBatches<SequentialOrder>(d, k)),
            ("Dictionary.TryGetValue", k => DictLoads<RandomOrder>(d, k), k => DictLoads<SequentialOrder>(d, k)),
        };
        var best = set.BestNsPerKey(cases.Select(c => (c.Random, c.Sequential)).ToArray(), Rounds, Passes);
        int dict = cases.Length - 1, dictBatch = cases.Length - 2;
        Console.WriteLine($"ns per lookup, thread CPU time, best of {Rounds} rounds x {Passes} passes x {N} dense keys; speed-up = Dictionary / this (per key; in batches)");
        Console.WriteLine($"{"case",-38} {"random",8} {"speed-up",16} {"sequential",11} {"speed-up",16}");
        for (int c = 0; c < cases.Length; c++)
            Console.WriteLine($"{cases[c].Name,-38} {best[c, 0],8:F2} {best[dict, 0] / best[c, 0],7:F2}x {best[dictBatch, 0] / best[c, 0],7:F2}x"
                + $" {best[c, 1],11:F2} {best[dict, 1] / best[c, 1],7:F2}x {best[dictBatch, 1] / best[c, 1],7:F2}x");
    }

    private struct RandomOrder;
    private struct SequentialOrder;

    private static ulong XaLoads<TOrder>(XArray.XArray xa, ulong[] keys) where TOrder : struct
    {
        ulong s = 0;
        foreach (ulong k in keys) if (xa.TryGetValue(k, out ulong v)) s += v;
        return s;
    }

    private static ulong ReaderLoadsOneSection<TOrder>(XArray.XArray xa, ulong[] keys) where TOrder : struct
    {
        ulong s = 0;
        using var r = xa.BeginRead();
        foreach (ulong k in keys) if (r.TryGetValue(k, out ulong v)) s += v;
        return s;
    }

    private static ulong ReaderLoads<TOrder>(XArray.XArray xa, ulong[] keys, int perSection) where TOrder : struct
    {
        ulong s = 0;
        for (int i = 0; i < keys.Length; i += perSection)
        {
            using var r = xa.BeginRead();
            foreach (ulong k in keys.AsSpan(i, Math.Min(perSection, keys.Length - i))) if (r.TryGetValue(k, out ulong v)) s += v;
        }
        return s;
    }

    private const int Batch = 256;
    [ThreadStatic] private static ulong[]? t_results;

    /// <summary><see cref="XaReader.LoadMany"/> over batches of <see cref="Batch"/> keys, then a pass summing the values.</summary>
    private static ulong ReaderLoadMany<TOrder>(XArray.XArray xa, ulong[] keys) where TOrder : struct
    {
        var results = t_results ??= new ulong[Batch];
        Span<XaEntry> entries = System.Runtime.InteropServices.MemoryMarshal.Cast<ulong, XaEntry>(results.AsSpan());
        ulong s = 0;
        using var r = xa.BeginRead();
        for (int i = 0; i < keys.Length; i += Batch)
        {
            var batch = keys.AsSpan(i, Math.Min(Batch, keys.Length - i));
            r.LoadMany(batch, entries);
            foreach (var e in entries[..batch.Length]) if (e.IsValue) s += e.Raw >> 1;
        }
        return s;
    }

    /// <summary>Breakdown: the <see cref="XaReader.LoadMany"/> calls of <see cref="ReaderLoadMany{TOrder}"/> without the summing pass.</summary>
    private static ulong ReaderLoadManyNoSum<TOrder>(XArray.XArray xa, ulong[] keys) where TOrder : struct
    {
        var results = t_results ??= new ulong[Batch];
        Span<XaEntry> entries = System.Runtime.InteropServices.MemoryMarshal.Cast<ulong, XaEntry>(results.AsSpan());
        ulong s = 0;
        using var r = xa.BeginRead();
        for (int i = 0; i < keys.Length; i += Batch)
        {
            var batch = keys.AsSpan(i, Math.Min(Batch, keys.Length - i));
            r.LoadMany(batch, entries);
            s += entries[0].Raw;
        }
        return s;
    }

    /// <summary>Dictionary with the same batching: a batch of lookups stored as entries, then the same summing pass.</summary>
    private static ulong DictBatches<TOrder>(Dictionary<ulong, ulong> d, ulong[] keys) where TOrder : struct
    {
        var results = t_results ??= new ulong[Batch];
        ulong s = 0;
        for (int i = 0; i < keys.Length; i += Batch)
        {
            var batch = keys.AsSpan(i, Math.Min(Batch, keys.Length - i));
            for (int j = 0; j < batch.Length; j++) results[j] = d.TryGetValue(batch[j], out ulong v) ? (v << 1) | 1 : 0;
            foreach (ulong e in results.AsSpan(0, batch.Length)) if ((e & 1) != 0) s += e >> 1;
        }
        return s;
    }

    private static ulong DictLoads<TOrder>(Dictionary<ulong, ulong> d, ulong[] keys) where TOrder : struct
    {
        ulong s = 0;
        foreach (ulong k in keys) if (d.TryGetValue(k, out ulong v)) s += v;
        return s;
    }
}
