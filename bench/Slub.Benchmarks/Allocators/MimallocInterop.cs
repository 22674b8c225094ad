using System.Runtime.InteropServices;

namespace Slub.Benchmarks.Allocators;

/// <summary>mimalloc's own entry points (mi_malloc/mi_free), so the call cannot end up in glibc's malloc.</summary>
internal static unsafe partial class MimallocInterop
{
    [LibraryImport(NativeLibraries.Mimalloc, EntryPoint = "mi_malloc")]
    internal static partial void* Malloc(nuint size);

    [LibraryImport(NativeLibraries.Mimalloc, EntryPoint = "mi_free")]
    internal static partial void Free(void* p);
}
