using Slub.Cli.Slabinfo;

namespace Slub.Tests.Slabinfo;

/// <summary>
/// Locates the slabinfo fixtures in the source tree (they are read in place, not copied to the build output, because
/// they contain symlinks and a recorded readdir order) and runs the tool in-process.
/// </summary>
internal static class SlabinfoFixtures
{
    public static string Root { get; } = FindRoot();

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tests", "Slub.Tests", "Fixtures");
            if (Directory.Exists(Path.Combine(candidate, "sysfs")))
                return candidate;
        }
        throw new DirectoryNotFoundException("tests/Slub.Tests/Fixtures/sysfs not found above " + AppContext.BaseDirectory);
    }

    public static string Sysfs(string name) => Path.Combine(Root, "sysfs", name);

    public static string Golden(string fixture, string dialect, string name, string ext) =>
        Path.Combine(Root, "golden", fixture, dialect, $"{name}.{ext}");

    public sealed record Result(int ExitCode, string Out, string Err);

    public static Result Run(params string[] args) => Run(args, null);

    public static Result Run(IReadOnlyList<string> args, SlabinfoTool.SourceFactory? sources)
    {
        var output = new StringWriter { NewLine = "\n" };
        var error = new StringWriter { NewLine = "\n" };
        var rc = SlabinfoTool.Run(args, output, error, sources);
        return new Result(rc, output.ToString(), error.ToString());
    }

    /// <summary>Copies a snapshot (directories, files, symlinks, and its order file) into a fresh temporary directory.</summary>
    public static string CopyToTemp(string fixture)
    {
        var target = Path.Combine(Path.GetTempPath(), $"slabinfo-{fixture}-{Guid.NewGuid():N}");
        CopyTree(Sysfs(fixture), target);
        return target;
    }

    private static void CopyTree(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var entry in new DirectoryInfo(from).EnumerateFileSystemInfos())
        {
            var dest = Path.Combine(to, entry.Name);
            if (entry.LinkTarget is { } link)
                File.CreateSymbolicLink(dest, link);
            else if (entry is DirectoryInfo)
                CopyTree(entry.FullName, dest);
            else
                File.Copy(entry.FullName, dest);
        }
    }
}
