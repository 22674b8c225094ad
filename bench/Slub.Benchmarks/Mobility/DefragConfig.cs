using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;

namespace Slub.Benchmarks.Mobility;

/// <summary>The derived defrag columns, plus MemoryDiagnoser (the shrink allocates a few small lists per call), and
/// Min/Median because the machine is shared.</summary>
public sealed class DefragConfig : ManualConfig
{
    public DefragConfig()
    {
        AddDiagnoser(MemoryDiagnoser.Default);
        AddColumn(StatisticColumn.Min, StatisticColumn.Median);
        foreach (var kind in Enum.GetValues<DefragColumnKind>()) AddColumn(new DefragColumn(kind));
    }
}
