using System.Diagnostics;
using Slub.XArray;

namespace Slub.Benchmarks;

/// <summary>
/// Load cost in process CPU time rather than wall time (BenchmarkDotNet measures wall time, which a loaded
/// shared machine inflates several-fold): 100 000 dense keys, 20 passes per measurement, 8 rounds, XArray
/// against <see cref="Dictionary{TKey,TValue}"/>, random and sequential order. Run with
/// <c>dotnet run -c Release --project bench/Slub.Benchmarks -- --xarray-cpu-time</c>.
/// </summary>
public static class XArrayLoadProbe
{
    public static void Run()
    {
        using var alloc = new SlabAllocator(new SlabOptions { BytesPerNode = 1L << 30, EmulatedNodes = 1, Cpus = 2, SlubDebug = "-" });
        const int n = 100_000, passes = 20;
        using var xa = new XArray.XArray(XaFlags.None, alloc);
        var d = new Dictionary<ulong, ulong>();
        for (ulong i = 0; i < n; i++) { xa.StoreValue(i, i); d[i] = i; }
        var random = Enumerable.Range(0, n).Select(i => (ulong)i).ToArray();
        new Random(1).Shuffle(random);
        var sequential = Enumerable.Range(0, n).Select(i => (ulong)i).ToArray();
        var proc = Process.GetCurrentProcess();
        TimeSpan Cpu() { proc.Refresh(); return proc.TotalProcessorTime; }
        double PerOp(Func<ulong[], ulong> body, ulong[] keys)
        {
            var c0 = Cpu();
            ulong s = 0;
            for (int p = 0; p < passes; p++) s += body(keys);
            GC.KeepAlive(s);
            return (Cpu() - c0).TotalNanoseconds / ((double)passes * n);
        }
        ulong Xa(ulong[] keys) { ulong s = 0; foreach (ulong k in keys) if (xa.TryGetValue(k, out ulong v)) s += v; return s; }
        ulong Dict(ulong[] keys) { ulong s = 0; foreach (ulong k in keys) if (d.TryGetValue(k, out ulong v)) s += v; return s; }
        Console.WriteLine("ns/lookup (process CPU time)   random: XArray  Dictionary   sequential: XArray  Dictionary");
        for (int round = 0; round < 8; round++)
            Console.WriteLine($"round {round}                            {PerOp(Xa, random),6:F1}  {PerOp(Dict, random),10:F1}               {PerOp(Xa, sequential),6:F1}  {PerOp(Dict, sequential),10:F1}");
    }
}
