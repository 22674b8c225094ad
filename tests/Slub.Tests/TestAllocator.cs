namespace Slub.Tests;

/// <summary>Small allocators for tests: little address space, fixed CPU count, no inherited SLUB_DEBUG.</summary>
internal static class TestAllocator
{
    public static SlabAllocator Create(int nodes = 1, int cpus = 2, long mbPerNode = 64, string slubDebug = "-", bool merge = true) =>
        new(new SlabOptions
        {
            BytesPerNode = mbPerNode << 20,
            EmulatedNodes = nodes,
            Cpus = cpus,
            SlubDebug = slubDebug,
            Merge = merge,
        });
}
