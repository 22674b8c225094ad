using BenchmarkDotNet.Running;

namespace Slub.Benchmarks;

/// <summary>
/// Entry point: <c>dotnet run -c Release --project bench/Slub.Benchmarks -- --filter '*Dcache*' --job short</c>
/// for BenchmarkDotNet; <c>redis-defrag</c> runs the background-defragmentation acceptance scenario instead
/// (a long plain run, not a micro-benchmark).
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "redis-defrag") return Defrag.RedisDefragScenario.Run(args);
        var summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return summaries.Any(s => s.HasCriticalValidationErrors) ? 1 : 0;
    }
}
