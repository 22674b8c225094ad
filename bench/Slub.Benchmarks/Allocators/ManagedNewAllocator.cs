namespace Slub.Benchmarks.Allocators;

/// <summary>
/// Managed <c>new byte[64]</c>. "Free" is dropping the reference; the GC reclaims it later, and that cost is
/// included because the gen0 collections it triggers run inside the measured loops.
/// </summary>
/// <remarks>
/// Every new array is stored into a ring of <see cref="RingSize"/> slots, so the JIT cannot remove the
/// allocation as dead code and each object lives for the next 1,024 allocations (as in the anchor measurement).
/// A mutable struct: the scenarios take it by ref.
/// </remarks>
public struct ManagedNewAllocator : IBenchAllocator<byte[]>
{
    public const int RingSize = 1024;
    private readonly byte[]?[] _ring;
    private int _next;

    public ManagedNewAllocator() => _ring = new byte[RingSize][];

    public byte[] Alloc()
    {
        var a = new byte[ObjectSize.Bytes];
        _ring[_next++ & (RingSize - 1)] = a;
        return a;
    }

    public void Free(byte[] obj) { }

    public void AllocBulk(Span<byte[]> objects)
    {
        for (int i = 0; i < objects.Length; i++) objects[i] = Alloc();
    }

    public void FreeBulk(ReadOnlySpan<byte[]> objects) { }
}
