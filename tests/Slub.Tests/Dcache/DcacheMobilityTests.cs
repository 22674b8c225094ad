using Slub.Dcache;

namespace Slub.Tests.Dcache;

public class DcacheMobilityTests
{
    /// <summary>Populates every file of the tree, then leaves the odd ones unused but alive (second chance) and frees the even ones: every slab half full.</summary>
    private static void PopulateHalf(DentryCache dc, SyntheticTree tree)
    {
        foreach (var f in tree.Files) dc.LookupPath(f);
        for (int i = 1; i < tree.Files.Count; i += 2) dc.LookupPath(tree.Files[i]);   // referenced
        dc.Prune(dc.GetStatistics().Unused);                                            // evens freed, odds rotated
    }

    private static nint SlabOf(KmemCache c, nint p) => p & ~(nint)((4096 << c.Order) - 1);

    [Fact]
    public void CacheIsMovableFromCreationWithAConstructorAndKernelLayout()
    {
        using var a = TestAllocator.Create();
        using var dc = new SyntheticTree(0, 0).CreateCache(a);
        Assert.True(dc.Cache.IsMovable);
        Assert.NotNull(dc.Cache.Constructor);
        Assert.Equal("dentry", dc.Cache.Name);
        Assert.Equal(192, dc.Cache.ObjectSize);
        Assert.Equal(200, dc.Cache.SlabSize);              // free pointer outside the constructed object
        using var dc2 = new SyntheticTree(0, 0).CreateCache(a);
        Assert.Equal("dentry-2", dc2.Cache.Name);
    }

    [Fact]
    public unsafe void IsolateDropsSlotsNotSetUpAndLeavesDentriesInUse()
    {
        using var a = TestAllocator.Create();
        using var dc = new SyntheticTree(0, 0).CreateCache(a, PartialShrinkMode.EvictAllUnused);
        var used = dc.Alloc(dc.Root, "used"); dc.Add(used, InodeKind.File);
        var unused = dc.Alloc(dc.Root, "unused"); dc.Add(unused, InodeKind.File); dc.Put(unused);
        nint raw = dc.Cache.Alloc();                       // allocated, still in the constructor's state
        Assert.Equal(-128, ((int*)raw)[25]);               // count at offset 100
        var vector = new[] { used.Address, raw, unused.Address, dc.Root.Address };
        var m = dc.Cache.Mobility!;
        var state = m.Isolate!(dc.Cache, vector);
        Assert.Equal(0, vector[1]);                        // dropped: not a live dentry
        Assert.Equal(used.Address, vector[0]);
        Assert.True((unused.Flags & DentryFlags.ShrinkList) != 0);
        Assert.True((used.Flags & DentryFlags.ShrinkList) == 0);
        var results = new MigrateResult[vector.Length];
        m.Migrate(dc.Cache, vector, 0, state, results);
        Assert.Equal(MigrateResult.Later, results[0]);
        Assert.Equal(MigrateResult.Freed, results[2]);
        Assert.Equal(MigrateResult.CannotMove, results[3]);
        Assert.True(dc.Lookup(dc.Root, "unused").IsNull);
        Assert.Equal(1, used.Count);
        Assert.Equal("used", used.Name);
        dc.Cache.Free(raw);
        dc.Put(used);
    }

    [Fact]
    public void PartialShrinkFreesSlabsAndEverythingStillResolves()
    {
        using var a = TestAllocator.Create();
        var tree = new SyntheticTree(20, 100);
        using var dc = tree.CreateCache(a);
        foreach (var f in tree.Files) dc.LookupPath(f);
        var rng = new Random(3);
        foreach (var f in tree.Files) if (rng.Next(10) == 0) dc.LookupPath(f);        // 10 % hot
        dc.Prune(dc.GetStatistics().Unused);                                            // pressure: the cold ones go
        dc.Cache.FlushAll();
        var before = dc.GetStatistics();
        Assert.True(before.Slabs > 2 * before.OptimalSlabs, $"expected fragmentation: {before}");
        dc.Cache.Shrink();
        var after = dc.GetStatistics();
        Assert.True(after.Slabs < before.Slabs, $"{before.Slabs} -> {after.Slabs}");
        Assert.True(dc.Cache.Defrag.SlabsFreed > 0);
        Assert.True(dc.Cache.Defrag.ObjectsFreed > 0);
        foreach (var f in tree.Files) Assert.Equal(InodeKind.File, dc.LookupPath(f).Kind);
        Assert.Equal(InodeKind.Negative, dc.LookupPath("d3/none").Kind);
    }

