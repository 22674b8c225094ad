namespace Slub.Tests;

/// <summary>Small allocators for tests: little address space, fixed CPU count, no inherited SLUB_DEBUG.</summary>
internal static class TestAllocator
{
    public static SlabAllocator Create(int nodes = 1, int cpus = 2, long mbPerNode = 64, string slubDebug = "-", bool merge = true,
        TimeSpan? freePageReportingDelay = null, string? name = null) =>
        new(new SlabOptions
        {
            BytesPerNode = mbPerNode << 20,
            EmulatedNodes = nodes,
            Cpus = cpus,
            SlubDebug = slubDebug,
            Merge = merge,
            FreePageReportingDelay = freePageReportingDelay ?? new SlabOptions().FreePageReportingDelay,
            Name = name,
        });

    /// <summary>
    /// An allocator that reports free pages only when asked, with a cache of <paramref name="size"/>-byte objects that
    /// held <paramref name="count"/> objects and was shrunk empty: its pages are free and still resident.
    /// </summary>
    public static (SlabAllocator Allocator, KmemCache Cache) WithShrunkCache(string name, int size, int count)
    {
        var a = Create(cpus: 1, freePageReportingDelay: Timeout.InfiniteTimeSpan);
        var c = a.CreateCache(name, size, flags: SlabFlags.NoMerge);
        var objs = Enumerable.Range(0, count).Select(_ => c.Alloc()).ToList();
        foreach (var p in objs) c.Free(p);
        c.Shrink();
        return (a, c);
    }
}
