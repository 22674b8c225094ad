using System.Runtime.InteropServices;

namespace Slub.Benchmarks.Allocators;

/// <summary>
/// <see cref="NativeMemory.Alloc(nuint)"/>/<see cref="NativeMemory.Free"/>: what a C# program gets without a
/// library, i.e. glibc malloc (tcache fast path) behind the runtime's System.Native shim. The baseline of
/// every allocator table.
/// </summary>
public readonly unsafe struct GlibcAllocator : IBenchAllocator<nint>
{
    public nint Alloc() => (nint)NativeMemory.Alloc(ObjectSize.Bytes);

    public void Free(nint obj) => NativeMemory.Free((void*)obj);

    public void AllocBulk(Span<nint> objects)
    {
        for (int i = 0; i < objects.Length; i++) objects[i] = Alloc();
    }

    public void FreeBulk(ReadOnlySpan<nint> objects)
    {
        for (int i = 0; i < objects.Length; i++) Free(objects[i]);
    }
}
