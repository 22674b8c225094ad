using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using Slub.Benchmarks.Allocators;
using Slub.Benchmarks.Infrastructure;

namespace Slub.Benchmarks.Mobility;

/// <summary>
/// What mobility costs the fast path: the same 64-byte cache with the same constructor, with and without
/// SetupMobility. Issue #3 target: movable within 5% of plain. Mobility makes the cache track full slabs
/// (a list lock on full/partial transitions), so the 1,000-then-1,000 batch, which crosses slabs, is measured too.
/// </summary>
[Config(typeof(AllocatorConfig))]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
public class FastPathBenchmarks
{
    private const int Pairs = 1024;
    private const int Batch = 1000;
    private readonly nint[] _objects = new nint[Batch];
    private SlabAllocator? _allocator;
    private KmemCacheAllocator _plain;
    private KmemCacheAllocator _movable;

    [GlobalSetup]
    public void Setup()
    {
        _allocator = KmemCacheAllocator.CreateAllocator();
        _plain = new KmemCacheAllocator(_allocator.CreateCache("plain-64", MovableObjectTable.ObjectBytes,
            flags: SlabFlags.NoMerge, ctor: MovableObjectTable.Construct));
        _movable = new KmemCacheAllocator(new MovableObjectTable(1).CreateMovableCache(_allocator, "movable-64"));
    }

    [GlobalCleanup]
    public void Cleanup() => _allocator?.Dispose();

    [Benchmark(Baseline = true, OperationsPerInvoke = Pairs), BenchmarkCategory("pair")]
    public void PlainPair() => AllocScenarios.Pairs<KmemCacheAllocator, nint>(ref _plain, Pairs);

    [Benchmark(OperationsPerInvoke = Pairs), BenchmarkCategory("pair")]
    public void MovablePair() => AllocScenarios.Pairs<KmemCacheAllocator, nint>(ref _movable, Pairs);

    [Benchmark(Baseline = true, OperationsPerInvoke = Batch), BenchmarkCategory("batch 1000")]
    public void PlainBatch() => AllocScenarios.Batch<KmemCacheAllocator, nint>(ref _plain, _objects);

    [Benchmark(OperationsPerInvoke = Batch), BenchmarkCategory("batch 1000")]
    public void MovableBatch() => AllocScenarios.Batch<KmemCacheAllocator, nint>(ref _movable, _objects);
}
