using Slub.Dcache;

namespace Slub.Tests.Dcache;

public class DcacheRefcountTests
{
    [Fact]
    public void AllocAddLookupGetPut()
    {
        using var a = TestAllocator.Create();
        var tree = new SyntheticTree(1, 0);
        using var dc = tree.CreateCache(a);
        var root = dc.Root;
        int rootCount = root.Count;
        var d = dc.Alloc(root, "name");
        Assert.Equal(1, d.Count);
        Assert.Equal(rootCount + 1, root.Count);          // a child holds its parent
        Assert.Equal(root, d.Parent);
        Assert.False(d.IsHashed);
        Assert.True(dc.Lookup(root, "name").IsNull);       // not hashed yet
        dc.Add(d, InodeKind.File);
        Assert.True(d.IsHashed);
        Assert.NotEqual(0UL, d.Inode);
        var again = dc.Lookup(root, "name");
        Assert.Equal(d, again);
        Assert.Equal(2, d.Count);
        Assert.Equal(3, dc.Get(d).Count);
        dc.Put(d); dc.Put(again);
        Assert.Equal(1, d.Count);
        Assert.Equal(0, dc.GetStatistics().Unused);
        dc.Put(d);                                          // last reference: cached unused, on the LRU
        Assert.Equal(0, d.Count);
        Assert.True((d.Flags & DentryFlags.LruList) != 0);
        Assert.Equal(1, dc.GetStatistics().Unused);
        Assert.Throws<InvalidOperationException>(() => dc.Put(d));
        var dup = dc.Alloc(root, "name");
        Assert.Throws<InvalidOperationException>(() => dc.Add(dup, InodeKind.File));   // the name is cached already
        dc.Put(dup);
    }

    [Fact]
    public void LastPutOfAnUnhashedDentryFreesItAndReleasesTheParent()
    {
        using var a = TestAllocator.Create();
        var tree = new SyntheticTree(1, 0);
        using var dc = tree.CreateCache(a);
        var dir = dc.Alloc(dc.Root, "dir");
        dc.Add(dir, InodeKind.Directory);
        var child = dc.Alloc(dir, "child");                // never hashed
        Assert.Equal(2, dir.Count);
        long before = dc.Count;
        dc.Put(child);
        Assert.Equal(before - 1, dc.Count);
        Assert.Equal(1, dir.Count);
        dc.Drop(dir);                                      // unhash: dies with its last reference
        Assert.True(dc.Lookup(dc.Root, "dir").IsNull);
        Assert.Equal(1, dir.Count);
        dc.Put(dir);
        Assert.Equal(before - 2, dc.Count);
        Assert.Equal(1, dc.Count);                         // the root only
    }

    [Fact]
    public void DeleteMakesNegativeOnlyWhenUnshared()
    {
        using var a = TestAllocator.Create();
        var tree = new SyntheticTree(1, 0);
        using var dc = tree.CreateCache(a);
        var d = dc.Alloc(dc.Root, "x");
        dc.Add(d, InodeKind.File);
        dc.Delete(d);                                      // only reference: negative in place
        Assert.True(d.IsNegative);
        Assert.True(d.IsHashed);
        Assert.Equal(0UL, d.Inode);
        Assert.Equal(1, dc.GetStatistics().Negative);
        dc.Put(d);

        var e = dc.Alloc(dc.Root, "y");
        dc.Add(e, InodeKind.File);
        var other = dc.Get(e);                             // someone else uses it
        dc.Delete(e);
        Assert.False(e.IsNegative);
        Assert.False(e.IsHashed);                          // unhashed; dies with the last reference
        long before = dc.Count;
        dc.Put(e);
        dc.Put(other);
        Assert.Equal(before - 1, dc.Count);
    }

    [Fact]
    public void MoveRehashesUnderTheNewParentAndFixesParentCounts()
    {
        using var a = TestAllocator.Create();
        var tree = new SyntheticTree(1, 0);
        using var dc = tree.CreateCache(a);
        var p1 = dc.Alloc(dc.Root, "p1"); dc.Add(p1, InodeKind.Directory);
        var p2 = dc.Alloc(dc.Root, "p2"); dc.Add(p2, InodeKind.Directory);
        var f = dc.Alloc(p1, "f"); dc.Add(f, InodeKind.File);
        var g = dc.Alloc(f.Parent, "g"); dc.Add(g, InodeKind.File); dc.Put(g);   // g unused, on the LRU
        Assert.Equal(3, p1.Count);
        dc.Move(f, p2, "g" + new string('z', 50));         // long name: now external
        Assert.Equal(f, dc.Lookup(p2, "g" + new string('z', 50)));
        dc.Put(f);
        Assert.True(dc.Lookup(p1, "f").IsNull);
        Assert.Equal(2, p1.Count);
        Assert.Equal(2, p2.Count);
        dc.Move(f, p1, "g");                                // over an unused cached dentry: it is killed
        Assert.Equal(f, dc.Lookup(p1, "g")); dc.Put(f);
        Assert.Equal("g", f.Name);
        Assert.Throws<InvalidOperationException>(() => dc.Move(p1, f.Parent == p1 ? p1 : p2, "loop"));
        dc.Put(f); dc.Put(p1); dc.Put(p2);
    }

    [Fact]
    public void HandlesOfAnotherCacheOrUnreferencedAreRefused()
    {
        using var a = TestAllocator.Create();
        using var dc1 = new SyntheticTree(0, 0).CreateCache(a);
        using var dc2 = new SyntheticTree(0, 0).CreateCache(a);
        var d = dc1.Alloc(dc1.Root, "x");
        Assert.Throws<ArgumentException>(() => dc2.Alloc(d, "y"));
        Assert.Throws<ArgumentException>(() => dc2.Lookup(dc1.Root, "x"));
        dc1.Add(d, InodeKind.Directory);
        dc1.Put(d);                                        // unused now: no handle operation may use it
        Assert.Throws<InvalidOperationException>(() => dc1.Alloc(d, "y"));
    }
}
