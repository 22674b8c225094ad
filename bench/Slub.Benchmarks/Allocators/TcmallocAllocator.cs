namespace Slub.Benchmarks.Allocators;

/// <summary>tcmalloc through P/Invoke (<see cref="TcmallocInterop"/>). It has no bulk API, so bulk is a loop.</summary>
public readonly unsafe struct TcmallocAllocator : IBenchAllocator<nint>
{
    public nint Alloc() => (nint)TcmallocInterop.Malloc(ObjectSize.Bytes);

    public void Free(nint obj) => TcmallocInterop.Free((void*)obj);

    public void AllocBulk(Span<nint> objects)
    {
        for (int i = 0; i < objects.Length; i++) objects[i] = Alloc();
    }

    public void FreeBulk(ReadOnlySpan<nint> objects)
    {
        for (int i = 0; i < objects.Length; i++) Free(objects[i]);
    }
}
