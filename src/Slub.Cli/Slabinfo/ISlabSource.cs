namespace Slub.Cli.Slabinfo;

/// <summary>What kind of thing an entry of the slab root is.</summary>
public enum SlabEntryKind
{
    /// <summary>A cache directory with attribute files.</summary>
    Cache,
    /// <summary>A symlink naming another cache (a merged cache's alias).</summary>
    Alias,
    /// <summary>Anything else (a regular file, a socket...). The kernel tool refuses these.</summary>
    Other,
}

/// <summary>One entry of the slab root, in the order the source lists them.</summary>
/// <param name="Name">The entry name (cache or alias name).</param>
/// <param name="Kind">Directory, symlink or other.</param>
/// <param name="Target">For an alias: the link text as stored (the tool keeps only the part after the last '/').</param>
/// <param name="FileType">For <see cref="SlabEntryKind.Other"/>: the readdir d_type value, printed by the tool's error.</param>
public sealed record SlabEntry(string Name, SlabEntryKind Kind, string? Target = null, int FileType = 0);

/// <summary>
/// Where <c>slabinfo</c> gets its data: the kernel's sysfs slab tree, an exported snapshot of it, or a live
/// process that uses the library. Paths are always "cache/attribute" relative to the slab root.
/// </summary>
public interface ISlabSource
{
    /// <summary>A short human description used in error messages ("/sys/kernel/slab", "process 1234").</summary>
    string Description { get; }

    /// <summary>Lists the slab root. Throws <see cref="SlabSourceException"/> when the source cannot be read.</summary>
    IReadOnlyList<SlabEntry> ListEntries();

    /// <summary>Returns the text of <paramref name="cache"/>/<paramref name="attribute"/>, or null when it does not exist.
    /// Throws <see cref="SlabSourceException"/> with <see cref="SlabSourceException.Code"/> "EACCES" when reading is refused.</summary>
    string? ReadAttribute(string cache, string attribute);

    /// <summary>Reads a debugfs trace file (<c>alloc_traces</c>, <c>free_traces</c>), or null when the source has none.</summary>
    string? ReadDebugAttribute(string cache, string attribute) => null;

    /// <summary>Writes <paramref name="text"/> to <paramref name="cache"/>/<paramref name="attribute"/>.
    /// Throws <see cref="SlabSourceException"/> when the write is refused or the file does not exist; when the file
    /// was opened and only the value was refused, with <see cref="SlabSourceException.ValueRefused"/> set.</summary>
    void WriteAttribute(string cache, string attribute, string text);
}

/// <summary>A slab source failed. <see cref="Code"/> is an errno-style name (ENOENT, EACCES, EIO, ...).</summary>
public sealed class SlabSourceException(string code, string message, Exception? inner = null) : Exception(message, inner)
{
    public string Code { get; } = code;

    /// <summary>For a write: the file was there and open, and the value itself was refused (sysfs answers write(2)
    /// with EINVAL, ERANGE, EIO...). The C tool sees this only at its unchecked fclose() and carries on; a file that
    /// cannot be opened at all is its fatal case.</summary>
    public bool ValueRefused { get; init; }
}
