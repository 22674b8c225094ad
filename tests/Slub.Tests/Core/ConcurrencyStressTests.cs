using System.Collections.Concurrent;

namespace Slub.Tests.Core;

public unsafe class ConcurrencyStressTests
{
    [Theory]
    [InlineData("-")]
    [InlineData("FZ")]
    public void ThreadsAllocateHandOffFreeAndShrinkConcurrently(string debug)
    {
        using var a = TestAllocator.Create(nodes: 2, cpus: 4, mbPerNode: 128, slubDebug: debug);
        var cache = a.CreateCache("stress", 120, flags: SlabFlags.NoMerge);
        const int Threads = 4, PerThread = 60_000;
        var queues = Enumerable.Range(0, Threads).Select(_ => new BlockingCollection<nint>(4096)).ToArray();
        long verified = 0, failures = 0;
        using var stop = new CancellationTokenSource();

        var shrinker = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested) { cache.Shrink(); Thread.Sleep(1); }
        });
        var producers = Enumerable.Range(0, Threads).Select(t => Task.Run(() =>
        {
            var rng = new Random(t);
            for (int i = 0; i < PerThread; i++)
            {
                nint p = rng.Next(4) == 0 ? cache.AllocNode(rng.Next(2)) : cache.Alloc();
                long* w = (long*)p;
                for (int k = 0; k < 15; k++) w[k] = p ^ (k * 0x1234567L);
                queues[(t + 1 + rng.Next(Threads - 1)) % Threads].Add(p);   // another thread frees it
            }
        })).ToArray();
        var consumers = Enumerable.Range(0, Threads).Select(t => Task.Run(() =>
        {
            foreach (nint p in queues[t].GetConsumingEnumerable())
            {
                long* w = (long*)p;
                for (int k = 0; k < 15; k++)
                    if (w[k] != (p ^ (k * 0x1234567L))) Interlocked.Increment(ref failures);
                Interlocked.Increment(ref verified);
                cache.Free(p);
            }
        })).ToArray();
        Task.WaitAll(producers);
        foreach (var q in queues) q.CompleteAdding();
        Task.WaitAll(consumers);
        stop.Cancel();
        shrinker.Wait();

        Assert.Equal(0, failures);
        Assert.Equal(Threads * PerThread, verified);
        cache.FlushAll();
        Assert.Equal(0, cache.GetStatistics().Objects);
        Assert.Empty(cache.Validate());
        cache.Shrink();
        Assert.Equal(0, cache.GetStatistics().Slabs);
        foreach (var arena in a.Pages.Arenas) arena.CheckConsistency();
    }
}
