using BenchmarkDotNet.Running;
using Slub.Benchmarks.Allocators;
using Slub.Benchmarks.Infrastructure;
using Slub.Benchmarks.Mobility;

namespace Slub.Benchmarks;

/// <summary>
/// Entry point: <c>dotnet run -c Release --project bench/Slub.Benchmarks -- --filter '*Alloc*' --job short</c>.
/// Each benchmark class carries its own config (diagnosers, columns, filters), so any BenchmarkDotNet
/// command line works; the native peers' availability is printed first because missing ones are skipped.
/// <c>-- --defrag-cpu-time</c> and <c>-- --fastpath-cpu-time</c> run <see cref="DefragCpuTimeProbe"/> and
/// <see cref="FastPathCostProbe"/> instead (thread CPU time, no BenchmarkDotNet).
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args is ["--defrag-cpu-time"])
        {
            DefragCpuTimeProbe.Run();
            return 0;
        }
        if (args is ["--fastpath-cpu-time"])
        {
            FastPathCostProbe.Run();
            return 0;
        }
        if (StaticTlsReserve.ReexecIfNeeded(args) is int exitCode) return exitCode;
        foreach (string line in NativeLibraries.Report()) Console.WriteLine(line);
        var summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return summaries.Any(s => s.HasCriticalValidationErrors) ? 1 : 0;
    }
}
