namespace Slub.Tests.Core;

public class ThreadMagazineTests
{
    [Fact]
    public void FreedObjectsParkInTheMagazineUntilAFlush()
    {
        using var a = TestAllocator.Create(cpus: 1);
        var c = a.CreateCache("mag", 64, flags: SlabFlags.NoMerge);
        var objs = Enumerable.Range(0, 10).Select(_ => c.Alloc()).ToList();
        foreach (var p in objs) c.Free(p);
        Assert.True(c.MagazineObjects() >= 10);
        Assert.Equal(objs[^1], c.Alloc());   // LIFO: the last freed object comes back first
        c.Free(objs[^1]);
        c.FlushAll();
        Assert.Equal(0, c.MagazineObjects());
        Assert.Equal(0, c.GetStatistics().Objects);
    }

    [Fact]
    public void AFreshSlabHandsOutItsObjectsInAscendingOrderThroughTheMagazine()
    {
        // As the kernel's SLUB does: a new slab's free list runs from the first object up, and the magazine
        // refill must not reverse it (sequential readers of neighbouring objects rely on the layout).
        using var a = TestAllocator.Create(cpus: 1);
        var c = a.CreateCache("mag_order", 256, flags: SlabFlags.NoMerge);
        var objs = Enumerable.Range(0, 40).Select(_ => c.Alloc()).ToList();
        int ascending = 0;
        for (int i = 1; i < objs.Count; i++)
            if (objs[i] == objs[i - 1] + c.SlabSize) ascending++;
        Assert.True(ascending >= objs.Count - 1 - 40 / c.ObjectsPerSlab - 1,
            $"only {ascending} of {objs.Count - 1} consecutive allocations were next-door neighbours");
        foreach (var p in objs) c.Free(p);
    }

    [Fact]
    public void MagazinesOfThreadsThatExitedAreDrainedAndForgotten()
    {
        using var a = TestAllocator.Create(cpus: 2);
        var c = a.CreateCache("mag_dead", 64, flags: SlabFlags.NoMerge);
        var t = new GuardedThread(() => { var p = c.Alloc(); c.Free(p); });
        t.Start();
        t.Join();
        Assert.True(c.MagazineObjects() > 0);
        c.FlushAll();
        Assert.Equal(0, c.MagazineObjects());
        c.Shrink();
        Assert.Equal(0, c.GetStatistics().Slabs);
    }

    [Fact]
    public void ImmediateDoubleFreeIsCaughtInTheMagazine()
    {
        using var a = TestAllocator.Create(cpus: 1);
        var c = a.CreateCache("mag_df", 64, flags: SlabFlags.NoMerge);
        nint p = c.Alloc();
        c.Free(p);
        Assert.Throws<InvalidFreeException>(() => c.Free(p));
        c.FlushAll();
        Assert.Equal(0, c.GetStatistics().Objects);
        Assert.Empty(c.Validate());
    }

    [Fact]
    public void FlushWhileOwnersKeepAllocatingLosesNothing()
    {
        using var a = TestAllocator.Create(cpus: 2, mbPerNode: 64);
        var c = a.CreateCache("mag_race", 32, flags: SlabFlags.NoMerge);
        using var stop = new CancellationTokenSource();
        long bad = 0;
        var owners = Enumerable.Range(0, 2).Select(w => Task.Run(() =>
        {
            var held = new Queue<nint>();
            long stamp = w * 1_000_000_000L;
            unsafe
            {
                while (!stop.IsCancellationRequested)
                {
                    nint p = c.Alloc();
                    *(long*)p = ++stamp;
                    held.Enqueue(p);
                    if (held.Count > 100)
                    {
                        nint q = held.Dequeue();
                        if (*(long*)q != stamp - 100) Interlocked.Increment(ref bad);
                        c.Free(q);
                    }
                }
                while (held.Count > 0) c.Free(held.Dequeue());
            }
        })).ToArray();
        for (int i = 0; i < 300; i++) c.FlushAll();
        stop.Cancel();
        Task.WaitAll(owners);
        Assert.Equal(0, bad);
        c.FlushAll();
        Assert.Equal(0, c.GetStatistics().Objects);
        Assert.Empty(c.Validate());
    }
}
