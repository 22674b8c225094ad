namespace Slub.Benchmarks.Allocators;

/// <summary>mimalloc through P/Invoke (<see cref="MimallocInterop"/>). It has no bulk API, so bulk is a loop.</summary>
public readonly unsafe struct MimallocAllocator : IBenchAllocator<nint>
{
    public nint Alloc() => (nint)MimallocInterop.Malloc(ObjectSize.Bytes);

    public void Free(nint obj) => MimallocInterop.Free((void*)obj);

    public void AllocBulk(Span<nint> objects)
    {
        for (int i = 0; i < objects.Length; i++) objects[i] = Alloc();
    }

    public void FreeBulk(ReadOnlySpan<nint> objects)
    {
        for (int i = 0; i < objects.Length; i++) Free(objects[i]);
    }
}
