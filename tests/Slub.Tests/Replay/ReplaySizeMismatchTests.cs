using System.Text.Json;
using Slub.Cli.Replay;

namespace Slub.Tests.Replay;

/// <summary>
/// A cache whose events report another <c>bytes_alloc</c> than its first one is replayed at its first size; the
/// replay says so once per cache on standard error, naming the file, the line, the cache and both sizes.
/// </summary>
public class ReplaySizeMismatchTests
{
    private static string Alloc(string name, ulong ptr, int bytes, double ts = 1.0) => FtraceLines.Alloc(FtraceLines.Ptr((long)ptr), name, bytes, ts: ts);

    private static (int Code, string Stdout, string Stderr, string Path) Replay(string[] lines, bool json)
    {
        var path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"replay-size-{Guid.NewGuid():N}.trace");
        File.WriteAllText(path, string.Join("\n", lines) + "\n");
        try
        {
            var stdout = new StringWriter();
            var stderr = new StringWriter();
            int code = ReplayCommand.Run(new(path, json, null, null, null, null, false, null, "fill-fullest", 1, 1), stdout, stderr);
            return (code, stdout.ToString(), stderr.ToString(), path);
        }
        finally { File.Delete(path); }
    }

    private static readonly string[] Trace =
    [
        "# tracer: nop",
        Alloc("dentry", 1, 192),
        Alloc("dentry", 2, 192),
        Alloc("dentry", 3, 256),    // line 4: the first other size
        Alloc("dentry", 4, 320),    // another one: not reported again
        Alloc("filp", 5, 256),
        Alloc("filp", 6, 256),      // filp agrees with itself: no warning
    ];

    [Fact]
    public void OneWarningPerCacheNamesFileLineCacheAndBothSizes()
    {
        var (code, stdout, stderr, path) = Replay(Trace, json: false);
        Assert.True(code == 0, stderr);
        var warnings = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(warnings);
        Assert.Equal($"slub replay: warning: {path}:4: cache dentry: bytes_alloc=256, but its first event (line 2) had bytes_alloc=192; "
                     + "the whole cache is replayed with 192-byte slots (later events of other sizes in this cache are not reported)", warnings[0]);
        Assert.Contains("dentry", stdout);
    }

    [Fact]
    public void TheCacheKeepsItsFirstSizeAndTheJsonListsTheMismatch()
    {
        var (code, stdout, stderr, _) = Replay(Trace, json: true);
        Assert.True(code == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var m = Assert.Single(doc.RootElement.GetProperty("size_mismatches").EnumerateArray());
        Assert.Equal("dentry", m.GetProperty("cache").GetString());
        Assert.Equal(4, m.GetProperty("line").GetInt64());
        Assert.Equal(256, m.GetProperty("bytes_alloc").GetInt32());
        Assert.Equal(2, m.GetProperty("first_line").GetInt64());
        Assert.Equal(192, m.GetProperty("first_bytes_alloc").GetInt32());
        var dentry = doc.RootElement.GetProperty("caches").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "dentry");
        Assert.Equal(192, dentry.GetProperty("slab_size").GetInt32());
        Assert.Equal(4, dentry.GetProperty("allocs").GetInt64());
    }

    [Fact]
    public void ATraceWhoseCachesAgreeHasNoWarning()
    {
        var (code, stdout, stderr, _) = Replay([Alloc("dentry", 1, 192), Alloc("dentry", 2, 192)], json: true);
        Assert.True(code == 0, stderr);
        Assert.Equal("", stderr);
        using var doc = JsonDocument.Parse(stdout);
        Assert.Equal(0, doc.RootElement.GetProperty("size_mismatches").GetArrayLength());
    }

    /// <summary>Through the library: a kmalloc of the size a <c>kmem_cache_alloc</c> named differently is a mismatch too.</summary>
    [Fact]
    public void AKmallocIntoACacheFirstSeenWithAnotherSizeIsRecorded()
    {
        using var r = new Slub.Trace.TraceReplayer(new Slub.Trace.TraceReplayOptions { Cpus = 1 });
        r.SetPosition("t.trace", 0);
        r.Feed(System.Text.Encoding.UTF8.GetBytes(Alloc("kmalloc-64", 1, 96)));
        r.Feed("  t-1 [000] ..... 2.000000: kmalloc: call_site=f+0x1/0x2 ptr=0000000000000002 bytes_req=50 bytes_alloc=64 gfp_flags=GFP_KERNEL node=-1 accounted=false"u8);
        var result = r.Finish();
        Assert.Equal(new Slub.Trace.SizeMismatch("kmalloc-64", 2, 64, 1, 96), Assert.Single(result.SizeMismatches));
    }
}
