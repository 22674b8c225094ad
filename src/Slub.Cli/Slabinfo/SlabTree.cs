namespace Slub.Cli.Slabinfo;

/// <summary>What read_slab_dir() collects: the caches and aliases read, in source order, and the global counters.</summary>
public sealed class SlabTree
{
    public List<SlabCache> Caches { get; } = [];
    public List<SlabAlias> Aliases { get; } = [];
    /// <summary>Number of ':' (merged) cache directories read.</summary>
    public int AliasTargets { get; set; }
    /// <summary>Largest NUMA node seen in any <c>slabs</c> or <c>partial</c> file.</summary>
    public int HighestNode { get; set; }
    /// <summary>Caches not renamed to "*" (a single one turns the listing into a report).</summary>
    public int ActualSlabs { get; set; }
}
