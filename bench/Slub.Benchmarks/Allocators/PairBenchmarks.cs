using BenchmarkDotNet.Attributes;
using Slub.Benchmarks.Infrastructure;

namespace Slub.Benchmarks.Allocators;

/// <summary>
/// Hot alloc+free pair of one 64-byte object. Result: ns per pair (OperationsPerInvoke). Issue #2 target:
/// KmemCache at most 0.35x NativeMemory, 0 B allocated.
/// </summary>
public class PairBenchmarks : AllocatorBenchmarkBase
{
    private const int Pairs = 1024;

    [Benchmark(OperationsPerInvoke = Pairs)]
    public void KmemCache() => AllocScenarios.Pairs<KmemCacheAllocator, nint>(ref KmemAlloc, Pairs);

    [Benchmark(Baseline = true, OperationsPerInvoke = Pairs)]
    public void NativeMemory() => AllocScenarios.Pairs<GlibcAllocator, nint>(ref GlibcAlloc, Pairs);

    [Benchmark(OperationsPerInvoke = Pairs), RequiresLibrary("mimalloc", NativeLibraries.Mimalloc)]
    public void Mimalloc() => AllocScenarios.Pairs<MimallocAllocator, nint>(ref MimallocAlloc, Pairs);

    [Benchmark(OperationsPerInvoke = Pairs), RequiresLibrary("jemalloc", NativeLibraries.Jemalloc)]
    public void Jemalloc() => AllocScenarios.Pairs<JemallocAllocator, nint>(ref JemallocAlloc, Pairs);

    [Benchmark(OperationsPerInvoke = Pairs), RequiresLibrary("tcmalloc", NativeLibraries.Tcmalloc)]
    public void Tcmalloc() => AllocScenarios.Pairs<TcmallocAllocator, nint>(ref TcmallocAlloc, Pairs);

    [Benchmark(OperationsPerInvoke = Pairs)]
    public void ManagedNew() => AllocScenarios.Pairs<ManagedNewAllocator, byte[]>(ref ManagedAlloc, Pairs);

    [Benchmark(OperationsPerInvoke = Pairs)]
    public void ArrayPoolShared() => AllocScenarios.Pairs<ArrayPoolAllocator, byte[]>(ref PoolAlloc, Pairs);
}
