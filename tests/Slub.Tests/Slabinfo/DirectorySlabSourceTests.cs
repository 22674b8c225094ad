using Slub.Cli.Slabinfo;

namespace Slub.Tests.Slabinfo;

public sealed class DirectorySlabSourceTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"slabinfo-dir-{Guid.NewGuid():N}");

    public DirectorySlabSourceTests()
    {
        Directory.CreateDirectory(Path.Combine(_dir, "a_cache"));
        Directory.CreateDirectory(Path.Combine(_dir, ":0000064"));
        File.WriteAllText(Path.Combine(_dir, "a_cache", "objects"), "12 N0=12\n");
        File.WriteAllText(Path.Combine(_dir, "a_cache", "shrink"), "");
        File.CreateSymbolicLink(Path.Combine(_dir, "b_alias"), "../slab/:0000064");
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void ListsCachesAndAliasesWithTheirLinkText()
    {
        var entries = new DirectorySlabSource(_dir).ListEntries();
        Assert.Equal(3, entries.Count);
        Assert.Contains(new SlabEntry("a_cache", SlabEntryKind.Cache), entries);
        Assert.Contains(new SlabEntry("b_alias", SlabEntryKind.Alias, "../slab/:0000064"), entries);
    }

    [Fact]
    public void RecordedOrderDecidesTheOrder()
    {
        File.WriteAllText(Path.Combine(_dir, DirectorySlabSource.OrderFileName), "b_alias\n:0000064\n.readdir-order\na_cache\n");
        var names = new DirectorySlabSource(_dir).ListEntries().Select(e => e.Name);
        Assert.Equal(["b_alias", ":0000064", ".readdir-order", "a_cache"], names);
    }

    [Fact]
    public void RegularFileAtTheTopIsAnUnknownType()
    {
        File.WriteAllText(Path.Combine(_dir, "README"), "x");
        var r = SlabinfoFixtures.Run("--sysfs", _dir);
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("Unknown file type 8\n", r.Err);
    }

    [Fact]
    public void ReadsTextOrNullAndWritesOnlyExistingFiles()
    {
        var src = new DirectorySlabSource(_dir);
        Assert.Equal("12 N0=12\n", src.ReadAttribute("a_cache", "objects"));
        Assert.Null(src.ReadAttribute("a_cache", "missing"));
        Assert.Null(src.ReadAttribute("*", "alloc_calls"));
        src.WriteAttribute("a_cache", "shrink", "1\n");
        Assert.Equal("1\n", File.ReadAllText(Path.Combine(_dir, "a_cache", "shrink")));
        var e = Assert.Throws<SlabSourceException>(() => src.WriteAttribute("a_cache", "sanity", "1\n"));
        Assert.Equal("ENOENT", e.Code);
        Assert.False(File.Exists(Path.Combine(_dir, "a_cache", "sanity")));
    }

    [Fact]
    public void PermissionDeniedReadsAsZeroInTheSeriesToolButIsFatalInTheCurrentOne()
    {
        var src = new DenyingSource();
        var smo = SlabinfoFixtures.Run(["-z"], _ => src);
        Assert.Equal(0, smo.ExitCode);
        Assert.Contains("\nlocked ", smo.Out);
        var current = SlabinfoFixtures.Run(["--compat", "current"], _ => src);
        Assert.Equal(1, current.ExitCode);
        Assert.Equal("Permission denied, Try using superuser\n", current.Err);
    }

    private sealed class DenyingSource : ISlabSource
    {
        public string Description => "denying";
        public IReadOnlyList<SlabEntry> ListEntries() =>
            [new("locked", SlabEntryKind.Cache), new("open", SlabEntryKind.Cache)];
        public string? ReadAttribute(string cache, string attribute) =>
            cache == "locked" ? throw new SlabSourceException("EACCES", "Permission denied") : null;
        public void WriteAttribute(string cache, string attribute, string text) { }
    }
}
