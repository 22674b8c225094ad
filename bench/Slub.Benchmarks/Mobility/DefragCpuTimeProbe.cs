using System.Diagnostics;
using System.Globalization;
using Slub.Benchmarks.Infrastructure;

namespace Slub.Benchmarks.Mobility;

/// <summary>
/// A cross-check of <see cref="DefragBenchmarks"/> in thread CPU time: the same three steps on the same states,
/// best of several rounds, wall and CPU time side by side (<c>-- --defrag-cpu-time</c>).
/// </summary>
/// <remarks>
/// Fair to both sides because a forced blocking collection under workstation GC runs on the calling thread,
/// as the shrink does. Not a BenchmarkDotNet run: no pilot or overhead subtraction (each step takes milliseconds).
/// </remarks>
public static class DefragCpuTimeProbe
{
    public static void Run(int objects = 1_000_000, int rounds = 7)
    {
        if (!ThreadCpuClock.IsAvailable) { Console.WriteLine("defrag-cpu-time: needs Linux (CLOCK_THREAD_CPUTIME_ID)"); return; }
        Console.WriteLine($"defrag-cpu-time: {objects:N0} objects of 64 B, {Fragmentation.SurvivingFraction:P0} survive, best of {rounds} (GC: {(System.Runtime.GCSettings.IsServerGC ? "server" : "workstation")})");
        Console.WriteLine("| Step | Objects moved (offered) | Best wall ms | Best CPU ms | CPU ns per object |");
        Console.WriteLine("|---|---:|---:|---:|---:|");
        // The GC first, on a heap no earlier row has touched, as in its own BenchmarkDotNet process.
        Row("GC compacting gen2 (per survivor)", rounds, () => Collect(objects));
        Row("Shrink FillFullestFirst (freed pages stay resident until reported)", rounds, () => Shrink(objects, DefragPolicy.FillFullestFirst));
        Row("Giving those pages back to the OS afterwards (ReportFreePages; per moved object)", rounds, () => Shrink(objects, DefragPolicy.FillFullestFirst, timeReport: true));
        Row("Shrink FillFullestFirst, 64-byte slots (free pointer inside the object; the GC's footprint)", rounds, () => Shrink(objects, DefragPolicy.FillFullestFirst, slotsOf64: true));
        Row("Shrink FillFullestFirst, pages back to the OS inside the shrink (FreePageReportingDelay = 0)", rounds, () => Shrink(objects, DefragPolicy.FillFullestFirst, reportAtOnce: true));
        Row("Shrink FillFullestFirst, migrate frees each old object itself (Moved, not MovedOldLeft)", rounds, () => Shrink(objects, DefragPolicy.FillFullestFirst, freeEachOld: true));
        Row("Shrink EmptyAllCandidates", rounds, () => Shrink(objects, DefragPolicy.EmptyAllCandidates));
        Row("Shrink FillFullestFirst, migrate moves nothing (core cost; per object it was offered)", rounds, () => Shrink(objects, DefragPolicy.FillFullestFirst, moveNothing: true));
        Row("Memory floor: the same moves replayed as plain copies and stores, no allocator (DefragMemoryFloor)", rounds, () => DefragMemoryFloor.Replay(objects, slotsOf64: false));
        Row("Memory floor, 64-byte slots", rounds, () => DefragMemoryFloor.Replay(objects, slotsOf64: true));
        Row("Memory floor, old objects prefetched a source slab at a time (one burst per slab, as a defrag core sees them)", rounds, () => DefragMemoryFloor.Replay(objects, slotsOf64: false, prefetchPerSlab: true));
        FirstShrinkRows(rounds: 3);
    }

