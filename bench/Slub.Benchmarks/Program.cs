using BenchmarkDotNet.Running;

namespace Slub.Benchmarks;

/// <summary>
/// Entry point: <c>dotnet run -c Release --project bench/Slub.Benchmarks -- --filter '*Dcache*' --job short</c>
/// for BenchmarkDotNet; <c>-- --xarray-cpu-time</c> runs <see cref="XArrayLoadProbe"/> (CPU time, no
/// BenchmarkDotNet) and <c>-- redis-defrag</c> the background-defragmentation acceptance scenario instead
/// (long plain runs, not micro-benchmarks).
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args is ["--xarray-cpu-time"])
        {
            XArrayLoadProbe.Run();
            return 0;
        }
        if (args.Length > 0 && args[0] == "redis-defrag") return Defrag.RedisDefragScenario.Run(args);
        var summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return summaries.Any(s => s.HasCriticalValidationErrors) ? 1 : 0;
    }
}
