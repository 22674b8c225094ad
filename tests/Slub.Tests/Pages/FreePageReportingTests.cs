using CsCheck;
using Slub.Pages;

namespace Slub.Tests.Pages;

/// <summary>Free page reporting: frees leave memory resident; a report gives it back to the OS later.</summary>
public unsafe class FreePageReportingTests
{
    private sealed class Block : PageBlock;

    private static PageAllocator Deferred(TimeSpan? delay = null) =>
        new(NumaTopology.Emulated(1, 1), 8L << 20, delay ?? Timeout.InfiniteTimeSpan);

    private static Block Alloc(PageAllocator pages, int order)
    {
        var b = new Block();
        Assert.True(pages.TryAllocate(order, 0, b));
        return b;
    }

    private static void Fill(PageBlock b, ulong stamp)
    {
        for (int i = 0; i < b.Bytes / 8; i++) ((ulong*)b.Address)[i] = stamp + (ulong)i;
    }

    private static bool Holds(PageBlock b, ulong stamp)
    {
        for (int i = 0; i < b.Bytes / 8; i++)
            if (((ulong*)b.Address)[i] != stamp + (ulong)i) return false;
        return true;
    }

    [Fact]
    public void AFreeLeavesTheMemoryResidentAndReusingItClearsTheMark()
    {
        using var pages = Deferred();
        var b = Alloc(pages, 2);
        Fill(b, 0xC0FFEE);
        pages.Free(b);
        Assert.Equal(4L * 4096, pages.UnreportedBytes);

        var again = Alloc(pages, 2);   // a fresh arena splits the same lowest block again
        Assert.Equal(b.Address, again.Address);
        Assert.True(Holds(again, 0xC0FFEE), "a deferred free must not discard the memory");
        Assert.Equal(0, pages.UnreportedBytes);
        pages.Arenas[0].CheckConsistency();
    }

    [Fact]
    public void AReportGivesTheMemoryBackOnce()
    {
        using var pages = Deferred();
        var b = Alloc(pages, 3);
        Fill(b, 77);
        pages.Free(b);
        long before = pages.Arenas[0].FreeBlocksPerOrder().Sum();
        Assert.Equal(8L * 4096, pages.ReportFreePages());   // the whole freed block, in one batch
        Assert.Equal(0, pages.UnreportedBytes);
        Assert.Equal(8L * 4096, pages.ReportedBytes);
        Assert.Equal(0, pages.ReportFreePages());            // nothing left to report
        Assert.Equal(before, pages.Arenas[0].FreeBlocksPerOrder().Sum());
        pages.Arenas[0].CheckConsistency();

        var again = Alloc(pages, 3);
        Assert.Equal(b.Address, again.Address);
        if (OperatingSystem.IsLinux())
            for (int i = 0; i < again.Bytes / 8; i++) Assert.Equal(0UL, ((ulong*)again.Address)[i]);   // MADV_DONTNEED: zero pages
    }

    [Fact]
    public void ZeroDelayGivesTheMemoryBackInsideTheFree()
    {
        using var pages = new PageAllocator(NumaTopology.Emulated(1, 1), 8L << 20, TimeSpan.Zero);
        var b = Alloc(pages, 1);
        Fill(b, 5);
        pages.Free(b);
        Assert.Equal(0, pages.UnreportedBytes);
        Assert.Equal(0, pages.ReportFreePages());
        var again = Alloc(pages, 1);
        if (OperatingSystem.IsLinux()) Assert.False(Holds(again, 5));
    }

    [Fact]
    public void TheTimerReportsAfterTheDelay()
    {
        using var pages = Deferred(TimeSpan.FromMilliseconds(20));
        var blocks = Enumerable.Range(0, 16).Select(_ => Alloc(pages, 0)).ToList();
        foreach (var b in blocks) pages.Free(b);
        Assert.True(pages.UnreportedBytes > 0 || pages.ReportedBytes > 0);
        // Waits for the timer's report; the 30 s bound only keeps a broken timer from hanging the run.
        // (Marks clear when a batch is taken out, the reported count when it is back: wait for the latter.)
        Assert.True(SpinWait.SpinUntil(() => pages.ReportedBytes == 16L * 4096, TimeSpan.FromSeconds(30)), "the timer never reported");
        Assert.Equal(16L * 4096, pages.ReportedBytes);
    }

