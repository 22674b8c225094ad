using Slub.Dcache;

namespace Slub.Tests.Dcache;

/// <summary>
/// Use after dispose: the dentries (root included) are freed, so an operation must throw
/// <see cref="ObjectDisposedException"/> naming the dcache rather than read or lock freed slab memory (which
/// another cache may own by then) or, after the allocator's disposal, crash the process.
/// </summary>
public class DcacheDisposeTests
{
    [Fact]
    public void OperationsAfterDisposeThrowObjectDisposed()
    {
        using var t = TempTree.Standard();
        using var a = TestAllocator.Create();
        var dc = new DentryCache(t.Root, a);
        Assert.True(dc.Exists("a/x.txt"));
        var root = dc.Root;
        dc.Dispose();
        dc.Dispose();   // idempotent
        var e = Assert.Throws<ObjectDisposedException>(() => dc.LookupPath("a/x.txt"));
        Assert.Contains(t.Root, e.Message);
        Assert.Throws<ObjectDisposedException>(() => dc.Invalidate("a/x.txt"));   // used to dget the freed root
        Assert.Throws<ObjectDisposedException>(() => dc.Get(root));               // used to lock and count freed memory
        Assert.Throws<ObjectDisposedException>(() => dc.Put(root));
        Assert.Throws<ObjectDisposedException>(() => dc.Lookup(root, "a"));
        Assert.Throws<ObjectDisposedException>(() => dc.Prune(10));
        Assert.Throws<ObjectDisposedException>(() => dc.ShrinkAll());
        Assert.Throws<ObjectDisposedException>(() => dc.LruSnapshot());
        // The root is freed too: the property handed out a handle to it, whose Name then read freed memory (an
        // ArgumentNullException from the decoded name, or whatever the slot held next).
        var re = Assert.Throws<ObjectDisposedException>(() => dc.Root);
        Assert.Contains(t.Root, re.Message);
    }

    [Fact]
    public void OperationsAfterTheAllocatorIsDisposedThrowInsteadOfCrashing()
    {
        using var t = TempTree.Standard();
        var a = TestAllocator.Create();
        var dc = new DentryCache(t.Root, a);
        Assert.True(dc.Exists("a/b/other.txt"));
        a.Dispose();
        Assert.Throws<ObjectDisposedException>(() => dc.LookupPath("a/b/other.txt"));   // was an AccessViolationException
        Assert.Throws<ObjectDisposedException>(() => dc.Prune(10));
        Assert.Throws<ObjectDisposedException>(() => dc.Get(dc.Root));
        Assert.Throws<ObjectDisposedException>(() => dc.Root.Name);   // was an AccessViolationException: the arena is unmapped
        dc.Dispose();   // the memory is gone: only marks it disposed
        Assert.Throws<ObjectDisposedException>(() => dc.Exists("a"));
    }
}
