namespace Slub.Tests.Debug;

/// <summary>
/// <see cref="AllocatorLog.LineWritten"/> handlers (a logger the lines are forwarded to) run on the thread that wrote
/// the line. The allocation trace line (<c>slub_debug=T</c>) and the corruption report of a debug allocation were
/// written with the node's list lock still held: a handler that waited for another thread using the same cache — a
/// logging pipeline whose worker allocates, say — waited for itself.
/// </summary>
public class LogHandlerLockTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);   // a liveness bound, not a timing claim

    [Fact]
    public void ATraceHandlerMayWaitForAnotherThreadAllocatingFromTheSameCache()
    {
        using var a = TestAllocator.Create(cpus: 1);
        var c = a.CreateCache("traced", 64, flags: SlabFlags.Trace | SlabFlags.NoMerge);
        nint warm = c.Alloc();   // the slab exists and is on the partial list
        int handled = 0;
        bool otherFinished = false;
        nint fromOther = 0;
        GuardedThread? other = null;
        a.Log.LineWritten += line =>
        {
            if (!line.StartsWith("TRACE traced alloc", StringComparison.Ordinal) || Interlocked.Exchange(ref handled, 1) != 0) return;
            other = new GuardedThread(() => fromOther = c.Alloc()) { IsBackground = true };
            other.Start();
            otherFinished = other.Join(Bound);
        };
        nint mine = c.Alloc();
        other?.Join();   // the handler has returned: whatever it waited for can finish now (before the allocator goes)
        Assert.True(otherFinished, "the handler's helper thread could not allocate: the list lock was held around the handler");
        Assert.NotEqual(0, fromOther);
        Assert.NotEqual(mine, fromOther);
        c.Free(fromOther);
        c.Free(mine);
        c.Free(warm);
        Assert.Empty(c.Validate());
    }

    [Fact]
    public void AReportHandlerMayWaitForAnotherThreadAllocatingFromTheSameCache()
    {
        using var a = TestAllocator.Create(cpus: 1);
        var c = a.CreateCache("reported", 64, flags: SlabFlags.ConsistencyChecks | SlabFlags.NoMerge);
        nint keep = c.Alloc(), twice = c.Alloc();
        c.Free(twice);
        bool otherFinished = false;
        nint fromOther = 0;
        GuardedThread? other = null;
        a.Log.LineWritten += line =>
        {
            if (!line.Contains("Object already free", StringComparison.Ordinal)) return;
            other = new GuardedThread(() => fromOther = c.Alloc()) { IsBackground = true };
            other.Start();
            otherFinished = other.Join(Bound);
        };
        var e = Assert.Throws<SlabCorruptionException>(() => c.Free(twice));   // double free: reported, then thrown
        other?.Join();
        Assert.Equal("Object already free", e.Problem);
        Assert.True(otherFinished, "the handler's helper thread could not allocate: the list lock was held around the handler");
        Assert.NotEqual(0, fromOther);
        c.Free(fromOther);
        c.Free(keep);
    }
}
