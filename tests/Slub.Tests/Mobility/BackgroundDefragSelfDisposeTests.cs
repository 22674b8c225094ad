namespace Slub.Tests.Mobility;

/// <summary>
/// A migrate callback run by the background defragmenter that disposes the defragmenter (or the allocator) used
/// to make the thread join itself: a silent, permanent hang of the defragmenter and of every later Dispose.
/// </summary>
public unsafe class BackgroundDefragSelfDisposeTests
{
    [Fact]
    public void DisposeFromItsOwnCallbackThrowsInsteadOfDeadlocking()
    {
        using var a = TestAllocator.Create(cpus: 1);
        var c = a.CreateCache("bg_self_dispose", 64, ctor: p => *(long*)p = -1);
        BackgroundDefragmenter? bg = null;
        Exception? fromDefrag = null, fromAllocator = null;
        using var called = new ManualResetEventSlim();
        c.SetupMobility(null, (cache, objects, node, state, results) =>
        {
            if (!called.IsSet)
            {
                try { bg!.Dispose(); } catch (Exception e) { fromDefrag = e; }
                try { a.Dispose(); } catch (Exception e) { fromAllocator = e; }
                called.Set();
            }
            results.Fill(MigrateResult.Later);   // nothing moves
        });
        c.ActiveDefrag = c.ActiveDefrag with { IgnorePages = 0, IntervalMs = 1 };
        var objs = Enumerable.Range(0, 40 * c.ObjectsPerSlab).Select(_ => c.Alloc()).ToList();
        for (int i = 0; i < objs.Count; i++) if (i % 8 != 0) c.Free(objs[i]);
        c.FlushAll();
        bg = a.StartBackgroundDefrag();
        Assert.True(called.Wait(TimeSpan.FromMinutes(1)), "the background defragmenter never called the migrate callback");
        Assert.IsType<InvalidOperationException>(fromDefrag);
        Assert.IsType<InvalidOperationException>(fromAllocator);
        Assert.False(a.IsDisposed);   // refused before it changed anything
        bg.Dispose();                 // from another thread: stops it
        Assert.False(bg.IsRunning);
    }
}
