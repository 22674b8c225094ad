using System.Text;
using System.Text.RegularExpressions;
using Slub.Trace;

namespace Slub.Tests.Replay;

/// <summary>
/// One address holds one object at a time, whatever its cache: the trace's hashed pointers are stable per
/// address, so an allocation of a pointer still live anywhere in the model means its old object was freed
/// without an event, and a kfree of an object of a filtered-out cache is no free "from before the capture".
/// </summary>
public class PointerReuseTests
{
    private static string Alloc(int cpu, string ptr, string cache, int bytes) => FtraceLines.Alloc(ptr, cache, bytes, cpu);

    private static string Free(int cpu, string ptr, string cache) => FtraceLines.Free(ptr, cache, cpu);

    private static string Kmalloc(string ptr, int bytes) =>
        $"  t-1 [000] ..... 1.000000: kmalloc: call_site=f ptr={ptr} bytes_req={bytes} bytes_alloc={bytes} gfp_flags=GFP_KERNEL node=-1 accounted=false";

    private static string Kfree(string ptr) => $"  t-1 [001] ..... 1.000000: kfree: call_site=g ptr={ptr}";

    private static string P(int i) => FtraceLines.Ptr(i);

    private static ReplayResult Replay(IEnumerable<string> lines, TraceReplayOptions? options = null)
    {
        var text = string.Join("\n", lines) + "\n";
        using var reader = new TraceLineReader(new MemoryStream(Encoding.UTF8.GetBytes(text)), "reuse.trace");
        using var replayer = new TraceReplayer(options ?? new TraceReplayOptions { Cpus = 2 });
        return replayer.Run(reader);
    }

    [Fact]
    public void AnAddressLiveInAnotherCacheWasFreedUnseen()
    {
        // The dentry's slab went back to the page allocator without the free in the trace; its page now holds a filp.
        var r = Replay([Alloc(0, P(1), "dentry", 192), Alloc(1, P(1), "filp", 256), Free(1, P(1), "filp")]);
        var dentry = r.Caches.Single(c => c.Name == "dentry");
        Assert.Equal((1, 0), (dentry.UnseenFrees, dentry.LiveObjects));
        var filp = r.Caches.Single(c => c.Name == "filp");
        Assert.Equal((1, 1, 0, 0), (filp.Allocs, filp.Frees, filp.UnseenFrees, filp.LiveObjects));
        Assert.Equal(0, r.SkippedFrees);
    }

    [Fact]
    public void AKmallocOfAnAddressLiveInAnotherKmallocCacheFreesTheOldObject()
    {
        var r = Replay([Kmalloc(P(1), 64), Kmalloc(P(1), 128), Kfree(P(1))]);
        var k64 = r.Caches.Single(c => c.Name == "kmalloc-64");
        Assert.Equal((1, 0), (k64.UnseenFrees, k64.LiveObjects));
        var k128 = r.Caches.Single(c => c.Name == "kmalloc-128");
        Assert.Equal((1, 0), (k128.Frees, k128.LiveObjects));
        Assert.Equal(0, r.SkippedFrees);
    }

    [Fact]
    public void AKfreeOfAFilteredOutCachesObjectIsNotASkippedFree()
    {
        var r = Replay([
            Alloc(0, P(1), "dentry", 192),
            Kmalloc(P(2), 64),                 // kmalloc-64: filtered out
            Alloc(0, P(3), "filp", 256),       // filtered out, freed by kfree below
            Kfree(P(2)),
            Kfree(P(3)),
            Kfree(P(9)),                       // allocated before the capture: the one skipped free
            Kfree(P(1)),
        ], new TraceReplayOptions { Cpus = 2, Caches = new Regex("^dentry$") });
        Assert.Equal(1, r.SkippedFrees);
        var dentry = r.Caches.Single();
        Assert.Equal((1, 1, 0), (dentry.Allocs, dentry.Frees, dentry.LiveObjects));
    }
}
