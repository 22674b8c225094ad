using Slub.Dcache;

namespace Slub.Tests.Dcache;

/// <summary>
/// A path holding a NUL character cannot name anything on Linux (the string ends at the NUL), so every public
/// path-taking member of <see cref="DentryCache"/> refuses it the same way: an <see cref="ArgumentException"/> that
/// names the parameter and the dcache, thrown before anything is walked, asked of the file system, cached,
/// referenced or invalidated. The paths are chosen so that the old behaviour would have changed visible state:
/// a NUL after a cached file or negative dentry (which the walks treat as the blocker of the path, and
/// invalidation drops), a NUL after an uncached directory (which the walk would ask the disk about), a NUL in a
/// rename's destination name (which <c>d_move</c> met only after the source had been looked up).
/// </summary>
public class DcacheNulPathTests
{
    public static readonly TheoryData<string> Members =
        ["LookupPath", "Resolve", "Exists", "IsCached", "Invalidate", "NotifyCreated", "NotifyDeleted", "NotifyRenamed.from", "NotifyRenamed.to"];

    /// <summary>Relative forms (the cached walk's input as given), absolute ones, and ones that need normalising.</summary>
    private static string[] NulPaths(string root) =>
    [
        "top.txt/\0", "top.txt/x\0y", "missing/\0", "a/x.txt\0", "a//b/\0/", "\0", "a/nul\0name", "docs/\0",
        root + "/top.txt/\0", root + "//a/x.txt\0", "./top.txt/\0", "a/../top.txt/x\0", root + "/a/b/../../missing/\0",
    ];

    private static readonly string[] Known = ["a", "a/x.txt", "top.txt", "missing", "a/gone", "a/b", "a/b/other.txt", "docs"];

    private static void Call(DentryCache dc, string member, string path)
    {
        switch (member)
        {
            case "LookupPath": dc.LookupPath(path); break;
            case "Resolve": dc.Put(dc.Resolve(path, out _)); break;
            case "Exists": dc.Exists(path); break;
            case "IsCached": dc.IsCached(path); break;
            case "Invalidate": dc.Invalidate(path); break;
            case "NotifyCreated": dc.NotifyCreated(path); break;
            case "NotifyDeleted": dc.NotifyDeleted(path); break;
            case "NotifyRenamed.from": dc.NotifyRenamed(path, "a/renamed"); break;
            case "NotifyRenamed.to": dc.NotifyRenamed("a/x.txt", path); break;
            default: throw new ArgumentOutOfRangeException(nameof(member), member, null);
        }
    }

    private static string ParamOf(string member) => member switch
    {
        "NotifyRenamed.from" => "from",
        "NotifyRenamed.to" => "to",
        _ => "path",
    };

    /// <summary>Everything a refused call could have changed: counters, which names are cached, the LRU with its referenced bits.</summary>
    private static string State(DentryCache dc) =>
        dc.GetStatistics() + " | " + dc.DentryState() + " | " + string.Join(",", Known.Select(k => k + "=" + dc.IsCached(k)))
        + " | " + string.Join(",", dc.LruSnapshot().Select(d => d.Name + ":" + d.Flags));

    [Theory]
    [MemberData(nameof(Members))]
    public void EveryPathTakingMemberRefusesANulBeforeTouchingAnything(string member)
    {
        using var a = TestAllocator.Create();
        using var t = TempTree.Standard();
        int probes = 0;
        using var dc = new DentryCache(t.Root, a, new DentryCacheOptions
        {
            Probe = p => { Interlocked.Increment(ref probes); return FileSystemProbe.Probe(p); },
        });
        Assert.Equal(InodeKind.File, dc.LookupPath("a/x.txt").Kind);
        Assert.Equal(InodeKind.File, dc.LookupPath("top.txt").Kind);
        Assert.Equal(InodeKind.Negative, dc.LookupPath("missing").Kind);
        Assert.Equal(InodeKind.Negative, dc.LookupPath("a/gone").Kind);
        Assert.Equal(InodeKind.Directory, dc.LookupPath("docs").Kind);
        Assert.Equal(InodeKind.Negative, dc.LookupPath("a/renamed").Kind);   // a rename that ran would drop it
        Assert.False(dc.IsCached("a/b"));   // a walk that ran would ask the disk about it and cache it
        string before = State(dc);
        int probesBefore = probes;

        foreach (string path in NulPaths(t.Root))
        {
            var e = Assert.ThrowsAny<ArgumentException>(() => Call(dc, member, path));
            Assert.IsType<ArgumentException>(e);   // not ArgumentNullException / ArgumentOutOfRangeException
            Assert.Equal(ParamOf(member), e.ParamName);
            Assert.Contains("dcache " + t.Root, e.Message);
            Assert.Contains("NUL", e.Message);
            Assert.Equal(before, State(dc));
            Assert.Equal(probesBefore, probes);
        }
        // The cache still answers from what it had: nothing was dropped, nothing new was cached.
        Assert.Equal(0, dc.LookupPath("top.txt").FileSystemQueries);
        Assert.Equal(0, dc.LookupPath("a/x.txt").FileSystemQueries);
        Assert.Equal(0, dc.LookupPath("missing").FileSystemQueries);
        Assert.Equal(1, dc.LookupPath("a/b").FileSystemQueries);
    }

    [Fact]
    public void TheOtherParameterOfARenameIsCheckedFirstOrSecondButNothingMoves()
    {
        using var a = TestAllocator.Create();
        using var t = TempTree.Standard();
        using var dc = new DentryCache(t.Root, a);
        ulong inode = dc.LookupPath("a/x.txt").Inode;
        var e = Assert.Throws<ArgumentException>(() => dc.NotifyRenamed("a/x.txt", "a/y\0z"));
        Assert.Equal("to", e.ParamName);
        e = Assert.Throws<ArgumentException>(() => dc.NotifyRenamed("a/x\0.txt", "a/y"));
        Assert.Equal("from", e.ParamName);
        e = Assert.Throws<ArgumentException>(() => dc.NotifyRenamed("a/\0", "b/\0"));
        Assert.Equal("from", e.ParamName);   // checked in parameter order
        var r = dc.LookupPath("a/x.txt");
        Assert.Equal((InodeKind.File, inode, 0), (r.Kind, r.Inode, r.FileSystemQueries));   // neither moved nor dropped
    }

    [Fact]
    public void ANullPathIsStillArgumentNullExceptionAndADisposedCacheStillObjectDisposed()
    {
        using var a = TestAllocator.Create();
        using var t = TempTree.Standard();
        var dc = new DentryCache(t.Root, a);
        Assert.Equal("path", Assert.Throws<ArgumentNullException>(() => dc.IsCached(null!)).ParamName);
        Assert.Equal("to", Assert.Throws<ArgumentNullException>(() => dc.NotifyRenamed("a", null!)).ParamName);
        dc.Dispose();
        Assert.Throws<ObjectDisposedException>(() => dc.LookupPath("a/\0"));
        Assert.Throws<ObjectDisposedException>(() => dc.NotifyRenamed("a/\0", "b"));
    }
}
