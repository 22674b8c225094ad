using BenchmarkDotNet.Running;

namespace Slub.Benchmarks;

/// <summary>
/// Entry point: <c>dotnet run -c Release --project bench/Slub.Benchmarks -- --filter '*Dcache*' --job short</c>;
/// <c>-- --xarray-cpu-time</c> runs <see cref="XArrayLoadProbe"/> and <c>-- --replay-cpu-time</c> runs
/// <see cref="ReplayCpuTimeProbe"/> instead (CPU time, no BenchmarkDotNet).
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
        if (args is ["--replay-cpu-time"])
        {
            ReplayCpuTimeProbe.Run();
            return 0;
        }
        var summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return summaries.Any(s => s.HasCriticalValidationErrors) ? 1 : 0;
    }
}
