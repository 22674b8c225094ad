using CsCheck;
using Slub.Sysfs;

namespace Slub.Tests.Mobility;

/// <summary><see cref="MovableHandleTable"/> as <see cref="IDisposable"/>, and its <see cref="MovableHandleTable.Handles"/>.</summary>
public unsafe class HandleTableDisposeTests
{
    private static long FreeFrames(SlabAllocator a) => a.Pages.Arenas.Sum(x => x.FreeFrames);

    [Fact]
    public void DisposeWithLiveHandlesFreesThemAndDestroysTheCache()
    {
        using var a = TestAllocator.Create(cpus: 2);
        long framesBefore = FreeFrames(a);
        var table = new MovableHandleTable(a, "mht_dispose", 120);
        var handles = Enumerable.Range(0, 5000).Select(_ => table.Allocate()).ToList();
        for (int i = 0; i < handles.Count; i += 3) table.Free(handles[i]);   // a fragmented cache, live objects on CPUs too
        var cache = table.Cache;
        Assert.True(cache.GetStatistics().Slabs > 0);
        var sysfs = new SlabSysfs(a);
        Assert.NotEqual("0", sysfs.Read("mht_dispose/slabs").Split(' ')[0].Trim());
        Assert.True(FreeFrames(a) < framesBefore);

        table.Dispose();

        Assert.DoesNotContain(cache, a.Caches);
        Assert.DoesNotContain(a.Caches, c => c.Name == "mht_dispose");
        Assert.Equal(0, cache.GetStatistics().Slabs);
        Assert.Equal(framesBefore, FreeFrames(a));   // every slab's pages went back to the buddy allocator
        // The attribute tree no longer has the cache either.
        var e = Assert.Throws<SysfsException>(() => sysfs.Read("mht_dispose/slabs"));
        Assert.Equal(Errno.ENOENT, e.Errno);
        // The name is free for a new cache.
        using var again = new MovableHandleTable(a, "mht_dispose", 120);
        Assert.Equal(0, again.Count);
    }

    [Fact]
    public void DisposeWhileShrinksMoveTheObjectsFreesEverything()
    {
        using var a = TestAllocator.Create(cpus: 2);
        long framesBefore = FreeFrames(a);
        var table = new MovableHandleTable(a, "mht_dispose_shrink", 120);
        var cache = table.Cache;
        var handles = Enumerable.Range(0, 20_000).Select(_ => table.Allocate()).ToList();
        for (int i = 0; i < handles.Count; i++) if (i % 4 != 0) table.Free(handles[i]);
        long shrinks = 0;
        bool stop = false;
        // The allocator's defragmenter (kmem_defrag_slabs, as the background defragmenter runs it) holds the cache
        // list's mutex, which DestroyCache takes too, so it never overlaps the destroy. A user's cache.Shrink() on
        // another thread does not hold it: DestroyCache waits for that run instead (DestroyWhileShrinkingTests, through this Dispose too).
        var shrink = Task.Run(() =>
        {
            while (!Volatile.Read(ref stop))
            {
                a.DefragSlabs();
                Interlocked.Increment(ref shrinks);
            }
        });
        try
        {
            SpinWait.SpinUntil(() => Interlocked.Read(ref shrinks) >= 1);
            table.Dispose();
        }
        finally
        {
            // Before the allocator goes, whatever happened: a run still moving objects would touch unmapped memory.
            Volatile.Write(ref stop, true);
            shrink.Wait();
        }
        Assert.True(cache.Defrag.ObjectsMoved > 0, "the defragmenter moved nothing");
        Assert.DoesNotContain(cache, a.Caches);
        Assert.Equal(framesBefore, FreeFrames(a));
    }

    [Fact]
    public void DisposeTwiceIsANoOp()
    {
        using var a = TestAllocator.Create();
        var table = new MovableHandleTable(a, "mht_twice", 16);
        table.Allocate();
        table.Dispose();
        int caches = a.Caches.Count;
        table.Dispose();
        Assert.Equal(caches, a.Caches.Count);
    }

    [Fact]
    public void EveryMemberThrowsObjectDisposedExceptionNamingTheCacheAfterDispose()
    {
        using var a = TestAllocator.Create();
        var table = new MovableHandleTable(a, "mht_used", 16);
        long h = table.Allocate();
        table.Dispose();
        var thrown = new List<ObjectDisposedException>
        {
            Assert.Throws<ObjectDisposedException>(() => table.Allocate()),
            Assert.Throws<ObjectDisposedException>(() => table.Free(h)),
            Assert.Throws<ObjectDisposedException>(() => { using var s = table.Access(h); }),
            Assert.Throws<ObjectDisposedException>(() => table.AddressOf(h)),
            Assert.Throws<ObjectDisposedException>(() => table.Count),
            Assert.Throws<ObjectDisposedException>(() => table.Cache),
            Assert.Throws<ObjectDisposedException>(() => table.PayloadSize),
            Assert.Throws<ObjectDisposedException>(() => table.Handles),
        };
        foreach (var e in thrown)
        {
            Assert.Equal("MovableHandleTable(mht_used)", e.ObjectName);
            Assert.Contains("MovableHandleTable mht_used: the table has been disposed; its objects were freed and its cache destroyed", e.Message);
        }
    }

    [Fact]
    public void AnEnumerationBegunBeforeDisposeThrowsOnItsNextStep()
    {
        using var a = TestAllocator.Create();
        var table = new MovableHandleTable(a, "mht_enum_dispose", 16);
        for (int i = 0; i < 3; i++) table.Allocate();
        using var e = table.Handles.GetEnumerator();
        Assert.True(e.MoveNext());
        table.Dispose();
        Assert.Throws<ObjectDisposedException>(() => e.MoveNext());
    }

