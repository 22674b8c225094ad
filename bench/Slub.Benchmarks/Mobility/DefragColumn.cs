using System.Globalization;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace Slub.Benchmarks.Mobility;

/// <summary>
/// A column of <see cref="DefragBenchmarks"/> derived from the mean time and the step's counts
/// (<see cref="DefragOutcome"/>): the issue asks for objects moved, bytes and slabs per second, and the cost
/// per moved object beside the GC's cost per surviving object, which BenchmarkDotNet does not show by itself.
/// </summary>
public sealed class DefragColumn(DefragColumnKind kind) : IColumn
{
    private const string GcMethod = nameof(DefragBenchmarks.GcCompacting);

    public string Id => nameof(DefragColumn) + "." + kind;

    public string ColumnName => kind switch
    {
        DefragColumnKind.UsedBefore => "Used before",
        DefragColumnKind.Moved => "Moved",
        DefragColumnKind.SlabsBefore => "Slabs before",
        DefragColumnKind.SlabsAfter => "Slabs after",
        DefragColumnKind.OptimalSlabs => "Optimal",
        DefragColumnKind.SlabsFreed => "Slabs freed",
        DefragColumnKind.NsPerObject => "ns/moved",
        DefragColumnKind.MBMovedPerSecond => "MB moved/s",
        DefragColumnKind.SlabsFreedPerSecond => "Slabs freed/s",
        DefragColumnKind.TimesCheaperThanGc => "x cheaper than GC",
        _ => kind.ToString(),
    };

    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => (int)kind;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public bool IsAvailable(Summary summary) => true;

    public string Legend => kind switch
    {
        DefragColumnKind.Moved => "Objects moved by the shrink (GC row: survivors it compacted)",
        DefragColumnKind.NsPerObject => "Mean / Moved: ns per moved object (GC row: per surviving object)",
        DefragColumnKind.TimesCheaperThanGc => "GC ns per survivor / this row's ns per moved object, same run",
        DefragColumnKind.MBMovedPerSecond => "Moved x 64 B / Mean (MB = 10^6 B)",
        DefragColumnKind.UsedBefore => "objects / total_objects of the cache before the step",
        _ => ColumnName + " (a count from the replayed setup, or per second of Mean)",
    };

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        string method = benchmarkCase.Descriptor.WorkloadMethod.Name;
        int objects = (int)benchmarkCase.Parameters[nameof(DefragBenchmarks.ObjectCount)]!;
        var o = DefragOutcome.Compute(method, objects);
        bool gc = method == GcMethod;
        double? meanNs = summary[benchmarkCase]?.ResultStatistics?.Mean;
        var inv = CultureInfo.InvariantCulture;
        string slabs(long v) => gc ? "-" : v.ToString("N0", inv);
        switch (kind)
        {
            case DefragColumnKind.UsedBefore: return o.UsedBefore.ToString("P1", inv);
            case DefragColumnKind.Moved: return o.Moved.ToString("N0", inv);
            case DefragColumnKind.SlabsBefore: return slabs(o.SlabsBefore);
            case DefragColumnKind.SlabsAfter: return slabs(o.SlabsAfter);
            case DefragColumnKind.OptimalSlabs: return slabs(o.OptimalSlabs);
            case DefragColumnKind.SlabsFreed: return slabs(o.SlabsFreed);
        }
        if (meanNs is not double mean || o.Moved == 0) return "NA";
        double nsPerObject = mean / o.Moved;
        switch (kind)
        {
            case DefragColumnKind.NsPerObject: return nsPerObject.ToString("F1", inv);
            case DefragColumnKind.MBMovedPerSecond: return (o.Moved * 64.0 / mean * 1e9 / 1e6).ToString("N0", inv);
            case DefragColumnKind.SlabsFreedPerSecond: return gc ? "-" : (o.SlabsFreed / mean * 1e9).ToString("N0", inv);
            case DefragColumnKind.TimesCheaperThanGc:
                var gcCase = summary.BenchmarksCases.FirstOrDefault(c =>
                    c.Descriptor.WorkloadMethod.Name == GcMethod && (int)c.Parameters[nameof(DefragBenchmarks.ObjectCount)]! == objects);
                double? gcMean = gcCase is null ? null : summary[gcCase]?.ResultStatistics?.Mean;
                if (gcMean is not double g) return "NA";
                double gcPerSurvivor = g / DefragOutcome.Compute(GcMethod, objects).Moved;
                return (gcPerSurvivor / nsPerObject).ToString("F1", inv);
        }
        return "?";
    }

    public override string ToString() => ColumnName;
}
