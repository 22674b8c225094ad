using BenchmarkDotNet.Attributes;
using Slub.Benchmarks.Infrastructure;

namespace Slub.Benchmarks.Allocators;

/// <summary>
/// The allocators every table compares, set up once per benchmark process. Native peers that are not
/// installed stay unset; their benchmarks never run (<see cref="NativeLibraryFilter"/>).
/// </summary>
/// <remarks>The allocators are fields (not properties) so the scenarios can take them by ref.</remarks>
[Config(typeof(AllocatorConfig))]
public abstract class AllocatorBenchmarkBase
{
    protected SlabAllocator? SlabAllocator;
    protected KmemCacheAllocator KmemAlloc;
    protected GlibcAllocator GlibcAlloc;
    protected MimallocAllocator MimallocAlloc;
    protected JemallocAllocator JemallocAlloc;
    protected TcmallocAllocator TcmallocAlloc;
    protected ManagedNewAllocator ManagedAlloc;
    protected ArrayPoolAllocator PoolAlloc;

    [GlobalSetup]
    public virtual void Setup()
    {
        SlabAllocator = KmemCacheAllocator.CreateAllocator();
        KmemAlloc = KmemCacheAllocator.Create(SlabAllocator);
        GlibcAlloc = default;
        if (NativeLibraries.IsInstalled(NativeLibraries.Jemalloc)) JemallocAlloc = JemallocAllocator.Load();
        ManagedAlloc = new ManagedNewAllocator();
        PoolAlloc = default;
    }

    [GlobalCleanup]
    public virtual void Cleanup() => SlabAllocator?.Dispose();
}