    [Fact]
    public void NegativeDelaysOtherThanInfiniteAreRejected() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new PageAllocator(NumaTopology.Emulated(1, 1), 4L << 20, TimeSpan.FromSeconds(-1)));

    [Fact]
    public void RandomAllocFreeAndReportsKeepTheInvariants()
    {
        // Ops: (0 allocate, 1 free, 2 report), order, index of a live block to free.
        var ops = Gen.Select(Gen.Int[0, 2], Gen.Int[0, 6], Gen.Int[0, 1000]).Array[1, 200];
        ops.Sample(seq =>
        {
            using var pages = Deferred();
            var arena = pages.Arenas[0];
            var live = new List<(Block B, ulong Stamp)>();
            ulong stamp = 1;
            foreach (var (op, order, pick) in seq)
            {
                if (op == 0 || live.Count == 0)
                {
                    var b = new Block();
                    if (pages.TryAllocate(order, 0, b)) { Fill(b, stamp << 20); live.Add((b, stamp++ << 20)); }
                }
                else if (op == 1)
                {
                    var (b, s) = live[pick % live.Count];
                    Assert.True(Holds(b, s), "a live block lost its contents");
                    live.RemoveAt(pick % live.Count);
                    pages.Free(b);
                }
                else
                {
                    var info = arena.FreeBlocksPerOrder();
                    pages.ReportFreePages();
                    Assert.Equal(0, pages.UnreportedBytes);
                    Assert.Equal(info, arena.FreeBlocksPerOrder());   // a report moves no block for good
                }
                arena.CheckConsistency();
            }
            foreach (var (b, s) in live) Assert.True(Holds(b, s), "a live block lost its contents");
        }, iter: 60);
    }

    [Fact]
    public void ReportsRacingAllocationAndFreeNeverTouchALiveBlock()
    {
        using var pages = Deferred();
        long damaged = 0, reported = 0;
        int stop = 0;
        using var reporterRunning = new ManualResetEventSlim();
        // Own threads, not the pool: with the suite's other tests running on two cores a pool task could start late.
        var reporter = new GuardedThread(() =>
        {
            reporterRunning.Set();
            while (Volatile.Read(ref stop) == 0) Interlocked.Add(ref reported, pages.ReportFreePages());
        });
        reporter.Start();
        reporterRunning.Wait();
        var workers = Enumerable.Range(0, 2).Select(w => new GuardedThread(() =>
        {
            var rng = new Random(w);
            var live = new List<(Block B, ulong Stamp)>();
            // At least 20 000 steps, and on until the reporter has given something back while this thread runs.
            for (int i = 0; i < 20_000 || (Interlocked.Read(ref reported) == 0 && i < 2_000_000); i++)
            {
                if (live.Count < 24 && (live.Count == 0 || rng.Next(2) == 0))
                {
                    var b = new Block();
                    // The arena is large enough: an allocation fails only if a report batch were lost.
                    if (!pages.TryAllocate(rng.Next(0, 4), 0, b)) { Interlocked.Increment(ref damaged); continue; }
                    ulong s = ((ulong)w << 60) | ((ulong)i << 16);
                    Fill(b, s);
                    live.Add((b, s));
                }
                else
                {
                    int k = rng.Next(live.Count);
                    var (b, s) = live[k];
                    if (!Holds(b, s)) Interlocked.Increment(ref damaged);
                    live.RemoveAt(k);
                    pages.Free(b);
                }
            }
            foreach (var (b, s) in live)
            {
                if (!Holds(b, s)) Interlocked.Increment(ref damaged);
                pages.Free(b);
            }
        })).ToArray();
        foreach (var t in workers) t.Start();
        foreach (var t in workers) t.Join();
        Volatile.Write(ref stop, 1);
        reporter.Join();
        pages.ReportFreePages();
        Assert.Equal(0, damaged);
        Assert.True(Interlocked.Read(ref reported) > 0, "the reporter never gave anything back beside the workers");
        Assert.Equal(0, pages.UnreportedBytes);
        pages.Arenas[0].CheckConsistency();
        Assert.Equal(pages.Arenas[0].TotalFrames, pages.Arenas[0].FreeFrames);
    }

    [Fact]
    public void TwoReportersTakeTurnsAndTogetherGiveEverythingBackOnce()
    {
        using var pages = new PageAllocator(NumaTopology.Emulated(1, 1), 64L << 20, Timeout.InfiniteTimeSpan);
        // 3,000 single free frames between allocated ones: three batches' worth, so the two callers must take turns.
        var blocks = Enumerable.Range(0, 6000).Select(_ => Alloc(pages, 0)).ToList();
        for (int i = 0; i < blocks.Count; i += 2) pages.Free(blocks[i]);
        long unreported = pages.UnreportedBytes;
        using var go = new Barrier(2);
        var leftAfter = new long[2];
        var reporters = Enumerable.Range(0, 2).Select(r => Task.Run(() =>
        {
            go.SignalAndWait();
            long given = pages.ReportFreePages();
            leftAfter[r] = pages.UnreportedBytes;   // what this caller left behind when it returned
            return given;
        })).ToArray();
        Task.WaitAll(reporters);
        // A caller that finds a batch out waits for it and goes on, instead of returning early: when either returns,
        // nothing that was unreported at its call is left, and nothing was counted twice.
        Assert.Equal(new long[2], leftAfter);
        Assert.Equal(unreported, reporters.Sum(t => t.Result));
        Assert.Equal(unreported, pages.ReportedBytes);
        for (int i = 1; i < blocks.Count; i += 2) pages.Free(blocks[i]);
        pages.Arenas[0].CheckConsistency();
    }

    [Fact]
    public void DisposingWhileAReportRunsIsSafe()
    {
        for (int round = 0; round < 20; round++)
        {
            var pages = Deferred();
            var blocks = Enumerable.Range(0, 256).Select(_ => Alloc(pages, 1)).ToList();
            foreach (var b in blocks) pages.Free(b);
            var report = Task.Run(pages.ReportFreePages);
            pages.Dispose();
            report.Wait();   // returns what it gave back before the arena closed; never touches an unmapped range
            Assert.True(report.Result >= 0);
        }
    }

    [Fact]
    public void AShrunkCacheLeavesItsPagesResidentUntilTheAllocatorReportsThem()
    {
        var (a, c) = TestAllocator.WithShrunkCache("report_me", 256, 10_000);
        using var _a = a;
        Assert.Equal(0, c.GetStatistics().Slabs);
        long unreported = a.Pages.UnreportedBytes;
        Assert.True(unreported >= 10_000L * 256, $"only {unreported} bytes left resident");
        Assert.Equal(unreported, a.ReportFreePages());
        Assert.Equal(0, a.Pages.UnreportedBytes);
    }
}
