using System.Runtime.InteropServices;

namespace Slub.Benchmarks.Allocators;

/// <summary>
/// The native allocators compared against (Debian packages installed by bench/setup.sh) and whether each
/// one can be loaded here. A missing one is reported and its benchmarks are filtered out, never faked.
/// </summary>
public static class NativeLibraries
{
    public const string Mimalloc = "libmimalloc.so.2";          // Debian libmimalloc2.0
    public const string Jemalloc = "libjemalloc.so.2";          // Debian libjemalloc2
    public const string Tcmalloc = "libtcmalloc_minimal.so.4";  // Debian libtcmalloc-minimal4

    /// <summary>The allocators benchmarked through P/Invoke: display name, library file, Debian package.</summary>
    public static readonly (string Name, string Library, string Package)[] All =
    [
        ("mimalloc", Mimalloc, "libmimalloc2.0"),
        ("jemalloc", Jemalloc, "libjemalloc2"),
        ("tcmalloc", Tcmalloc, "libtcmalloc-minimal4"),
    ];

    private static readonly Dictionary<string, bool> s_installed = new();

    /// <summary>True if <paramref name="library"/> loads (dlopen). The handle is kept: the benchmarks use it.</summary>
    public static bool IsInstalled(string library)
    {
        lock (s_installed)
        {
            if (!s_installed.TryGetValue(library, out bool ok))
                s_installed[library] = ok = NativeLibrary.TryLoad(library, out _);
            return ok;
        }
    }

    /// <summary>One line per native allocator ("jemalloc: not installed (...)"), printed before a run.</summary>
    public static IEnumerable<string> Report() =>
        All.Select(a => IsInstalled(a.Library)
            ? $"{a.Name}: installed ({a.Library})"
            : $"{a.Name}: not installed ({a.Library}, Debian package {a.Package}; run bench/setup.sh) - its benchmarks are skipped");
}