    /// <summary>
    /// The first shrinks of a process, each on a fresh fragmented cache (<c>-- --defrag-first-shrinks</c>): what a
    /// program that shrinks now and then pays, before tiered compilation has optimized anything it has not met
    /// yet. The first includes compiling the defrag path. One line per shrink: <c>first-shrink K cpu-ns moved jit-ns</c>, the last
    /// being the time this thread spent compiling inside the shrink (<see cref="System.Runtime.JitInfo"/>).
    /// </summary>
    public static void FirstShrinks(int objects = 1_000_000, int shrinks = 3)
    {
        for (int k = 1; k <= shrinks; k++)
        {
            var r = Shrink(objects, DefragPolicy.FillFullestFirst, jitOnThisThread: out var jit);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"first-shrink {k} {r.Cpu} {r.Moved} {(long)jit.TotalNanoseconds}"));
        }
    }

    /// <summary>Rows for the first, second and third shrink of a fresh process: best of <paramref name="rounds"/> child processes.</summary>
    private static void FirstShrinkRows(int rounds)
    {
        var best = new Dictionary<int, (long Cpu, long Moved, long Jit)>();
        for (int r = 0; r < rounds; r++)
        {
            var psi = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true };
            if (Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet") psi.ArgumentList.Add(typeof(DefragCpuTimeProbe).Assembly.Location);
            psi.ArgumentList.Add("--defrag-first-shrinks");
            using var child = Process.Start(psi)!;
            string output = child.StandardOutput.ReadToEnd();
            child.WaitForExit();
            if (child.ExitCode != 0) throw new InvalidOperationException($"--defrag-first-shrinks exited with {child.ExitCode}");
            foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                if (line.Split(' ') is not ["first-shrink", var k, var cpu, var moved, var jit]) continue;
                int key = int.Parse(k, CultureInfo.InvariantCulture);
                long c = long.Parse(cpu, CultureInfo.InvariantCulture), m = long.Parse(moved, CultureInfo.InvariantCulture);
                if (!best.TryGetValue(key, out var b) || c < b.Cpu) best[key] = (c, m, long.Parse(jit, CultureInfo.InvariantCulture));
            }
        }
        foreach (var (k, (cpu, moved, jit)) in best.OrderBy(e => e.Key))
        {
            string step = k == 1 ? "First shrink of a fresh process (compiles the defrag path)" : $"Shrink {k} of the same process";
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {step} (best of {rounds} processes; {jit / 1e6:F1} ms of it compiling) | {moved:N0} | | {cpu / 1e6:F1} | {(double)cpu / moved:F0} |"));
        }
    }

    /// <summary>Shrinks <paramref name="times"/> fresh fragmented caches, FillFullestFirst, for a sampling profiler (<c>-- --defrag-profile N</c>); with <paramref name="moveNothing"/> the callback answers Later for every object, leaving the core's own cost (<c>--move-nothing</c>).</summary>
    public static void Profile(int times, int objects = 1_000_000, bool moveNothing = false)
    {
        long cpu = 0, moved = 0;
        double best = double.MaxValue;
        int collected = 0;
        for (int i = 0; i < times; i++)
        {
            var r = Shrink(objects, DefragPolicy.FillFullestFirst, moveNothing);
            if (i == 0) continue;   // JIT warm-up
            cpu += r.Cpu;
            moved += r.Moved;
            best = Math.Min(best, (double)r.Cpu / Math.Max(1, r.Moved));
            if (s_collectionsInLastShrink > 0) collected++;
        }
        // The best shrink as well as the mean: on a shared host the mean moves with the neighbours' load; and how
        // many shrinks had a collection inside them (a shrink that allocates makes them).
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"defrag-profile: {times - 1} shrinks, {cpu / 1e6:F1} ms CPU, {(double)cpu / Math.Max(1, moved):F0} ns per moved object (best shrink {best:F1}; {collected} with a GC inside)"));
    }

    /// <summary>
    /// One shrink of a fresh fragmented cache, timed. Freed pages stay resident (reporting delay infinite) unless
    /// <paramref name="reportAtOnce"/> (delay zero: every free gives its pages back). With <paramref name="timeReport"/>
    /// the time returned is that of the <see cref="SlabAllocator.ReportFreePages"/> call after the shrink instead.
    /// </summary>
    /// <summary>Collections (any generation) that ran inside the last timed shrink.</summary>
    private static int s_collectionsInLastShrink;

    private static (long Wall, long Cpu, long Moved) Shrink(int objects, DefragPolicy policy, bool moveNothing = false,
        bool freeEachOld = false, bool reportAtOnce = false, bool timeReport = false, bool slotsOf64 = false) =>
        Shrink(objects, policy, out _, moveNothing, freeEachOld, reportAtOnce, timeReport, slotsOf64);

    private static (long Wall, long Cpu, long Moved) Shrink(int objects, DefragPolicy policy, out TimeSpan jitOnThisThread, bool moveNothing = false,
        bool freeEachOld = false, bool reportAtOnce = false, bool timeReport = false, bool slotsOf64 = false)
    {
        using var f = new FragmentedCache(objects, moveNothing, reportAtOnce ? TimeSpan.Zero : Timeout.InfiniteTimeSpan, slotsOf64);
        f.Table.LeaveOldToCore = !freeEachOld;
        var jit = System.Runtime.JitInfo.GetCompilationTime(currentThread: true);
        int collections = GC.CollectionCount(0);
        long wall = Stopwatch.GetTimestamp(), cpu = ThreadCpuClock.NowNanoseconds();
        f.Cache.Shrink(policy);
        jitOnThisThread = System.Runtime.JitInfo.GetCompilationTime(currentThread: true) - jit;
        s_collectionsInLastShrink = GC.CollectionCount(0) - collections;
        if (timeReport)
        {
            wall = Stopwatch.GetTimestamp();
            cpu = ThreadCpuClock.NowNanoseconds();
            if (f.Allocator.ReportFreePages() == 0) throw new InvalidOperationException("the shrink left no page to report");
        }
        cpu = ThreadCpuClock.NowNanoseconds() - cpu;
        long offered = f.Cache.Defrag.ObjectsMoved + f.Cache.Defrag.ObjectsBusy;
        return ((long)Stopwatch.GetElapsedTime(wall).TotalNanoseconds, cpu, offered);
    }

    private static (long Wall, long Cpu, long Moved) Collect(int objects)
    {
        var heap = new FragmentedHeap(objects);
        long wall = Stopwatch.GetTimestamp(), cpu = ThreadCpuClock.NowNanoseconds();
        FragmentedHeap.CompactingCollection();
        cpu = ThreadCpuClock.NowNanoseconds() - cpu;
        long elapsed = (long)Stopwatch.GetElapsedTime(wall).TotalNanoseconds;
        return (elapsed, cpu, heap.Survivors);
    }

    private static void Row(string step, int rounds, Func<(long Wall, long Cpu, long Moved)> once)
    {
        once();   // warm-up: JIT tiers, first-touch page faults of the arena
        long bestWall = long.MaxValue, bestCpu = long.MaxValue, moved = 0;
        for (int i = 0; i < rounds; i++)
        {
            var r = once();
            bestWall = Math.Min(bestWall, r.Wall);
            bestCpu = Math.Min(bestCpu, r.Cpu);
            moved = r.Moved;
        }
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine(string.Create(inv, $"| {step} | {moved:N0} | {bestWall / 1e6:F1} | {bestCpu / 1e6:F1} | {(double)bestCpu / moved:F0} |"));
    }
}
