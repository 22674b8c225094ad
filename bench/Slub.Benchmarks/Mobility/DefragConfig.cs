using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;

namespace Slub.Benchmarks.Mobility;

/// <summary>The derived defrag columns, plus MemoryDiagnoser (the shrink allocates a few small lists per call),
/// Min/Median because the machine is shared, and no forced collections.</summary>
/// <remarks>
/// BenchmarkDotNet by default runs a full blocking collection between [IterationSetup] and the measured call.
/// Here that collection would itself compact the fragmented managed heap the GC row is about to measure, so the
/// row would time a collection with nothing left to move (it did: 14 ms, "48 ns per survivor").
/// </remarks>
public sealed class DefragConfig : ManualConfig
{
    public DefragConfig()
    {
        AddJob(Job.Default.WithGcForce(false));
        AddDiagnoser(MemoryDiagnoser.Default);
        AddColumn(StatisticColumn.Min, StatisticColumn.Median);
        foreach (var kind in Enum.GetValues<DefragColumnKind>()) AddColumn(new DefragColumn(kind));
    }
}
