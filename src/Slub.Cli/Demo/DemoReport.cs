using System.Text.Json.Serialization;

namespace Slub.Cli.Demo;

// The JSON shape of `slub demo --json` (names fixed by the issues; fields may be added, never renamed).

internal sealed record NodeCounts(
    [property: JsonPropertyName("node")] int Node,
    [property: JsonPropertyName("objects")] long Objects,
    [property: JsonPropertyName("slabs")] long Slabs,
    [property: JsonPropertyName("partial")] long Partial);

internal sealed record AfterDefrag(
    [property: JsonPropertyName("objects")] long Objects,
    [property: JsonPropertyName("slabs")] long Slabs,
    [property: JsonPropertyName("partial")] long Partial,
    [property: JsonPropertyName("optimal_slabs")] long OptimalSlabs,
    [property: JsonPropertyName("objects_moved")] long ObjectsMoved,
    [property: JsonPropertyName("objects_freed")] long ObjectsFreed,
    [property: JsonPropertyName("slabs_freed")] long SlabsFreed,
    [property: JsonPropertyName("pages")] long Pages,
    [property: JsonPropertyName("milliseconds")] double Milliseconds,
    [property: JsonPropertyName("verified")] bool Verified)
{
    /// <summary>Of <see cref="Milliseconds"/>, the time the shrinking thread spent compiling code (the defrag path on its first use).</summary>
    [JsonPropertyName("compile_milliseconds")] public double CompileMilliseconds { get; init; }
}

internal sealed record CacheReport(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("object_size")] int ObjectSize,
    [property: JsonPropertyName("objs_per_slab")] int ObjsPerSlab,
    [property: JsonPropertyName("order")] int Order,
    [property: JsonPropertyName("movable")] bool Movable,
    [property: JsonPropertyName("objects")] long Objects,
    [property: JsonPropertyName("slabs")] long Slabs,
    [property: JsonPropertyName("partial")] long Partial,
    [property: JsonPropertyName("optimal_slabs")] long OptimalSlabs,
    [property: JsonPropertyName("pages")] long Pages,
    [property: JsonPropertyName("nodes")] IReadOnlyList<NodeCounts> Nodes)
{
    [JsonPropertyName("after_defrag")] public AfterDefrag? AfterDefrag { get; set; }
    [JsonPropertyName("after_move")] public AfterMove? AfterMove { get; set; }
    [JsonPropertyName("after_balance")] public AfterBalance? AfterBalance { get; set; }
}

internal sealed record AfterMove(
    [property: JsonPropertyName("to")] int To,
    [property: JsonPropertyName("nodes")] IReadOnlyList<NodeCounts> Nodes,
    [property: JsonPropertyName("verified")] bool Verified);

internal sealed record AfterBalance(
    [property: JsonPropertyName("nodes")] IReadOnlyList<NodeCounts> Nodes,
    [property: JsonPropertyName("verified")] bool Verified);

internal sealed record BuddyRow(
    [property: JsonPropertyName("node")] int Node,
    [property: JsonPropertyName("free_blocks")] long[] FreeBlocks);

internal sealed record DemoReport(
    [property: JsonPropertyName("caches")] IReadOnlyList<CacheReport> Caches,
    [property: JsonPropertyName("rss_bytes")] long RssBytes,
    [property: JsonPropertyName("buddyinfo")] IReadOnlyList<BuddyRow> BuddyInfo,
    [property: JsonPropertyName("rss_bytes_after")] long RssBytesAfter,
    [property: JsonPropertyName("buddyinfo_after")] IReadOnlyList<BuddyRow> BuddyInfoAfter,
    [property: JsonPropertyName("rss_bytes_start")] long RssBytesStart,
    [property: JsonPropertyName("seed")] int Seed)
{
    [JsonPropertyName("dcache")] public DcacheReport? Dcache { get; set; }
}

/// <summary>The dentry-cache workload: a real tree walked, pruned by memory pressure, then SMO partial shrink.</summary>
internal sealed record DcacheReport(
    [property: JsonPropertyName("root")] string Root,
    [property: JsonPropertyName("paths")] int Paths,
    [property: JsonPropertyName("dentries_populated")] long DentriesPopulated,
    [property: JsonPropertyName("slabs_populated")] long SlabsPopulated,
    [property: JsonPropertyName("hot_paths")] int HotPaths,
    [property: JsonPropertyName("hot_cached_before_smo")] int HotCachedBeforeSmo,
    [property: JsonPropertyName("hot_cached_after_smo")] int HotCachedAfterSmo,
    [property: JsonPropertyName("evicted_referenced")] long EvictedReferenced,
    [property: JsonPropertyName("paths_verified")] int PathsVerified,
    [property: JsonPropertyName("mismatches")] int Mismatches);

[JsonSourceGenerationOptions(WriteIndented = false)]
[JsonSerializable(typeof(DemoReport))]
internal sealed partial class DemoJsonContext : JsonSerializerContext;
