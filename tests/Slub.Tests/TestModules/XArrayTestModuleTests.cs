using Slub.Cli.TestModules;
using Slub.Sysfs;

namespace Slub.Tests.TestModules;

/// <summary>
/// The XArray test module's thing and migrate callback, in process: what the out-of-process suite cannot
/// provoke (allocation failure in migrate, a thing freed under migrate, a failing load test, shrinks racing
/// the commands).
/// </summary>
public sealed unsafe class XArrayTestModuleTests
{
    private static SlabAllocator Allocator() => TestAllocator.Create(slubDebug: "FZPU");

    [Fact]
    public void Thing_And_Constructor_AreTheModules()
    {
        Assert.Equal(8, sizeof(SmoxThing));
        using var a = Allocator();
        using var module = new XArrayTestModule(a);
        Assert.Equal(8, module.Cache.ObjectSize);
        Assert.Contains("ctor : XArrayTestModule.SmoxObjectCtor", a.Sysfs.Read("smox_test/ops"));
        Assert.Equal(1667, module.Things);
        // The constructor runs when a slab is made (freed things keep their ids, as in SLUB): use a fresh slab.
        module.Write("clear\n");
        module.Cache.Shrink();
        var t = (SmoxThing*)module.Cache.Alloc();
        long id = t->Id;
        module.Cache.Free((nint)t);
        Assert.Equal(-1, id);
    }

    [Fact]
    public void Migrate_RestoresTheNewPointerAtTheSameIndex_AndSkipsAThingNoLongerInTheArray()
    {
        using var a = Allocator();
        using var module = new XArrayTestModule(a);
        nint at6 = module.ThingAt(6), at12 = module.ThingAt(12);
        module.Write("clear\n");               // both freed after "isolation"
        module.Write("test 30 6\n");
        nint kept = module.ThingAt(6);
        var results = new MigrateResult[2];
        module.SmoxCacheMigrate(module.Cache, [kept, at12 == kept ? at6 : at12], 0, null, results);
        Assert.Equal(MigrateResult.Moved, results[0]);
        Assert.Equal(MigrateResult.Skipped, results[1]);
        Assert.NotEqual(kept, module.ThingAt(6));
        Assert.Equal(6, ((SmoxThing*)module.ThingAt(6))->Id);
        Assert.Equal("0 0\n6 6\n12 12\n18 18\n24 24\n", module.DescribeThings());
        Assert.Equal(5, module.Cache.CountObjects());
    }

    [Fact]
    public void Migrate_StopsAtTheFirstAllocationFailure()
    {
        using var a = Allocator();
        using var module = new XArrayTestModule(a);
        module.Write("clear\n");
        module.Cache.Shrink();                  // no slab left with free slots
        int ops = module.Cache.ObjectsPerSlab;
        module.Write($"test {ops} 1\n");        // one full slab: a new thing needs a new slab
        string things = module.DescribeThings();
        nint[] vector = [module.ThingAt(0), module.ThingAt(1)];
        var results = new MigrateResult[2];
        a.Faults.FailEveryNth = 1;
        try { module.SmoxCacheMigrate(module.Cache, vector, 0, null, results); }
        finally { a.Faults.FailEveryNth = 0; }
        Assert.All(results, r => Assert.Equal(MigrateResult.Later, r));
        Assert.Equal(vector[0], module.ThingAt(0));
        Assert.Equal(things, module.DescribeThings());
        Assert.Contains("smox: kmem_cache_alloc failed", a.Log.Lines());
    }

    [Fact]
    public void FailingTest_FailsTheWrite_KeepsWhatItStored()
    {
        using var a = Allocator();
        using var module = new XArrayTestModule(a);
        module.Write("clear\n");
        module.Cache.Shrink();
        module.NodeCache.Shrink();
        a.Faults.FailEveryNth = 3;
        SysfsException e;
        try { e = Assert.Throws<SysfsException>(() => module.Write("test 1000 2\n")); }
        finally { a.Faults.FailEveryNth = 0; }
        Assert.Equal(Errno.ENOMEM, e.Errno);
        Assert.Contains(a.Log.Lines(), l => l.StartsWith("smox: failed to allocate entry: ", StringComparison.Ordinal));
        Assert.Contains($"test_smo_xarray failed: -{(int)Errno.ENOMEM}", a.Log.Lines());
        Assert.True(module.Things > 0);
        Assert.Equal(Errno.EBUSY, Assert.Throws<SysfsException>(() => module.Write("test\n")).Errno);
        module.Write("clear\n");
        module.Write("test 100 3\n");           // usable again
        Assert.Equal(34, module.Things);
    }

    [Fact]
    public void Unload_DestroysTheCache_AndRefusesLaterCommands()
    {
        using var a = Allocator();
        var module = new XArrayTestModule(a);
        module.Dispose();
        Assert.Null(a.FindCache("smox_test"));
        Assert.Equal("smo_xarray: module removed", a.Log.Lines()[^1]);
        Assert.Equal(0, a.FindCache("xa_node")!.CountObjects());
        Assert.Equal(Errno.ENOENT, Assert.Throws<SysfsException>(() => module.Write("clear\n")).Errno);
        module.Dispose();
    }

    /// <summary>
    /// Commands against concurrent shrinks of both caches and kmem_defrag_slabs: no deadlock, and the array
    /// always ends as the last test left it. Bounded iteration counts; the wait is a hang guard only.
    /// </summary>
    [Fact]
    public void Commands_RaceShrinks_WithoutDeadlockOrLoss()
    {
        using var a = Allocator();
        using var module = new XArrayTestModule(a);
        using var stop = new CancellationTokenSource();
        var commands = Task.Run(() =>
        {
            for (int i = 0; i < 40; i++)
            {
                module.Write("clear\n");
                module.Write($"test 2000 {3 + i % 130}\n");
            }
            stop.Cancel();
        });
        var shrinker = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                a.Sysfs.Write("smox_test/shrink", "1");
                a.Sysfs.Write("xa_node/shrink", "1");
            }
        });
        var defragger = Task.Run(() => { while (!stop.IsCancellationRequested) a.DefragSlabs(); });
        Assert.True(Task.WaitAll([commands, shrinker, defragger], TimeSpan.FromMinutes(5)), "hang: commands, shrinks and defrag did not finish");
        int keep = 3 + 39 % 130;
        string expected = string.Concat(Enumerable.Range(0, 2000).Where(i => i % keep == 0).Select(i => $"{i} {i}\n"));
        Assert.Equal(expected, module.DescribeThings());
        Assert.Equal(module.Things, module.Cache.CountObjects());
        Assert.Empty(module.Cache.Validate());
    }
}
