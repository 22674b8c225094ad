using Slub.Dcache;

namespace Slub.Tests.Dcache;

/// <summary>
/// <see cref="DentryCache.LookupPath(ReadOnlySpan{char})"/>: a path held in a span (a slice of a larger buffer) is
/// answered like the string overload, and a cached one without building a string.
/// </summary>
public class DcacheSpanLookupTests
{
    [Fact]
    public void SpanLookupsAnswerAsStringLookupsDo()
    {
        using var t = TempTree.Standard();
        using var a = TestAllocator.Create();
        var dc = new DentryCache(t.Root, a);
        string[] paths =
        [
            "a/b/c/leaf.txt", "a/x.txt", "a/missing", "a/x.txt/below", "empty", "", "a//b/", "./a/../top.txt",
            "docs/ünïcødé-名前.txt", t.Full("a/b/other.txt"), t.Root, "docs/" + new string('n', 60) + ".md",
        ];
        foreach (string p in paths)
        {
            // The span is a slice of a longer buffer, as a path parsed out of a request would be.
            string buffer = "<<" + p + ">>";
            var span = buffer.AsSpan(2, p.Length);
            var first = dc.LookupPath(span);    // may ask the file system
            var cached = dc.LookupPath(span);   // answered from the cache
            var viaString = dc.LookupPath(p);
            Assert.Equal(viaString with { FileSystemQueries = 0 }, first with { FileSystemQueries = 0 });
            Assert.Equal(viaString, cached);
            Assert.Equal(0, cached.FileSystemQueries);
        }
    }

    [Fact]
    public void ACachedSpanLookupBuildsNoString()
    {
        using var t = TempTree.Standard();
        using var a = TestAllocator.Create();
        var dc = new DentryCache(t.Root, a);
        string buffer = "GET a/b/c/leaf.txt HTTP/1.1";
        var span = buffer.AsSpan(4, "a/b/c/leaf.txt".Length);
        Assert.True(dc.LookupPath(span).Exists);   // caches the components
        // Warm up first (the first cached walks of the process may allocate for one-time initialisation), then
        // count in windows: a stray one-time allocation lands in one window, per-call allocation in every one.
        LookupResult r = default;
        for (int i = 0; i < 200; i++) r = dc.LookupPath(span);
        var statsBefore = dc.GetStatistics();
        long[] windows = AllocationWindows.UntilClean(3, () =>
        {
            var inBuffer = buffer.AsSpan(4, "a/b/c/leaf.txt".Length);   // a span cannot be captured
            for (int i = 0; i < 100; i++) r = dc.LookupPath(inBuffer);
        });
        Assert.True(r.Exists);
        Assert.True(windows[^1] == 0,
            $"every window of 100 cached lookups allocated: {string.Join(", ", windows)} bytes; before {statsBefore}, after {dc.GetStatistics()}");
    }

    [Fact]
    public void SpanLookupsRefuseWhatStringLookupsRefuse()
    {
        using var t = TempTree.Standard();
        using var a = TestAllocator.Create();
        var dc = new DentryCache(t.Root, a);
        var nul = Assert.Throws<ArgumentException>(() => dc.LookupPath("a/x\0.txt".AsSpan()));
        Assert.Equal("path", nul.ParamName);
        Assert.Contains(t.Root, nul.Message);
        Assert.Throws<ArgumentException>(() => dc.LookupPath("/definitely/not/under/the/root".AsSpan()));
        dc.Dispose();
        Assert.Throws<ObjectDisposedException>(() => dc.LookupPath("a/x.txt".AsSpan()));
    }
}