    [Theory]
    [InlineData(PartialShrinkMode.EvictAllUnused)]
    [InlineData(PartialShrinkMode.WholeSlabsOnly)]
    public void DentriesInUseAreNeverFreedByPartialShrink(PartialShrinkMode mode)
    {
        using var a = TestAllocator.Create();
        var tree = new SyntheticTree(20, 100);
        using var dc = tree.CreateCache(a, mode);
        PopulateHalf(dc, tree);
        var rng = new Random(5);
        var pins = new List<(Dentry D, string Name, ulong Inode, string Path)>();
        for (int i = 1; i < tree.Files.Count; i += 2)
        {
            if (rng.Next(8) != 0) continue;
            var d = dc.Resolve(tree.Files[i], out var r);
            pins.Add((d, d.Name, r.Inode, tree.Files[i]));
        }
        dc.Cache.Shrink();
        dc.Cache.Shrink(DefragPolicy.EmptyAllCandidates);
        dc.Cache.DefragmentNode(0);
        foreach (var (d, name, inode, path) in pins)
        {
            Assert.Equal(1, d.Count);
            Assert.True(d.IsHashed);
            Assert.Equal(name, d.Name);
            Assert.Equal(inode, d.Inode);
            var again = dc.Resolve(path, out var r);
            Assert.Equal(d, again);                         // same object: not freed and reallocated
            Assert.Equal(0, r.FileSystemQueries);
            dc.Put(again);
        }
        if (mode == PartialShrinkMode.EvictAllUnused) Assert.True(dc.Cache.Defrag.ObjectsFreed > 0);
        Assert.True(dc.Cache.Defrag.ObjectsBusy > 0);
        foreach (var p in pins) dc.Put(p.D);
        foreach (var f in tree.Files) Assert.Equal(InodeKind.File, dc.LookupPath(f).Kind);
    }

    [Fact]
    public void WholeSlabsOnlyEvictsNothingFromSlabsThatCannotEmpty()
    {
        foreach (var mode in new[] { PartialShrinkMode.WholeSlabsOnly, PartialShrinkMode.EvictAllUnused })
        {
            using var a = TestAllocator.Create();
            var tree = new SyntheticTree(10, 100);
            using var dc = tree.CreateCache(a, mode);
            PopulateHalf(dc, tree);
            // Pin one live dentry in every slab of the cache.
            var pins = new List<Dentry>();
            var pinnedSlabs = new HashSet<nint>();
            foreach (var f in tree.Files.Concat(tree.Dirs))
            {
                var d = dc.Resolve(f, out var r);
                if (r.Exists && pinnedSlabs.Add(SlabOf(dc.Cache, d.Address))) pins.Add(d);
                else dc.Put(d);
            }
            try
            {
                // Slabs holding a live dentry: each pinned, or the root's. A slab may also be empty here (a CPU slab
                // flushed back and kept for min_partial); the shrink discards that one whatever the mode.
                var liveSlabs = new HashSet<nint>(pinnedSlabs) { SlabOf(dc.Cache, dc.Root.Address) };
                dc.Cache.FlushAll();
                var before = dc.GetStatistics();
                dc.Cache.Shrink(DefragPolicy.EmptyAllCandidates);
                var after = dc.GetStatistics();
                Assert.Equal(liveSlabs.Count, after.Slabs);    // a pinned dentry in every non-empty slab: none of those can go
                if (mode == PartialShrinkMode.WholeSlabsOnly)
                {
                    Assert.Equal(0, dc.Cache.Defrag.ObjectsFreed);
                    Assert.Equal(before.Dentries, after.Dentries);
                }
                else Assert.True(dc.Cache.Defrag.ObjectsFreed > 0, "the series' mode evicts for nothing");
            }
            finally { foreach (var p in pins) dc.Put(p); }   // else Dispose's "still in use" would hide a failed assertion
        }
    }
}
