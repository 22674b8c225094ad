using System.Reflection;
using BenchmarkDotNet.Filters;
using BenchmarkDotNet.Running;
using Slub.Benchmarks.Allocators;

namespace Slub.Benchmarks.Infrastructure;

/// <summary>
/// Skips benchmarks whose <see cref="RequiresLibraryAttribute"/> library is not installed, printing
/// "jemalloc: not installed ..." once per library, so a missing peer shows as missing, never as a number.
/// </summary>
public sealed class NativeLibraryFilter : IFilter
{
    private static readonly HashSet<string> s_reported = new();

    public bool Predicate(BenchmarkCase benchmarkCase)
    {
        var needs = benchmarkCase.Descriptor.WorkloadMethod.GetCustomAttribute<RequiresLibraryAttribute>();
        if (needs is null || NativeLibraries.IsInstalled(needs.Library)) return true;
        lock (s_reported)
        {
            if (s_reported.Add(needs.Library))
                Console.WriteLine($"{needs.Name}: not installed ({needs.Library}; run bench/setup.sh) - its benchmarks are skipped");
        }
        return false;
    }
}
