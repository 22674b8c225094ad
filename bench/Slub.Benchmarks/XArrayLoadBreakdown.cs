using Slub.Benchmarks.Infrastructure;
using Slub.Rcu;
using Slub.XArray;

namespace Slub.Benchmarks;

/// <summary>
/// Where an XArray load's time goes, in thread CPU time: the benchmark loop alone, the epoch enter/exit alone,
/// the walk alone (no read section), and the full <see cref="XArray.XArray.TryGetValue"/>, beside
/// <see cref="Dictionary{TKey,TValue}.TryGetValue"/>; 100 000 dense keys in random and sequential order.
/// Run: <c>dotnet run -c Release --project bench/Slub.Benchmarks -- --xarray-load-breakdown</c>.
/// </summary>
public static unsafe class XArrayLoadBreakdown
{
    private const int N = 100_000, Passes = 20, Rounds = 7;

    public static void Run()
    {
        using var alloc = new SlabAllocator(new SlabOptions { BytesPerNode = 1L << 30, EmulatedNodes = 1, Cpus = 2, SlubDebug = "-" });
        using var xa = new XArray.XArray(XaFlags.None, alloc);
        var d = new Dictionary<ulong, ulong>();
        for (ulong i = 0; i < N; i++) { xa.StoreValue(i, i); d[i] = i; }
        var random = Enumerable.Range(0, N).Select(i => (ulong)i).ToArray();
        new Random(1).Shuffle(random);
        var sequential = Enumerable.Range(0, N).Select(i => (ulong)i).ToArray();
        var rcu = xa.Reclaimer;

        var leaves = new ulong[N / 64 + 1];
        var xs = new XaState(xa, 0);
        for (int i = 0; i < leaves.Length; i++) { xs.Set((ulong)i * 64); using (xa.Lock()) xs.Load(); leaves[i] = (ulong)xs.NodeAddress; }
        var flat = new ulong[N];
        for (int i = 0; i < N; i++) flat[i] = (ulong)i * 2 + 1;
        var cases = new (string Name, Func<ulong[], ulong> Body)[]
        {
            ("loop only (sum of keys)", keys => { ulong s = 0; foreach (ulong k in keys) s += k; return s; }),
            ("epoch enter+exit only", keys => { ulong s = 0; foreach (ulong k in keys) { var r = rcu.EnterReadFast(); s += k; EpochReclaimer.ExitReadFast(r); } return s; }),
            ("walk only (no section)", keys => { ulong s = 0; foreach (ulong k in keys) { ulong e = xa.LoadRawForProbe(k); if ((e & 1) != 0) s += e >> 1; } return s; }),
            ("XArray.TryGetValue", keys => { ulong s = 0; foreach (ulong k in keys) if (xa.TryGetValue(k, out ulong v)) s += v; return s; }),
            ("XaReader.TryGetValue", keys => { ulong s = 0; using var r = xa.BeginRead(); foreach (ulong k in keys) if (r.TryGetValue(k, out ulong v)) s += v; return s; }),
            ("EXP V1 raw 3 levels", keys => { ulong s = 0; foreach (ulong k in keys) { ulong e = Volatile.Read(ref xa._headWalk) & 0x00FF_FFFF_FFFF_FFFF; e = *(ulong*)(e + 22 + (((k >> 12) & 63) << 3)); e = *(ulong*)(e + 22 + (((k >> 6) & 63) << 3)); e = *(ulong*)(e + 22 + ((k & 63) << 3)); if ((e & 1) != 0) s += e >> 1; } return s; }),
            ("EXP V2 checks, no call", keys => { ulong s = 0; foreach (ulong k in keys) s += V2(xa, k); return s; }),
            ("EXP V3 checks + cold call", keys => { ulong s = 0; foreach (ulong k in keys) s += V3(xa, k); return s; }),
            ("EXP leaf table + slot", keys => { ulong s = 0; foreach (ulong k in keys) { ulong e = *(ulong*)(leaves[k >> 6] + 24 + ((k & 63) << 3)); if ((e & 1) != 0) s += e >> 1; } return s; }),
            ("EXP flat ulong[]", keys => { ulong s = 0; foreach (ulong k in keys) { ulong e = flat[k]; if ((e & 1) != 0) s += e >> 1; } return s; }),
            ("Dictionary.TryGetValue", keys => { ulong s = 0; foreach (ulong k in keys) if (d.TryGetValue(k, out ulong v)) s += v; return s; }),
        };
        var best = new double[cases.Length, 2];
        for (int c = 0; c < cases.Length; c++) { best[c, 0] = best[c, 1] = double.MaxValue; }
        for (int round = 0; round < Rounds; round++)
            for (int c = 0; c < cases.Length; c++)
            {
                best[c, 0] = Math.Min(best[c, 0], PerOp(cases[c].Body, random));
                best[c, 1] = Math.Min(best[c, 1], PerOp(cases[c].Body, sequential));
            }
        Console.WriteLine($"ns per lookup, thread CPU time, best of {Rounds} rounds × {Passes} passes × {N} dense keys");
        Console.WriteLine($"{"case",-28} {"random",8} {"sequential",11}");
        for (int c = 0; c < cases.Length; c++)
            Console.WriteLine($"{cases[c].Name,-28} {best[c, 0],8:F2} {best[c, 1],11:F2}");
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static ulong Unrolled3(XArray.XArray xa, ulong k)
    {
        ulong e = xa._headWalk & 0x00FF_FFFF_FFFF_FFFF;
        e = *(ulong*)(e + 22 + (((k >> 12) & 63) << 3));
        if ((e & 3) != 2) goto done;
        if (e <= 4096) goto slow;
        e = *(ulong*)(e + 22 + (((k >> 6) & 63) << 3));
        if ((e & 3) != 2) goto done;
        if (e <= 4096) goto slow;
        e = *(ulong*)(e + 22 + ((k & 63) << 3));
        if ((e & 3) != 2) goto done;
    slow:
        return xa.Walk(k, out _, out _) >> 1;
    done:
        return (e & 1) != 0 ? e >> 1 : 0;
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static bool IsNodeFast(ulong e) => ((e - 4098) & 0x8000_0000_0000_0003) == 0;

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static ulong V2(XArray.XArray xa, ulong k)
    {
        ulong e = Volatile.Read(ref xa._headWalk) & 0x00FF_FFFF_FFFF_FFFF;
        e = *(ulong*)(e + 22 + (((k >> 12) & 63) << 3));
        if (!IsNodeFast(e)) goto off;
        e = *(ulong*)(e + 22 + (((k >> 6) & 63) << 3));
        if (!IsNodeFast(e)) goto off;
        e = *(ulong*)(e + 22 + ((k & 63) << 3));
    off:
        return (e & 1) != 0 ? e >> 1 : 0;
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static ulong V3(XArray.XArray xa, ulong k)
    {
        ulong e = Volatile.Read(ref xa._headWalk) & 0x00FF_FFFF_FFFF_FFFF;
        e = *(ulong*)(e + 22 + (((k >> 12) & 63) << 3));
        if (!IsNodeFast(e)) goto off;
        e = *(ulong*)(e + 22 + (((k >> 6) & 63) << 3));
        if (!IsNodeFast(e)) goto off;
        e = *(ulong*)(e + 22 + ((k & 63) << 3));
    off:
        if (((e - 2) & 3) == 0) e = Cold(xa, k);
        return (e & 1) != 0 ? e >> 1 : 0;
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static ulong Cold(XArray.XArray xa, ulong k) => xa.Walk(k, out _, out _);

    private static double PerOp(Func<ulong[], ulong> body, ulong[] keys)
    {
        long t = ThreadCpuClock.NowNanoseconds();
        ulong s = 0;
        for (int p = 0; p < Passes; p++) s += body(keys);
        GC.KeepAlive(s);
        return (ThreadCpuClock.NowNanoseconds() - t) / ((double)Passes * N);
    }
}
