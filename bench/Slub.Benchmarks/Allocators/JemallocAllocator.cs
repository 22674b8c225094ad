using System.Runtime.InteropServices;

namespace Slub.Benchmarks.Allocators;

/// <summary>
/// jemalloc through function pointers taken from its own library handle.
/// </summary>
/// <remarks>
/// Debian's libjemalloc.so.2 exports jemalloc's malloc/free unprefixed (it is meant for LD_PRELOAD). A
/// [LibraryImport] of "malloc" could bind to glibc's symbol instead, so the exports are looked up with
/// dlsym on the handle of that specific library (<see cref="NativeLibrary.GetExport"/>). Unmanaged function
/// pointer calls make the same GC transition as the P/Invokes of the other peers.
/// </remarks>
public readonly unsafe struct JemallocAllocator : IBenchAllocator<nint>
{
    private readonly delegate* unmanaged<nuint, void*> _malloc;
    private readonly delegate* unmanaged<void*, void> _free;

    private JemallocAllocator(nint library)
    {
        _malloc = (delegate* unmanaged<nuint, void*>)NativeLibrary.GetExport(library, "malloc");
        _free = (delegate* unmanaged<void*, void>)NativeLibrary.GetExport(library, "free");
    }

    /// <summary>Loads libjemalloc.so.2; throws <see cref="DllNotFoundException"/> when it is not installed.</summary>
    public static JemallocAllocator Load() => new(NativeLibrary.Load(NativeLibraries.Jemalloc));

    public nint Alloc() => (nint)_malloc(ObjectSize.Bytes);

    public void Free(nint obj) => _free((void*)obj);

    public void AllocBulk(Span<nint> objects)
    {
        for (int i = 0; i < objects.Length; i++) objects[i] = Alloc();
    }

    public void FreeBulk(ReadOnlySpan<nint> objects)
    {
        for (int i = 0; i < objects.Length; i++) Free(objects[i]);
    }
}
