using BenchmarkDotNet.Running;

namespace Slub.Benchmarks;

/// <summary>Entry point: <c>dotnet run -c Release --project bench/Slub.Benchmarks -- --filter '*Dcache*' --job short</c>.</summary>
public static class Program
{
    public static int Main(string[] args)
    {
        var summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return summaries.Any(s => s.HasCriticalValidationErrors) ? 1 : 0;
    }
}
