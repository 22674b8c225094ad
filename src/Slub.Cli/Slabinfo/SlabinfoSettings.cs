namespace Slub.Cli.Slabinfo;

/// <summary>The tool's option flags (the C globals), plus this port's additions.</summary>
public sealed class SlabinfoSettings
{
    public SlabinfoDialect Dialect = SlabinfoDialect.Smo;
    public bool ShowEmpty, ShowReport, ShowAlias, ShowSlab, ShowMovable, ShowCtor, ShowNuma, ShowTrack;
    public bool ShowFirstAlias, Validate, Shrink, ShowInverted, ShowSingleRef, ShowTotals;
    public bool SortSize, SortActive, SortLoss, SortPartial, SetDebug, ShowOps, ShowActivity;
    public bool ExtendedTotals, ShowBytes, UnreclaimOnly;
    public bool SkipZero = true;
    public int OutputLines = -1;
    public string Pattern = ".*";

    /// <summary>Debug flags requested with -d.</summary>
    public bool Sanity, Redzone, Poison, Tracking, Tracing;

    // Additions of this port (not in the C tool).
    public string? SysfsDirectory;
    public int? Pid;
    public bool Json;
    public string? MapCache;
}
