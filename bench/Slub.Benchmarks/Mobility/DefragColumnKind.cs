namespace Slub.Benchmarks.Mobility;

/// <summary>The derived figures <see cref="DefragColumn"/> can show.</summary>
public enum DefragColumnKind
{
    /// <summary>Share of slots in use before the step.</summary>
    UsedBefore,
    /// <summary>Objects moved (slab) or survivors compacted (GC): a count.</summary>
    Moved,
    SlabsBefore,
    SlabsAfter,
    OptimalSlabs,
    SlabsFreed,
    /// <summary>Mean time divided by <see cref="Moved"/>.</summary>
    NsPerObject,
    /// <summary>Moved × 64 bytes per second of mean time.</summary>
    MBMovedPerSecond,
    SlabsFreedPerSecond,
    /// <summary>The GC's ns per survivor divided by this row's ns per moved object (same run).</summary>
    TimesCheaperThanGc,
}
