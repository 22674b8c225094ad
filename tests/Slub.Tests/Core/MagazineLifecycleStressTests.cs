using System.Collections.Concurrent;

namespace Slub.Tests.Core;

/// <summary>
/// Thread magazines coming and going under concurrent flushes: short-lived threads create their magazine, park
/// freed objects in it and exit, handing some live objects to a long-lived thread that frees them elsewhere, while
/// two flushers drain every magazine at once (one of them also shrinking) — so a flush meets magazines created after its
/// snapshot, owners that exit between its request and its drain, and dead magazines another flush already
/// dropped. The existing magazine tests flush from one thread beside owners that live throughout.
/// </summary>
public unsafe class MagazineLifecycleStressTests
{
    [Fact]
    public void ThreadsExitWithParkedObjectsWhileTwoFlushersDrain()
    {
        using var a = TestAllocator.Create(cpus: 2, mbPerNode: 64);
        var c = a.CreateCache("mag_life", 48, flags: SlabFlags.NoMerge);
        var handed = new BlockingCollection<nint>();   // unbounded: a failed consumer must not block the workers
        long bad = 0, consumed = 0;
        Exception? failure = null;
        // Thread bodies report what they throw here instead of crashing the test host.
        ThreadStart Guarded(Action body) => () =>
        {
            try { body(); }
            catch (Exception e) { Interlocked.CompareExchange(ref failure, e, null); }
        };
        using var stop = new CancellationTokenSource();
        var flushers = Enumerable.Range(0, 2).Select(f => new Thread(Guarded(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                if (f == 0) c.FlushAll(); else c.Shrink();
                c.GetStatistics();
            }
        }))).ToArray();
        var consumer = new Thread(Guarded(() =>
        {
            foreach (nint p in handed.GetConsumingEnumerable())
            {
                long* w = (long*)p;
                for (int k = 0; k < 6; k++) if (w[k] != (p ^ (k * 0x9E3779B97F4AL))) Interlocked.Increment(ref bad);
                c.Free(p);
                consumed++;
            }
        }));
        foreach (var t in flushers) t.Start();
        consumer.Start();
        const int Rounds = 120, PerRound = 4, Objects = 60, Kept = 12;
        for (int r = 0; r < Rounds; r++)
        {
            var workers = Enumerable.Range(0, PerRound).Select(_ => new Thread(Guarded(() =>
            {
                var mine = new nint[Objects];
                for (int i = 0; i < Objects; i++)
                {
                    nint p = mine[i] = c.Alloc();
                    for (int k = 0; k < 6; k++) ((long*)p)[k] = p ^ (k * 0x9E3779B97F4AL);
                }
                for (int i = Kept; i < Objects; i++)
                {
                    for (int k = 0; k < 6; k++) if (((long*)mine[i])[k] != (mine[i] ^ (k * 0x9E3779B97F4AL))) Interlocked.Increment(ref bad);
                    c.Free(mine[i]);   // parked in this thread's magazine, which outlives the thread
                }
                for (int i = 0; i < Kept; i++) handed.Add(mine[i]);
            }))).ToArray();
            foreach (var t in workers) t.Start();
            foreach (var t in workers) t.Join();
        }
        handed.CompleteAdding();
        consumer.Join();
        stop.Cancel();
        foreach (var t in flushers) t.Join();

        Assert.Null(failure);
        Assert.Equal(0, bad);
        Assert.Equal(Rounds * PerRound * Kept, consumed);
        c.FlushAll();
        Assert.Equal(0, c.MagazineObjects());
        Assert.Equal(0, c.GetStatistics().Objects);
        Assert.Empty(c.Validate());
        c.Shrink();
        Assert.Equal(0, c.GetStatistics().Slabs);
        foreach (var arena in a.Pages.Arenas) arena.CheckConsistency();
    }
}
