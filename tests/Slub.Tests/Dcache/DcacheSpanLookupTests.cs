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
        // Warm up first: the first calls of each method may allocate on this thread (compiling them, the tiering
        // stubs), which is not what the test is about — once warm, a cached lookup allocates nothing.
        LookupResult r = default;
        for (int i = 0; i < 200; i++) r = dc.LookupPath(span);
        var statsBefore = dc.GetStatistics();
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 100; i++) r = dc.LookupPath(span);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        var statsAfter = dc.GetStatistics();
        Assert.True(r.Exists);
        Assert.True(allocated == 0, $"{allocated} bytes allocated by 100 cached lookups; before {statsBefore}, after {statsAfter}");
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
