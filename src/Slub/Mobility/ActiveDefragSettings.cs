namespace Slub;

/// <summary>
/// The background defragmenter's knobs for one cache (Redis' <c>active-defrag-*</c> settings, per cache).
/// Immutable: change a cache's settings with <see cref="KmemCache.ActiveDefrag"/>'s setter or the
/// <c>active_defrag_*</c> attributes, which validate the whole set before it takes effect.
/// </summary>
/// <remarks>
/// Fragmentation is measured as wasted object capacity in percent of the objects in use:
/// <c>(total_objects - objects) * 100 / objects</c>, so 10 means a ratio of 1.10 slots per live object.
/// </remarks>
public sealed record ActiveDefragSettings
{
    /// <summary>Defaults: Redis' thresholds (start at 10% waste, full effort at 100%) and CPU budget (1%..25%).</summary>
    public static ActiveDefragSettings Default { get; } = new();

    /// <summary>Whether this cache takes part when a background defragmenter runs (attribute <c>active_defrag</c>, default 1).</summary>
    public bool Enabled { get; init; } = true;

    /// <summary>Start when waste exceeds this percentage (<c>active_defrag_threshold_lower</c>, default 10).</summary>
    public int ThresholdLower { get; init; } = 10;

    /// <summary>Waste at which effort reaches <see cref="CycleMax"/> (<c>active_defrag_threshold_upper</c>, default 100).</summary>
    public int ThresholdUpper { get; init; } = 100;

    /// <summary>Once running, stop when waste falls to this percentage or below (<c>active_defrag_threshold_stop</c>, default 5). Must not exceed <see cref="ThresholdLower"/>: the gap is the hysteresis band.</summary>
    public int ThresholdStop { get; init; } = 5;

    /// <summary>CPU share, percent of one core, at the lower threshold (<c>active_defrag_cycle_min</c>, default 1).</summary>
    public int CycleMin { get; init; } = 1;

    /// <summary>CPU share at and above the upper threshold (<c>active_defrag_cycle_max</c>, default 25).</summary>
    public int CycleMax { get; init; } = 25;

    /// <summary>Most slabs emptied by one bounded step (<c>active_defrag_max_slabs</c>, default 16).</summary>
    public int MaxSlabsPerStep { get; init; } = 16;

    /// <summary>Do nothing while the cache holds fewer pages than this above its optimum (<c>active_defrag_ignore_pages</c>, default 100 — illumos acts from 101 slabs, Redis ignores the first 100 MB).</summary>
    public int IgnorePages { get; init; } = 100;

    /// <summary>How often, in milliseconds, an idle cache's fragmentation is checked (a running cache is checked before every step), how often a running cache flushes the thread magazines, and how long a cache that could not progress is left alone (<c>active_defrag_interval_ms</c>, default 100, Redis' hz 10).</summary>
    public int IntervalMs { get; init; } = 100;

    /// <summary>Returns null when the set is consistent, else what is wrong.</summary>
    public string? Problem()
    {
        if (ThresholdLower is < 0 or > 10_000) return "threshold_lower must be 0..10000";
        if (ThresholdUpper is < 0 or > 10_000) return "threshold_upper must be 0..10000";
        if (ThresholdUpper <= ThresholdLower) return "threshold_upper must be above threshold_lower";
        if (ThresholdStop < 0 || ThresholdStop > ThresholdLower) return "threshold_stop must be 0..threshold_lower";
        if (CycleMin is < 1 or > 100) return "cycle_min must be 1..100";
        if (CycleMax is < 1 or > 100) return "cycle_max must be 1..100";
        if (CycleMin > CycleMax) return "cycle_min must not exceed cycle_max";
        if (MaxSlabsPerStep is < 1 or > 4096) return "max_slabs must be 1..4096";
        if (IgnorePages < 0) return "ignore_pages must be >= 0";
        if (IntervalMs is < 1 or > 60_000) return "interval_ms must be 1..60000";
        return null;
    }

    /// <summary>The CPU share (percent of one core) for a cache whose waste is <paramref name="wastePercent"/>: linear from <see cref="CycleMin"/> at the lower threshold to <see cref="CycleMax"/> at the upper one (as Redis scales its cycle).</summary>
    public double CpuShareFor(double wastePercent)
    {
        double t = (wastePercent - ThresholdLower) / (ThresholdUpper - ThresholdLower);
        return CycleMin + (CycleMax - CycleMin) * Math.Clamp(t, 0, 1);
    }
}
