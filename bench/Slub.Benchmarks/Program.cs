using BenchmarkDotNet.Running;
using Slub.Benchmarks.Allocators;
using Slub.Benchmarks.Infrastructure;

namespace Slub.Benchmarks;

/// <summary>
/// Entry point: <c>dotnet run -c Release --project bench/Slub.Benchmarks -- --filter '*Alloc*' --job short</c>.
/// Each benchmark class carries its own config (diagnosers, columns, filters), so any BenchmarkDotNet
/// command line works; the native peers' availability is printed first because missing ones are skipped.
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (StaticTlsReserve.ReexecIfNeeded(args) is int exitCode) return exitCode;
        foreach (string line in NativeLibraries.Report()) Console.WriteLine(line);
        var summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return summaries.Any(s => s.HasCriticalValidationErrors) ? 1 : 0;
    }
}
