using BenchmarkDotNet.Running;

namespace Slub.Benchmarks;

/// <summary>
/// Minimal entry point: <c>dotnet run -c Release --project bench/Slub.Benchmarks -- --filter '*XArray*' --job short</c>;
/// <c>-- --xarray-cpu-time</c> runs <see cref="XArrayLoadProbe"/> instead.
/// Main had no entry point, so the solution did not build; the bench branch has a fuller Program.cs (also a
/// <see cref="BenchmarkSwitcher"/> over the assembly), which should win if both land.
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
        var summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return summaries.Any(s => s.HasCriticalValidationErrors) ? 1 : 0;
    }
}
