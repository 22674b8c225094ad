using BenchmarkDotNet.Attributes;
using Slub.Benchmarks.Infrastructure;

namespace Slub.Benchmarks.Allocators;

/// <summary>
/// 1,000 allocations, then the 1,000 frees in allocation order: spans several slabs, so refills, partial-list
/// moves and empty-slab handling are in the number. Result: ns per object (one alloc + one free).
/// </summary>
public class BatchBenchmarks : AllocatorBenchmarkBase
{
    private const int Objects = 1000;
    private readonly nint[] _native = new nint[Objects];
    private readonly byte[][] _managed = new byte[Objects][];

    [Benchmark(OperationsPerInvoke = Objects)]
    public void KmemCache() => AllocScenarios.Batch<KmemCacheAllocator, nint>(ref KmemAlloc, _native);

    [Benchmark(Baseline = true, OperationsPerInvoke = Objects)]
    public void NativeMemory() => AllocScenarios.Batch<GlibcAllocator, nint>(ref GlibcAlloc, _native);

    [Benchmark(OperationsPerInvoke = Objects), RequiresLibrary("mimalloc", NativeLibraries.Mimalloc)]
    public void Mimalloc() => AllocScenarios.Batch<MimallocAllocator, nint>(ref MimallocAlloc, _native);

    [Benchmark(OperationsPerInvoke = Objects), RequiresLibrary("jemalloc", NativeLibraries.Jemalloc)]
    public void Jemalloc() => AllocScenarios.Batch<JemallocAllocator, nint>(ref JemallocAlloc, _native);

    [Benchmark(OperationsPerInvoke = Objects), RequiresLibrary("tcmalloc", NativeLibraries.Tcmalloc)]
    public void Tcmalloc() => AllocScenarios.Batch<TcmallocAllocator, nint>(ref TcmallocAlloc, _native);

    [Benchmark(OperationsPerInvoke = Objects)]
    public void ManagedNew() => AllocScenarios.Batch<ManagedNewAllocator, byte[]>(ref ManagedAlloc, _managed);

    [Benchmark(OperationsPerInvoke = Objects)]
    public void ArrayPoolShared() => AllocScenarios.Batch<ArrayPoolAllocator, byte[]>(ref PoolAlloc, _managed);
}
