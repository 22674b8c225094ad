using System.Globalization;
using Slub.Benchmarks.Infrastructure;

namespace Slub.Benchmarks.Allocators;

/// <summary>
/// The single-thread allocator tables again, in thread CPU time (<c>-- --alloc-cpu-time</c>): same scenarios
/// (<see cref="AllocScenarios"/>), same allocators, best of several rounds.
/// </summary>
/// <remarks>
/// On this shared 2-core machine the load average reached 30–40 while the BenchmarkDotNet tables ran, so
/// their wall-clock means include time the thread spent descheduled. CPU time leaves that out (cache damage
/// from the neighbours stays in). The remote-free table has two threads and is not repeated here. Managed
/// <c>new</c>'s gen0 collections run on the allocating thread under workstation GC, so they are included.
/// </remarks>
public static class AllocatorCpuTimeProbe
{
    private const int ObjectsPerRound = 2_000_000;

    public static void Run(int rounds = 5)
    {
        using var slab = KmemCacheAllocator.CreateAllocator();
        var kmem = KmemCacheAllocator.Create(slab);
        var glibc = default(GlibcAllocator);
        var managed = new ManagedNewAllocator();
        var pool = default(ArrayPoolAllocator);
        var mi = default(MimallocAllocator);
        var tc = default(TcmallocAllocator);
        bool haveMi = NativeLibraries.IsInstalled(NativeLibraries.Mimalloc);
        bool haveJe = NativeLibraries.IsInstalled(NativeLibraries.Jemalloc);
        bool haveTc = NativeLibraries.IsInstalled(NativeLibraries.Tcmalloc);
        var je = haveJe ? JemallocAllocator.Load() : default;

        string[] scenarios = ["pair", "1000 then 1000", "bulk 16", "bulk 256"];
        var rows = new List<(string Name, double[] Ns)>
        {
            ("KmemCache", Measure<KmemCacheAllocator, nint>(ref kmem, rounds)),
            ("NativeMemory (glibc)", Measure<GlibcAllocator, nint>(ref glibc, rounds)),
        };
        if (haveMi) rows.Add(("mimalloc", Measure<MimallocAllocator, nint>(ref mi, rounds)));
        if (haveJe) rows.Add(("jemalloc", Measure<JemallocAllocator, nint>(ref je, rounds)));
        if (haveTc) rows.Add(("tcmalloc", Measure<TcmallocAllocator, nint>(ref tc, rounds)));
        rows.Add(("new byte[64]", Measure<ManagedNewAllocator, byte[]>(ref managed, rounds)));
        rows.Add(("ArrayPool<byte>.Shared", Measure<ArrayPoolAllocator, byte[]>(ref pool, rounds)));

        foreach (string line in NativeLibraries.Report().Where(l => l.Contains("not installed"))) Console.WriteLine(line);
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine($"alloc-cpu-time: thread CPU ns per object (alloc + free), best of {rounds} rounds of {ObjectsPerRound:N0}; (x) = ratio to NativeMemory");
        Console.WriteLine("| Allocator | " + string.Join(" | ", scenarios) + " |");
        Console.WriteLine("|---|" + string.Concat(Enumerable.Repeat("---:|", scenarios.Length)));
        double[] baseline = rows[1].Ns;
        foreach (var (name, ns) in rows)
            Console.WriteLine($"| {name} | " + string.Join(" | ", ns.Select((v, i) => string.Create(inv, $"{v:F1} ({v / baseline[i]:F2}x)"))) + " |");
    }

    private static double[] Measure<TAlloc, THandle>(ref TAlloc allocator, int rounds)
        where TAlloc : struct, IBenchAllocator<THandle>
    {
        var batch = new THandle[1000];
        var bulk = new THandle[256];
        var best = new double[4];
        Array.Fill(best, double.MaxValue);
        for (int r = 0; r <= rounds; r++)   // round 0 warms up (JIT tiers, first slabs / arenas)
        {
            long t = ThreadCpuClock.NowNanoseconds();
            AllocScenarios.Pairs<TAlloc, THandle>(ref allocator, ObjectsPerRound);
            Keep(ref best[0], t, r);

            t = ThreadCpuClock.NowNanoseconds();
            for (int done = 0; done < ObjectsPerRound; done += batch.Length) AllocScenarios.Batch<TAlloc, THandle>(ref allocator, batch);
            Keep(ref best[1], t, r);

            t = ThreadCpuClock.NowNanoseconds();
            AllocScenarios.Bulk<TAlloc, THandle>(ref allocator, bulk, 16, ObjectsPerRound);
            Keep(ref best[2], t, r);

            t = ThreadCpuClock.NowNanoseconds();
            AllocScenarios.Bulk<TAlloc, THandle>(ref allocator, bulk, 256, ObjectsPerRound);
            Keep(ref best[3], t, r);
        }
        return best;
    }

    private static void Keep(ref double best, long started, int round)
    {
        double ns = (ThreadCpuClock.NowNanoseconds() - started) / (double)ObjectsPerRound;
        if (round > 0) best = Math.Min(best, ns);
    }
}
