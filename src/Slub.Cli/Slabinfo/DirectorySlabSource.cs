namespace Slub.Cli.Slabinfo;

/// <summary>
/// A slab tree on disk: the kernel's <c>/sys/kernel/slab</c> (or <c>/sys/slab</c>), or a snapshot exported as plain
/// files (cache directories with attribute files, aliases as symlinks).
/// </summary>
/// <remarks>
/// Entries are listed in raw readdir order, as the C tool sees them, because several outputs depend on that order
/// (alias ties, sorts without a tie-break). A checked-out snapshot cannot keep its readdir order across
/// filesystems, so a snapshot may carry a file <c>.readdir-order</c> at its top level: one entry name per line, in
/// the order the directory listed when its golden files were made. When that file exists it decides the order.
/// The C tool skips names starting with '.', so the file does not disturb it.
/// Writes open an existing file only (as on sysfs, where attribute files cannot be created); the C tool's fopen("w")
/// would create a missing file in a plain directory, which this source deliberately does not do.
/// </remarks>
public sealed class DirectorySlabSource : ISlabSource
{
    /// <summary>Name of the optional order file in a snapshot.</summary>
    public const string OrderFileName = ".readdir-order";

    /// <summary>The kernel paths tried, in order, when no directory is given.</summary>
    public static readonly string[] KernelPaths = ["/sys/kernel/slab", "/sys/slab"];

    private readonly string? _debugRoot;

    public DirectorySlabSource(string root, string? debugRoot = null)
    {
        Root = root;
        _debugRoot = debugRoot;
    }

    /// <summary>The slab root directory.</summary>
    public string Root { get; }

    public string Description => Root;

    /// <summary>Name of the optional file recording the page size of the machine a snapshot was taken on.</summary>
    public const string PageSizeFileName = ".page-size";

    /// <summary>The page size recorded in a snapshot's <c>.page-size</c> file, or null (then the running system's is used).</summary>
    public int? RecordedPageSize =>
        File.Exists(Path.Combine(Root, PageSizeFileName)) &&
        int.TryParse(File.ReadAllText(Path.Combine(Root, PageSizeFileName)).Trim(), out var size) && size > 0
            ? size
            : null;

    /// <summary>The kernel's slab directory (with the kernel's debugfs trace directory), or null if neither path exists.</summary>
    public static DirectorySlabSource? OpenKernel()
    {
        foreach (var path in KernelPaths)
            if (Directory.Exists(path))
                return new DirectorySlabSource(path, "/sys/kernel/debug/slab");
        return null;
    }

    public IReadOnlyList<SlabEntry> ListEntries()
    {
        try
        {
            var orderFile = Path.Combine(Root, OrderFileName);
            IEnumerable<string> names = File.Exists(orderFile)
                ? File.ReadAllLines(orderFile).Where(n => n.Length > 0)
                : new DirectoryInfo(Root).EnumerateFileSystemInfos().Select(i => i.Name);
            var result = new List<SlabEntry>();
            foreach (var name in names)
                result.Add(Describe(name));
            return result;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.SecurityException)
        {
            throw new SlabSourceException(e is UnauthorizedAccessException ? "EACCES" : "EIO",
                $"cannot list slab directory {Root}: {e.Message}", e);
        }
    }

    private SlabEntry Describe(string name)
    {
        var path = Path.Combine(Root, name);
        var info = new FileInfo(path);
        if (!info.Exists && !Directory.Exists(path) && info.LinkTarget is null)
            throw new SlabSourceException("ENOENT", $"{OrderFileName} in {Root} names a missing entry '{name}'");
        if (info.LinkTarget is { } target)
            return new SlabEntry(name, SlabEntryKind.Alias, target);
        if (info.Attributes.HasFlag(FileAttributes.Directory))
            return new SlabEntry(name, SlabEntryKind.Cache);
        return new SlabEntry(name, SlabEntryKind.Other, FileType: DtReg);
    }

    // readdir's d_type for what is neither a directory nor a symlink. .NET cannot tell a fifo or socket from a
    // regular file here, so every such entry reports DT_REG (8), the case that matters (a stray file in a snapshot).
    private const int DtReg = 8;

    public string? ReadAttribute(string cache, string attribute) => ReadFile(Path.Combine(Root, cache, attribute));

    public string? ReadDebugAttribute(string cache, string attribute) =>
        _debugRoot is null ? null : ReadFile(Path.Combine(_debugRoot, cache, attribute));

    private static string? ReadFile(string path)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.None);
            using var reader = new StreamReader(stream, System.Text.Encoding.UTF8);
            return reader.ReadToEnd();
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        catch (UnauthorizedAccessException e)
        {
            throw new SlabSourceException("EACCES", "Permission denied", e);
        }
        catch (IOException)
        {
            // sysfs answers some reads with an error (EIO, EINVAL); the C tool sees an empty buffer then.
            return null;
        }
    }

    public void WriteAttribute(string cache, string attribute, string text)
    {
        var path = Path.Combine(Root, cache, attribute);
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Truncate, FileAccess.Write, FileShare.ReadWrite);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            var code = e switch
            {
                FileNotFoundException or DirectoryNotFoundException => "ENOENT",
                UnauthorizedAccessException => "EACCES",
                _ => "EIO",
            };
            throw new SlabSourceException(code, $"cannot write {path}: {e.Message}", e);
        }
        try
        {
            // Disposing flushes: sysfs refuses a bad value in that write(2), as the C tool's fclose() sees it.
            using (stream)
                stream.Write(System.Text.Encoding.UTF8.GetBytes(text));
        }
        catch (IOException e)
        {
            throw new SlabSourceException("EIO", $"cannot write {path}: {e.Message}", e) { ValueRefused = true };
        }
    }
}
