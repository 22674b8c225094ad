using BenchmarkDotNet.Attributes;
using Slub.Benchmarks.Infrastructure;

namespace Slub.Benchmarks.Allocators;

/// <summary>
/// Two threads, producer/consumer: this thread allocates, another frees (remote frees), through
/// <see cref="RemoteFreeHarness{TAlloc,THandle}"/>. Result: ns per object through the pipeline.
/// With 2 cores shared with other work, this table is the noisiest.
/// </summary>
public class RemoteFreeBenchmarks : AllocatorBenchmarkBase
{
    private const int Objects = 16384;
    private readonly List<IDisposable> _harnesses = new();
    private RemoteFreeHarness<KmemCacheAllocator, nint>? _kmem;
    private RemoteFreeHarness<GlibcAllocator, nint>? _glibc;
    private RemoteFreeHarness<MimallocAllocator, nint>? _mimalloc;
    private RemoteFreeHarness<JemallocAllocator, nint>? _jemalloc;
    private RemoteFreeHarness<TcmallocAllocator, nint>? _tcmalloc;
    private RemoteFreeHarness<ManagedNewAllocator, byte[]>? _managed;
    private RemoteFreeHarness<ArrayPoolAllocator, byte[]>? _pool;

    public override void Setup()
    {
        base.Setup();
        // Consumer threads sleep on a semaphore except while their own benchmark runs.
        _kmem = Add(new RemoteFreeHarness<KmemCacheAllocator, nint>(KmemAlloc, "kmem"));
        _glibc = Add(new RemoteFreeHarness<GlibcAllocator, nint>(GlibcAlloc, "glibc"));
        if (NativeLibraries.IsInstalled(NativeLibraries.Mimalloc)) _mimalloc = Add(new RemoteFreeHarness<MimallocAllocator, nint>(MimallocAlloc, "mimalloc"));
        if (NativeLibraries.IsInstalled(NativeLibraries.Jemalloc)) _jemalloc = Add(new RemoteFreeHarness<JemallocAllocator, nint>(JemallocAlloc, "jemalloc"));
        if (NativeLibraries.IsInstalled(NativeLibraries.Tcmalloc)) _tcmalloc = Add(new RemoteFreeHarness<TcmallocAllocator, nint>(TcmallocAlloc, "tcmalloc"));
        _managed = Add(new RemoteFreeHarness<ManagedNewAllocator, byte[]>(ManagedAlloc, "managed"));
        _pool = Add(new RemoteFreeHarness<ArrayPoolAllocator, byte[]>(PoolAlloc, "arraypool"));
    }

    private T Add<T>(T harness) where T : IDisposable
    {
        _harnesses.Add(harness);
        return harness;
    }

    public override void Cleanup()
    {
        foreach (var h in _harnesses) h.Dispose();
        base.Cleanup();
    }

    [Benchmark(OperationsPerInvoke = Objects)]
    public void KmemCache() => _kmem!.Run(Objects);

    [Benchmark(Baseline = true, OperationsPerInvoke = Objects)]
    public void NativeMemory() => _glibc!.Run(Objects);

    [Benchmark(OperationsPerInvoke = Objects), RequiresLibrary("mimalloc", NativeLibraries.Mimalloc)]
    public void Mimalloc() => _mimalloc!.Run(Objects);

    [Benchmark(OperationsPerInvoke = Objects), RequiresLibrary("jemalloc", NativeLibraries.Jemalloc)]
    public void Jemalloc() => _jemalloc!.Run(Objects);

    [Benchmark(OperationsPerInvoke = Objects), RequiresLibrary("tcmalloc", NativeLibraries.Tcmalloc)]
    public void Tcmalloc() => _tcmalloc!.Run(Objects);

    [Benchmark(OperationsPerInvoke = Objects)]
    public void ManagedNew() => _managed!.Run(Objects);

    [Benchmark(OperationsPerInvoke = Objects)]
    public void ArrayPoolShared() => _pool!.Run(Objects);
}
