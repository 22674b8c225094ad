using BenchmarkDotNet.Running;
using Slub.Benchmarks.Allocators;
using Slub.Benchmarks.Infrastructure;
using Slub.Benchmarks.Mobility;

namespace Slub.Benchmarks;

/// <summary>
/// Entry point: <c>dotnet run -c Release --project bench/Slub.Benchmarks -- --filter '*Alloc*' --job short</c>.
/// Each benchmark class carries its own config (diagnosers, columns, filters), so any BenchmarkDotNet
/// command line works; the native peers' availability is printed first because missing ones are skipped.
/// <c>-- --alloc-cpu-time</c>, <c>-- --fastpath-cpu-time</c> and <c>-- --defrag-cpu-time</c> run
/// <see cref="AllocatorCpuTimeProbe"/>, <see cref="FastPathCostProbe"/> and <see cref="DefragCpuTimeProbe"/>
/// instead: the same work in thread CPU time, for a machine shared with other builds
/// (<c>-- --defrag-profile N [--move-nothing]</c>: N shrinks of the defrag probe's cache in one process, for perf record,
/// optionally with a migrate callback that moves nothing (the core's own cost);
/// <c>-- --defrag-first-shrinks</c>: the first three shrinks of a fresh process, which the probe runs as a child);
/// <c>-- --xarray-cpu-time</c> runs <see cref="XArrayLoadProbe"/>, <c>-- --xarray-store-cpu-time</c> <see cref="XArrayStoreProbe"/> and <c>-- --replay-cpu-time</c>
/// <see cref="ReplayCpuTimeProbe"/>, <c>-- --dcache-cpu-time</c> <see cref="DcacheCpuTimeProbe"/> (CPU time, no BenchmarkDotNet); <c>-- redis-defrag</c> runs the
/// background-defragmentation acceptance scenario (<see cref="Defrag.RedisDefragScenario"/>, a long plain run).
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        // Before anything loads a native allocator: jemalloc needs the larger static TLS reserve.
        if (StaticTlsReserve.ReexecIfNeeded(args) is int exitCode) return exitCode;
        switch (args)
        {
            case ["--alloc-cpu-time"]: AllocatorCpuTimeProbe.Run(); return 0;
            case ["--fastpath-cpu-time"]: FastPathCostProbe.Run(); return 0;
            case ["--defrag-cpu-time"]: DefragCpuTimeProbe.Run(); return 0;
            case ["--defrag-first-shrinks"]: DefragCpuTimeProbe.FirstShrinks(); return 0;
            case ["--defrag-profile", var n]: DefragCpuTimeProbe.Profile(int.Parse(n)); return 0;
            case ["--defrag-profile", var n, "--move-nothing"]: DefragCpuTimeProbe.Profile(int.Parse(n), moveNothing: true); return 0;
            case ["--xarray-cpu-time"]: XArrayLoadProbe.Run(); return 0;
            case ["--xarray-cpu-time", "--keys", var keys]: XArrayLoadProbe.Run(int.Parse(keys, System.Globalization.CultureInfo.InvariantCulture)); return 0;
            case ["--xarray-load-breakdown"]: XArrayLoadBreakdown.Run(); return 0;
            case ["--xarray-store-cpu-time", ..]: XArrayStoreProbe.Run(args); return 0;
            case ["--dcache-cpu-time"]: DcacheCpuTimeProbe.Run(); return 0;
            case ["--replay-cpu-time"]: ReplayCpuTimeProbe.Run(); return 0;
            case ["redis-defrag", ..]: return Defrag.RedisDefragScenario.Run(args);
        }
        foreach (string line in NativeLibraries.Report()) Console.WriteLine(line);
        var summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return summaries.Any(s => s.HasCriticalValidationErrors) ? 1 : 0;
    }
}
