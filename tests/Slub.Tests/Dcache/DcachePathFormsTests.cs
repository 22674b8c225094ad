using Slub.Dcache;

namespace Slub.Tests.Dcache;

/// <summary>
/// The spellings of a path that <see cref="DentryCache.LookupPath"/> answers through its cached walk without
/// normalising the string first (relative, absolute under the root, repeated or trailing '/') must answer as the
/// normalised path does, and the ones it must normalise ("." and "..", names starting with a dot, absolute
/// paths that only share a prefix with the root) must still be recognised. Plus the name encodings the walk
/// hashes: ASCII and non-ASCII names up to and past the 255-byte limit, and a name with a NUL.
/// </summary>
public class DcachePathFormsTests
{
    private static readonly string Max = new('m', DentryName.MaxLength);
    // 127 two-byte characters and one ASCII byte: 255 UTF-8 bytes from 128 chars.
    private static readonly string MaxUtf8 = new string('é', 127) + "z";

    private static TempTree Tree()
    {
        var t = TempTree.Standard();
        t.File("a/.hidden");
        t.File("a/..twodots");
        t.File("a/" + Max);
        t.File("a/" + MaxUtf8);
        t.File("a/del\u007fname");
        return t;
    }

    private static readonly string[] Canonical =
    [
        "a/b/c/leaf.txt", "a/x.txt", "a/b", "docs/ünïcødé-名前.txt", "a/.hidden", "a/..twodots", "a/" + Max, "a/" + MaxUtf8, "a/del\u007fname",
        "a/missing", "top.txt/x", "a/" + Max + "m", "a/" + MaxUtf8 + "z", "a/é" + Max[2..], "",
    ];

    private static IEnumerable<string> Spellings(string root, string rel)
    {
        yield return rel;
        yield return rel + "/";
        yield return rel.Replace("/", "//");
        yield return "./" + rel;
        yield return "a/../" + rel;
        yield return "missing/../" + rel;   // a cached negative dentry before "..": the walk must not stop there
        yield return "top.txt/./../" + rel;   // likewise a file
        yield return "//" + rel;   // rooted: the file system root, so only a test of Relative's error path when not under the root
        yield return root + "/" + rel;
        yield return root + "//" + rel.Replace("/", "//") + "/";
        yield return root + "/a/b/./../../" + rel;
        yield return root + "/missing/../" + rel;
    }

    [Fact]
    public void EverySpellingAnswersAsTheNormalisedPathAndHitsTheCache()
    {
        using var a = TestAllocator.Create();
        using var t = Tree();
        using var dc = new DentryCache(t.Root, a);
        Assert.Equal(InodeKind.Negative, dc.LookupPath("missing").Kind);
        Assert.Equal(InodeKind.File, dc.LookupPath("top.txt").Kind);
        foreach (var rel in Canonical)
        {
            var expected = FileSystemProbe.Probe(Path.GetFullPath(t.Full(rel)));
            var first = dc.LookupPath(rel);
            Assert.True(expected == first.Kind, $"'{rel}': cache says {first.Kind}, disk says {expected}");
            foreach (var s in Spellings(t.Root, rel))
            {
                if (Path.IsPathRooted(s) && !s.StartsWith(t.Root, StringComparison.Ordinal))
                {
                    Assert.Throws<ArgumentException>(() => dc.LookupPath(s));
                    continue;
                }
                var r = dc.LookupPath(s);
                Assert.True(first.Kind == r.Kind && first.Inode == r.Inode, $"'{s}' answers {r}, '{rel}' answered {first}");
                Assert.Equal(0, r.FileSystemQueries);
            }
        }
    }

    /// <summary>
    /// A NUL is refused in every spelling, the ones the cached walk takes as given and the ones it normalises alike
    /// (relative paths used to answer Negative and absolute ones to throw from Path.GetFullPath), and nothing is
    /// cached: not even the components before it. DcacheNulPathTests covers every other path-taking member.
    /// </summary>
    [Fact]
    public void ANameWithANulIsRefusedInEverySpellingAndCachesNothing()
    {
        using var a = TestAllocator.Create();
        using var t = Tree();
        using var dc = new DentryCache(t.Root, a);
        long dentries = dc.Count;
        foreach (string p in new[] { "a/nul\0name", "a//nul\0name/", t.Root + "/a/nul\0name", "./a/nul\0name", "a/../a/nul\0name" })
        {
            var e = Assert.Throws<ArgumentException>(() => dc.LookupPath(p));
            Assert.Equal("path", e.ParamName);
            Assert.Contains("dcache " + t.Root, e.Message);
        }
        Assert.Equal(dentries, dc.Count);
        Assert.False(dc.IsCached("a"));   // the walk never started
    }

