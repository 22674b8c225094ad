using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;

namespace Slub.Benchmarks.Infrastructure;

/// <summary>
/// Config shared by the allocator tables: bytes allocated per operation (the 0 B target), the ratio to the
/// NativeMemory baseline (the 0.35x target), and the filter that skips peers which are not installed.
/// The job (iterations) is left to the command line (e.g. <c>--job short</c>), because the machine is shared.
/// </summary>
public sealed class AllocatorConfig : ManualConfig
{
    public AllocatorConfig()
    {
        AddDiagnoser(MemoryDiagnoser.Default);
        AddFilter(new NativeLibraryFilter());
        // The machine is shared with other builds: interference only ever adds time, so the minimum and
        // the median say more about the allocator than the mean does.
        AddColumn(StatisticColumn.Min, StatisticColumn.Median);
        AddColumn(RankColumn.Arabic);
        SummaryStyle = BenchmarkDotNet.Reports.SummaryStyle.Default.WithRatioStyle(RatioStyle.Value);
    }
}
