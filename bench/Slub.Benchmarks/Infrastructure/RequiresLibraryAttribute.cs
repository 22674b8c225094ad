namespace Slub.Benchmarks.Infrastructure;

/// <summary>
/// Marks a benchmark that calls a native library. <see cref="NativeLibraryFilter"/> drops it (and says so)
/// when the library does not load, instead of letting it fail or measure something else.
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class RequiresLibraryAttribute(string name, string library) : Attribute
{
    /// <summary>Display name, e.g. "jemalloc".</summary>
    public string Name { get; } = name;

    /// <summary>Library file, e.g. "libjemalloc.so.2".</summary>
    public string Library { get; } = library;
}