    [Theory]
    [InlineData("plain.txt")]
    [InlineData("del\u007fand~")]
    [InlineData("\u0001")]
    [InlineData("ünïcødé-名前")]
    [InlineData("mixed-ascii-then-é")]
    [InlineData("emoji-\U0001F600")]
    [InlineData("nul\0inside")]
    [InlineData("slash/inside")]
    [InlineData("\u0080")]
    public void EncodeGivesTheUtf8BytesOrRejects(string name)
    {
        var buf = new byte[DentryName.MaxLength * 3];
        int len = DentryName.Encode(name, buf);
        if (name.Contains('\0') || name.Contains('/')) Assert.Equal(-1, len);
        else Assert.Equal(System.Text.Encoding.UTF8.GetBytes(name), buf[..len]);
    }

    [Fact]
    public void EncodeAtAndPastTheLengthLimit()
    {
        var buf = new byte[DentryName.MaxLength * 3];
        Assert.Equal(DentryName.MaxLength, DentryName.Encode(Max, buf));
        Assert.Equal(DentryName.MaxLength, DentryName.Encode(MaxUtf8, buf));
        Assert.Equal(System.Text.Encoding.UTF8.GetBytes(MaxUtf8), buf[..DentryName.MaxLength]);
        Assert.True(DentryName.Encode(Max + "m", buf) > DentryName.MaxLength);   // the walk rejects it
        Assert.True(DentryName.Encode(MaxUtf8 + "z", buf) > DentryName.MaxLength);
    }

    [Fact]
    public void TheRootAnswersAsADirectoryInEverySpelling()
    {
        using var a = TestAllocator.Create();
        using var t = Tree();
        using var dc = new DentryCache(t.Root, a);
        ulong ino = dc.LookupPath("").Inode;
        foreach (var s in new[] { "", ".", "./", "a/..", t.Root, t.Root + "/", t.Root + "//", t.Root + "/." })
        {
            var r = dc.LookupPath(s);
            Assert.True(r.Kind == InodeKind.Directory && r.Inode == ino, $"'{s}': {r}");
        }
    }

    [Fact]
    public void AnAbsolutePathThatOnlySharesAPrefixWithTheRootIsRejected()
    {
        using var a = TestAllocator.Create();
        using var t = Tree();
        string sibling = t.Root + "-sibling";
        Directory.CreateDirectory(sibling);
        t.File("-sibling/a");   // cached under the root with the name the sibling's path continues with
        try
        {
            using var dc = new DentryCache(t.Root, a);
            Assert.Equal(InodeKind.File, dc.LookupPath("-sibling/a").Kind);
            Assert.Throws<ArgumentException>(() => dc.LookupPath(sibling));
            Assert.Throws<ArgumentException>(() => dc.LookupPath(sibling + "/a"));
            Assert.Throws<ArgumentException>(() => dc.LookupPath(t.Root + "/../" + Path.GetFileName(sibling)));
            Assert.Throws<ArgumentException>(() => dc.LookupPath("../x"));
        }
        finally { Directory.Delete(sibling); }
    }

    [Fact]
    public void HitsCountEveryComponentOfEveryCachedWalk()
    {
        using var a = TestAllocator.Create();
        using var t = Tree();
        using var dc = new DentryCache(t.Root, a);
        dc.LookupPath("a/b/c/leaf.txt");
        var before = dc.GetStatistics();
        dc.LookupPath("a/b/c/leaf.txt");                  // 4 components
        dc.LookupPath(t.Root + "//a/b/c/leaf.txt/");      // 4
        dc.LookupPath("a/b/./c/../c/leaf.txt");            // normalised first: 4
        var after = dc.GetStatistics();
        Assert.Equal(12, after.Lookups - before.Lookups);
        Assert.Equal(12, after.Hits - before.Hits);
        Assert.Equal(before.Misses, after.Misses);
    }

    [Fact]
    public void CountersAreExactAfterConcurrentCachedLookups()
    {
        using var a = TestAllocator.Create();
        using var t = Tree();
        using var dc = new DentryCache(t.Root, a);
        string[] paths = ["a/b/c/leaf.txt", t.Root + "/a/x.txt", "a//b/", "missing", "top.txt/x"];   // 4 + 2 + 2 + 1 + 1 components
        foreach (var p in paths) dc.LookupPath(p);
        var before = dc.GetStatistics();
        const int Threads = 4, Rounds = 2_000;
        var threads = Enumerable.Range(0, Threads).Select(_ => new GuardedThread(() =>
        {
            for (int r = 0; r < Rounds; r++) foreach (var p in paths) dc.LookupPath(p);
        })).ToArray();
        foreach (var th in threads) th.Start();
        foreach (var th in threads) th.Join();
        var after = dc.GetStatistics();
        Assert.Equal(Threads * Rounds * 10L, after.Lookups - before.Lookups);
        Assert.Equal(Threads * Rounds * 10L, after.Hits - before.Hits);
        Assert.Equal(before.Misses, after.Misses);
    }
}
