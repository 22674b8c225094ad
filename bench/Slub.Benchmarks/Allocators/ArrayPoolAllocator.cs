using System.Buffers;

namespace Slub.Benchmarks.Allocators;

/// <summary><c>ArrayPool&lt;byte&gt;.Shared.Rent(64)/Return</c>: the managed world's pooled alternative (per-thread bucket, then per-core stacks).</summary>
public readonly struct ArrayPoolAllocator : IBenchAllocator<byte[]>
{
    public byte[] Alloc() => ArrayPool<byte>.Shared.Rent(ObjectSize.Bytes);

    public void Free(byte[] obj) => ArrayPool<byte>.Shared.Return(obj);

    public void AllocBulk(Span<byte[]> objects)
    {
        for (int i = 0; i < objects.Length; i++) objects[i] = Alloc();
    }

    public void FreeBulk(ReadOnlySpan<byte[]> objects)
    {
        for (int i = 0; i < objects.Length; i++) Free(objects[i]);
    }
}
