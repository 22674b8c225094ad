namespace Slub.Tests.Mobility;

[Collection("smo-stress")]
public class MobilityStressTests
{
    private static void Stamp(Span<byte> b, long h, int gen) { for (int i = 0; i < b.Length; i++) b[i] = (byte)(h * 13 + i + gen); }
    private static bool Check(Span<byte> b, long h, int gen) { for (int i = 0; i < b.Length; i++) if (b[i] != (byte)(h * 13 + i + gen)) return false; return true; }

    [Theory]
    [InlineData(1, "-")]
    [InlineData(2, "-")]
    [InlineData(1, "FZU")]
    public void AllocFreeVerifyWhileDefragAndShrinkLoop(int nodes, string debug)
    {
        using var a = TestAllocator.Create(nodes: nodes, cpus: 3, mbPerNode: 128, slubDebug: debug);
        var table = new MovableHandleTable(a, "smo_stress", 100);
        const int Workers = 3, Ops = 40_000;
        long bad = 0;
        using var stop = new CancellationTokenSource();
        // Dedicated threads, not the pool: with two cores the pool can leave the defragger queued until the
        // workers are done, and then nothing runs concurrently at all.
        using var started = new ManualResetEventSlim();
        var defragger = Task.Factory.StartNew(() =>
        {
            started.Set();
            int round = 0;
            while (!stop.IsCancellationRequested)
            {
                if (round++ % 2 == 0) table.Cache.Shrink(); else a.DefragSlabs(-1);
                table.Cache.DefragUsedRatio = 10 + round % 60;
            }
        }, TaskCreationOptions.LongRunning);
        var liveSets = new List<long>[Workers];
        var workers = Enumerable.Range(0, Workers).Select(w => Task.Factory.StartNew(() =>
        {
            started.Wait();
            var rng = new Random(w);
            var live = liveSets[w] = new List<long>();
            // Ops operations, and on (at most 4×) until the defragger has moved something: on a loaded machine
            // the workers could otherwise finish before the defragger thread ever ran, and the check below fail.
            for (int i = 0; i < Ops || (table.Cache.Defrag.ObjectsMoved == 0 && i < 4 * Ops); i++)
            {
                int op = rng.Next(10);
                if (op < 5 || live.Count < 100)
                {
                    long h = table.Allocate(nodes > 1 ? rng.Next(-1, nodes) : -1);
                    using (var s = table.Access(h)) Stamp(s.Bytes, h, w);
                    live.Add(h);
                }
                else if (op < 9)
                {
                    int k = rng.Next(live.Count);
                    long h = live[k];
                    using (var s = table.Access(h)) if (!Check(s.Bytes, h, w)) Interlocked.Increment(ref bad);
                    live[k] = live[^1]; live.RemoveAt(live.Count - 1);
                    table.Free(h);
                }
                else
                {
                    long h = live[rng.Next(live.Count)];
                    using var s = table.Access(h);
                    if (!Check(s.Bytes, h, w)) Interlocked.Increment(ref bad);
                }
            }
        }, TaskCreationOptions.LongRunning)).ToArray();
        Task.WaitAll(workers);
        stop.Cancel();
        defragger.Wait();

        Assert.Equal(0, bad);
        Assert.True(table.Cache.Defrag.ObjectsMoved > 0, "the defragmenter never moved anything");
        long total = 0;
        for (int w = 0; w < Workers; w++)
            foreach (long h in liveSets[w])
            {
                using var s = table.Access(h);
                Assert.True(Check(s.Bytes, h, w));
                total++;
            }
        Assert.Equal(total, table.Count);
        table.Cache.Shrink();
        table.Cache.FlushAll();
        var st = table.Cache.GetStatistics();
        Assert.Equal(total, st.Objects);
        Assert.True(st.Slabs <= st.OptimalSlabs + nodes, $"{st.Slabs} slabs, optimal {st.OptimalSlabs}");
        Assert.Empty(table.Cache.Validate());
    }

    [Fact]
    public void HandleTableRejectsDeadHandles()
    {
        using var a = TestAllocator.Create();
        var t = new MovableHandleTable(a, "handles", 16);
        long h = t.Allocate();
        t.Free(h);
        Assert.Throws<ArgumentException>(() => t.Free(h));
        Assert.Throws<ArgumentException>(() => t.Access(h));
        Assert.Throws<ArgumentException>(() => t.Access(999_999));
        Assert.Equal(0, t.Count);
    }
}
