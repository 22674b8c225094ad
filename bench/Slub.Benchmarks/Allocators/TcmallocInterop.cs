using System.Runtime.InteropServices;

namespace Slub.Benchmarks.Allocators;

/// <summary>gperftools' prefixed entry points (tc_malloc/tc_free), so the call cannot end up in glibc's malloc.</summary>
internal static unsafe partial class TcmallocInterop
{
    [LibraryImport(NativeLibraries.Tcmalloc, EntryPoint = "tc_malloc")]
    internal static partial void* Malloc(nuint size);

    [LibraryImport(NativeLibraries.Tcmalloc, EntryPoint = "tc_free")]
    internal static partial void Free(void* p);
}
