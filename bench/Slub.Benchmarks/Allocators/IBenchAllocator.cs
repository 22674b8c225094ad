namespace Slub.Benchmarks.Allocators;

/// <summary>
/// One allocator under test, seen through the four operations the scenarios need.
/// </summary>
/// <remarks>
/// Implementations are structs and the scenarios are generic over them (<c>where TAlloc : struct</c>), so the
/// JIT compiles one copy of each scenario per allocator and the calls below are direct and inlinable: the
/// abstraction costs nothing, unlike an interface call (~1–2 ns), which would be a large share of a ~3 ns target.
/// </remarks>
/// <typeparam name="THandle">What an allocation returns: a native address, or a managed array.</typeparam>
public interface IBenchAllocator<THandle>
{
    /// <summary>Allocates one 64-byte object.</summary>
    THandle Alloc();

    /// <summary>Frees an object returned by <see cref="Alloc"/> (on any thread).</summary>
    void Free(THandle obj);

    /// <summary>Fills <paramref name="objects"/> with new objects: the allocator's bulk API, or a loop where it has none.</summary>
    void AllocBulk(Span<THandle> objects);

    /// <summary>Frees every object in <paramref name="objects"/>: the allocator's bulk API, or a loop where it has none.</summary>
    void FreeBulk(ReadOnlySpan<THandle> objects);
}
