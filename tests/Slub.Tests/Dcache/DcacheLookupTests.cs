using Slub.Dcache;

namespace Slub.Tests.Dcache;

public class DcacheLookupTests
{
    private static readonly string[] Paths =
    [
        "", "a", "a/b", "a/b/c", "a/b/c/leaf.txt", "a/b/other.txt", "a/x.txt", "empty", "docs",
        "docs/" + new string('n', 60) + ".md", "docs/ünïcødé-名前.txt", "top.txt",
        "missing", "a/missing", "a/b/c/missing.txt", "a/x.txt/below", "top.txt/x", "missing/deeper/still",
        "docs/" + new string('n', 60) + ".mdx", "a//b/./c/../other.txt", "a/b/",
    ];

    private static void AssertAgrees(DentryCache dc, TempTree t, IEnumerable<string> paths)
    {
        foreach (var p in paths)
        {
            var expected = FileSystemProbe.Probe(Path.GetFullPath(t.Full(p)));
            Assert.True(expected == dc.LookupPath(p).Kind, $"'{p}': cache says {dc.LookupPath(p).Kind}, disk says {expected}");
        }
    }

    [Fact]
    public void LookupsAgreeWithTheFileSystemAndHitTheCacheTheSecondTime()
    {
        using var a = TestAllocator.Create();
        using var t = TempTree.Standard();
        using var dc = new DentryCache(t.Root, a);
        AssertAgrees(dc, t, Paths);
        foreach (var p in Paths) Assert.Equal(0, dc.LookupPath(p).FileSystemQueries);   // negatives too
        Assert.True(dc.GetStatistics().Negative >= 4);
        Assert.Equal(dc.LookupPath("a/x.txt").Inode, dc.LookupPath(Path.Join(t.Root, "a", "x.txt")).Inode);
        Assert.Throws<ArgumentException>(() => dc.LookupPath("/definitely/not/under/root"));
    }

    [Fact]
    public void LongNamesAreExternalShortNamesInline()
    {
        using var a = TestAllocator.Create();
        using var t = TempTree.Standard();
        using var dc = new DentryCache(t.Root, a);
        string longName = new string('n', 60) + ".md";
        var docs = dc.Resolve("docs", out _);
        var longD = dc.Resolve("docs/" + longName, out var r);
        var shortD = dc.Resolve("top.txt", out _);
        Assert.Equal(InodeKind.File, r.Kind);
        Assert.Equal(longName, longD.Name);
        Assert.True((longD.Flags & DentryFlags.ExternalName) != 0);
        Assert.True((shortD.Flags & DentryFlags.ExternalName) == 0);
        Assert.Equal("top.txt", shortD.Name);
        var again = dc.Lookup(docs, longName);
        Assert.Equal(longD, again);
        foreach (var d in new[] { docs, longD, shortD, again }) dc.Put(d);
    }

    [Fact]
    public void RenamesDeletesAndCreatesWithNotificationsStayCoherent()
    {
        using var a = TestAllocator.Create();
        using var t = TempTree.Standard();
        using var dc = new DentryCache(t.Root, a);
        AssertAgrees(dc, t, Paths);

        // Rename a file.
        File.Move(t.Full("a/x.txt"), t.Full("a/y.txt"));
        dc.NotifyRenamed("a/x.txt", "a/y.txt");
        AssertAgrees(dc, t, ["a/x.txt", "a/y.txt"]);

        // Rename a directory with a cached subtree: the children move along, still cached.
        Directory.Move(t.Full("a/b"), t.Full("a/renamed"));
        dc.NotifyRenamed("a/b", "a/renamed");
        Assert.Equal(InodeKind.File, dc.LookupPath("a/renamed/c/leaf.txt").Kind);
        Assert.Equal(0, dc.LookupPath("a/renamed/c/leaf.txt").FileSystemQueries);
        AssertAgrees(dc, t, ["a/b", "a/b/c/leaf.txt", "a/renamed", "a/renamed/other.txt", "a/renamed/c/missing.txt"]);

        // Move into another directory over an existing cached file.
        File.Move(t.Full("top.txt"), t.Full("docs/ünïcødé-名前.txt"), overwrite: true);
        dc.NotifyRenamed("top.txt", "docs/ünïcødé-名前.txt");
        AssertAgrees(dc, t, ["top.txt", "docs/ünïcødé-名前.txt"]);

        // Delete a file: it becomes a negative dentry in place.
        File.Delete(t.Full("a/y.txt"));
        dc.NotifyDeleted("a/y.txt");
        var r = dc.LookupPath("a/y.txt");
        Assert.Equal(InodeKind.Negative, r.Kind);
        Assert.Equal(0, r.FileSystemQueries);

        // Create where a negative dentry was cached, and below a cached negative directory.
        t.File("missing/deeper/still");
        t.File("a/missing");
        dc.NotifyCreated("missing/deeper/still");
        dc.NotifyCreated("a/missing");
        AssertAgrees(dc, t, ["missing", "missing/deeper", "missing/deeper/still", "a/missing"]);

        // Delete a directory tree.
        Directory.Delete(t.Full("a/renamed"), recursive: true);
        dc.Invalidate("a/renamed");
        AssertAgrees(dc, t, ["a/renamed", "a/renamed/c", "a/renamed/c/leaf.txt", "a"]);

        // Invalidate everything.
        dc.Invalidate("");
        AssertAgrees(dc, t, Paths);
    }

    [Fact]
    public void WithoutNotificationTheCacheKeepsItsAnswer()
    {
        using var a = TestAllocator.Create();
        using var t = TempTree.Standard();
        using var dc = new DentryCache(t.Root, a);
        Assert.False(dc.Exists("new.txt"));
        t.File("new.txt");
        Assert.False(dc.Exists("new.txt"));   // a cached negative dentry answers until told
        dc.NotifyCreated("new.txt");
        Assert.True(dc.Exists("new.txt"));
    }

    [Fact]
    public void WorksUnderSlubDebugChecks()
    {
        using var a = TestAllocator.Create(slubDebug: "FZ");
        using var t = TempTree.Standard();
        using var dc = new DentryCache(t.Root, a);
        AssertAgrees(dc, t, Paths);
        dc.ShrinkAll();
        dc.Cache.Shrink();
        AssertAgrees(dc, t, Paths);
    }
}
