using BenchmarkDotNet.Attributes;
using Slub.Benchmarks.Infrastructure;

namespace Slub.Benchmarks.Allocators;

/// <summary>
/// Bulk alloc then bulk free of <see cref="BulkSize"/> objects (kmem_cache_alloc_bulk/free_bulk for
/// KmemCache; a loop for the peers, which have no bulk API). Result: ns per object (its alloc + its free).
/// Issue #2 target: KmemCache at most 2 ns per object.
/// </summary>
public class BulkBenchmarks : AllocatorBenchmarkBase
{
    private const int ObjectsPerInvoke = 1024;   // a multiple of every BulkSize
    private readonly nint[] _native = new nint[256];
    private readonly byte[][] _managed = new byte[256][];

    [Params(16, 256)]
    public int BulkSize { get; set; }

    [Benchmark(OperationsPerInvoke = ObjectsPerInvoke)]
    public void KmemCache() => AllocScenarios.Bulk<KmemCacheAllocator, nint>(ref KmemAlloc, _native, BulkSize, ObjectsPerInvoke);

    [Benchmark(Baseline = true, OperationsPerInvoke = ObjectsPerInvoke)]
    public void NativeMemory() => AllocScenarios.Bulk<GlibcAllocator, nint>(ref GlibcAlloc, _native, BulkSize, ObjectsPerInvoke);

    [Benchmark(OperationsPerInvoke = ObjectsPerInvoke), RequiresLibrary("mimalloc", NativeLibraries.Mimalloc)]
    public void Mimalloc() => AllocScenarios.Bulk<MimallocAllocator, nint>(ref MimallocAlloc, _native, BulkSize, ObjectsPerInvoke);

    [Benchmark(OperationsPerInvoke = ObjectsPerInvoke), RequiresLibrary("jemalloc", NativeLibraries.Jemalloc)]
    public void Jemalloc() => AllocScenarios.Bulk<JemallocAllocator, nint>(ref JemallocAlloc, _native, BulkSize, ObjectsPerInvoke);

    [Benchmark(OperationsPerInvoke = ObjectsPerInvoke), RequiresLibrary("tcmalloc", NativeLibraries.Tcmalloc)]
    public void Tcmalloc() => AllocScenarios.Bulk<TcmallocAllocator, nint>(ref TcmallocAlloc, _native, BulkSize, ObjectsPerInvoke);

    [Benchmark(OperationsPerInvoke = ObjectsPerInvoke)]
    public void ManagedNew() => AllocScenarios.Bulk<ManagedNewAllocator, byte[]>(ref ManagedAlloc, _managed, BulkSize, ObjectsPerInvoke);

    [Benchmark(OperationsPerInvoke = ObjectsPerInvoke)]
    public void ArrayPoolShared() => AllocScenarios.Bulk<ArrayPoolAllocator, byte[]>(ref PoolAlloc, _managed, BulkSize, ObjectsPerInvoke);
}
