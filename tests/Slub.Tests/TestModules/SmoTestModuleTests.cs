using Slub.Cli.TestModules;
using Slub.Sysfs;

namespace Slub.Tests.TestModules;

/// <summary>
/// The SMO test module's object layout and callbacks, in process: things the out-of-process suite cannot
/// provoke (allocation failures inside migrate and inside <c>test</c>, an object freed under migrate).
/// </summary>
public sealed unsafe class SmoTestModuleTests
{
    private static SlabAllocator Allocator() => TestAllocator.Create(slubDebug: "FZPU");

    [Fact]
    public void ObjectLayout_And_Constructor_AreTheModules()
    {
        Assert.Equal(56, sizeof(SmoObject));
        using var a = Allocator();
        using var module = new SmoTestModule(a);
        Assert.Equal(56, module.Cache.ObjectSize);
        Assert.Contains("ctor : SmoTestModule.SmoObjectCtor", a.Sysfs.Read("smo_test/ops"));
        var so = (SmoObject*)module.Cache.Alloc();
        Assert.Equal(-1, so->Id);
        Assert.True(so->List.Next == &so->List && so->List.Prev == &so->List);
        Assert.True(new ReadOnlySpan<byte>(so->Buf, 32).IndexOfAnyExcept((byte)0) < 0);
        module.Cache.Free((nint)so);
    }

    [Fact]
    public void Migrate_StopsAtTheFirstAllocationFailure()
    {
        using var a = Allocator();
        using var module = new SmoTestModule(a);
        int ops = module.Cache.ObjectsPerSlab;
        module.Write($"alloc {ops}\n");    // one full slab: a new object needs a new slab
        var objects = module.DescribeObjects();
        var slab = a.Sysfs.Read("smo_test/slabs");
        nint[] vector = FirstListed(module, 3);
        var results = new MigrateResult[3];
        a.Faults.FailEveryNth = 1;
        try { module.SmoCacheMigrate(module.Cache, vector, 0, null, results); }
        finally { a.Faults.FailEveryNth = 0; }
        Assert.All(results, r => Assert.Equal(MigrateResult.Later, r));
        Assert.Equal(objects, module.DescribeObjects());
        Assert.Equal(slab, a.Sysfs.Read("smo_test/slabs"));
        Assert.Contains("smo: kmem_cache_alloc failed", a.Log.Lines());
    }

    [Fact]
    public void Migrate_MovesToTheListTail_AndSkipsAnObjectFreedMeanwhile()
    {
        using var a = Allocator();
        using var module = new SmoTestModule(a);
        module.Write("alloc 4\n");
        nint[] vector = FirstListed(module, 2);
        ((SmoObject*)vector[1])->Id = 77;
        module.Write("free 1\n");           // the head, vector[0], is freed after "isolation"
        var results = new MigrateResult[2];
        module.SmoCacheMigrate(module.Cache, vector, 0, null, results);
        Assert.Equal([MigrateResult.Skipped, MigrateResult.Moved], results);
        string[] lines = module.DescribeObjects().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        Assert.Equal("2 77 0", lines[^1]);   // the moved object went to the tail with its id
        Assert.Equal(3, module.Cache.CountObjects());
    }

    [Fact]
    public void Test_FailsTheWrite_WhenAnAllocationFails_AndCleansUp()
    {
        using var a = Allocator();
        using var module = new SmoTestModule(a);
        a.Faults.FailEveryNth = 3;
        SysfsException e;
        try { e = Assert.Throws<SysfsException>(() => module.Write("test\n")); }
        finally { a.Faults.FailEveryNth = 0; }
        Assert.Equal(Errno.ENOMEM, e.Errno);
        Assert.Contains("smo: Module tests failed", e.Message);
        Assert.Contains(a.Log.Lines(), l => l.StartsWith("smo: Failed to alloc object ", StringComparison.Ordinal) && l.EndsWith(" of 1000", StringComparison.Ordinal));
        Assert.Equal(0, module.ListedObjects);
        module.Write("test 200 5\n");      // usable again
        Assert.Equal("smo: Module tests completed successfully", a.Log.Lines()[^1]);
    }

    [Fact]
    public void Unload_RefusesLaterCommands()
    {
        using var a = Allocator();
        var module = new SmoTestModule(a);
        module.Write("alloc 7\n");
        module.Dispose();
        Assert.Null(a.FindCache("smo_test"));
        Assert.Equal("smo: Test module removed", a.Log.Lines()[^1]);
        Assert.Equal(Errno.ENOENT, Assert.Throws<SysfsException>(() => module.Write("alloc 1\n")).Errno);
        module.Dispose();
    }

    /// <summary>
    /// Commands against concurrent shrinks and kmem_defrag_slabs (which holds slab_mutex while migrate runs,
    /// while <c>enable</c> takes slab_mutex under the command lock): no deadlock, no lost or doubled object.
    /// Bounded iteration counts; the wait is a hang guard only.
    /// </summary>
    [Fact]
    public void Commands_RaceShrinkAndDefragSlabs_WithoutDeadlockOrLoss()
    {
        using var a = Allocator();
        using var module = new SmoTestModule(a);
        module.Write("enable\n");
        using var stop = new CancellationTokenSource();
        var commands = Task.Run(() =>
        {
            for (int i = 0; i < 150; i++)
            {
                module.Write("alloc 40\n");
                module.Write($"free 25 {i % 7}\n");
                if (i % 10 == 0) module.Write("enable\n");
            }
            stop.Cancel();
        });
        var shrinker = Task.Run(() => { while (!stop.IsCancellationRequested) a.Sysfs.Write("smo_test/shrink", "1"); });
        var defragger = Task.Run(() => { while (!stop.IsCancellationRequested) a.DefragSlabs(); });
        Assert.True(Task.WaitAll([commands, shrinker, defragger], TimeSpan.FromMinutes(5)), "hang: commands, shrink and defrag did not finish");
        Assert.Equal(150 * 15, module.ListedObjects);
        Assert.Equal(150 * 15, module.Cache.CountObjects());
        var ids = module.DescribeObjects().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.All(ids, l => Assert.Contains(" -1 ", l));
        Assert.Empty(module.Cache.Validate());
        module.Write("free 0\n");
        module.Cache.Shrink();
        Assert.Equal(0, module.Cache.GetStatistics().Slabs);
    }

    private static nint[] FirstListed(SmoTestModule module, int n) =>
        Enumerable.Range(0, n).Select(i => module.ObjectAt(i)).ToArray();
}