    [Fact]
    public void DisposeAfterTheAllocatorWasDisposedOnlyMarksTheTable()
    {
        var a = TestAllocator.Create();
        var table = new MovableHandleTable(a, "mht_late", 16);
        table.Allocate();
        a.Dispose();
        table.Dispose();   // the memory is gone: nothing to free, no exception
        Assert.Throws<ObjectDisposedException>(() => table.Allocate());
    }

    [Fact]
    public void HandlesAreTheLiveSet_AfterAnyAllocateFreeSequence()
    {
        // Each step: allocate (true) or free the i-th live handle (false, i modulo the live count); then shrink.
        Gen.Select(Gen.Bool, Gen.Int[0, 1000]).Array[1, 400].Sample(steps =>
        {
            using var a = TestAllocator.Create(cpus: 2);
            using var table = new MovableHandleTable(a, "mht_prop", 40);
            var live = new List<long>();
            foreach (var (alloc, i) in steps)
            {
                if (alloc || live.Count == 0) live.Add(table.Allocate());
                else
                {
                    int k = i % live.Count;
                    table.Free(live[k]);
                    live.RemoveAt(k);
                }
            }
            table.Cache.Shrink();   // moves objects: handles stay
            var listed = table.Handles.ToList();
            return listed.Count == listed.Distinct().Count()
                   && listed.ToHashSet().SetEquals(live)
                   && table.Count == live.Count;
        }, iter: 60, threads: 1);
    }

    [Fact]
    public void HandlesCanBeFreedWhileEnumerating()
    {
        using var a = TestAllocator.Create();
        using var table = new MovableHandleTable(a, "mht_free_enum", 16);
        for (int i = 0; i < 1000; i++) table.Allocate();
        int freed = 0;
        foreach (long h in table.Handles) { table.Free(h); freed++; }
        Assert.Equal(1000, freed);
        Assert.Equal(0, table.Count);
        Assert.Empty(table.Handles);
    }

    [Fact]
    public void EnumerationUnderConcurrentAllocateFreeAndShrinkIsWeaklyConsistent()
    {
        // Stable handles live for the whole run must each be seen exactly once per enumeration, wherever shrinks move
        // them; churned handles may or may not be seen, but a yielded handle was live at some point (it was allocated
        // by the churn thread, which records every handle before it can be freed), and nothing is yielded twice.
        using var a = TestAllocator.Create(cpus: 2);
        using var table = new MovableHandleTable(a, "mht_concurrent", 56);
        var stable = new HashSet<long>();
        var scratch = new List<long>();
        for (int i = 0; i < 20_000; i++)
        {
            long h = table.Allocate();
            if (i % 5 == 0) stable.Add(h); else scratch.Add(h);
        }
        foreach (long h in scratch) table.Free(h);   // stable objects now sit sparse in their slabs: shrinks move them

        var everAllocated = new System.Collections.Concurrent.ConcurrentDictionary<long, bool>();
        foreach (long h in stable) everAllocated[h] = true;
        using var stop = new CancellationTokenSource();
        long churnOps = 0, shrinks = 0;
        var churn = Task.Run(() =>
        {
            var rng = new Random(1);
            var mine = new List<long>();
            while (!stop.IsCancellationRequested)
            {
                if (mine.Count < 5000 && rng.Next(3) != 0)
                {
                    long h = table.Allocate();
                    everAllocated[h] = true;   // before anyone can see it freed
                    mine.Add(h);
                }
                else if (mine.Count > 0)
                {
                    int k = rng.Next(mine.Count);
                    table.Free(mine[k]);
                    mine[k] = mine[^1];
                    mine.RemoveAt(mine.Count - 1);
                }
                Interlocked.Increment(ref churnOps);
            }
            foreach (long h in mine) table.Free(h);
        });
        var shrink = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                table.Cache.Shrink();
                Interlocked.Increment(ref shrinks);
            }
        });
        try
        {
            // Both threads running before the first enumeration, and at least a few shrinks during the enumerations.
            SpinWait.SpinUntil(() => Interlocked.Read(ref shrinks) >= 1 && Interlocked.Read(ref churnOps) >= 1000);
            long shrinksBefore = Interlocked.Read(ref shrinks);
            for (int round = 0; round < 30 || (Interlocked.Read(ref shrinks) < shrinksBefore + 3 && round < 10_000); round++)
            {
                var seen = new HashSet<long>();
                foreach (long h in table.Handles)
                {
                    Assert.True(seen.Add(h), $"handle {h} yielded twice");
                    // The churn thread records a handle right after Allocate returns; the enumeration can read its slot
                    // in between, so wait for the record (it comes within the thread's next few instructions).
                    SpinWait.SpinUntil(() => everAllocated.ContainsKey(h), TimeSpan.FromSeconds(10));
                    Assert.True(everAllocated.ContainsKey(h), $"handle {h} was never allocated");
                }
                Assert.True(stable.IsSubsetOf(seen), $"round {round}: {stable.Except(seen).Count()} stable handles missing");
            }
        }
        finally
        {
            stop.Cancel();
            Task.WaitAll(churn, shrink);
        }
        Assert.True(Interlocked.Read(ref churnOps) >= 1000);
        Assert.Equal(stable.Count, table.Count);
        Assert.True(table.Handles.ToHashSet().SetEquals(stable));
    }
}
