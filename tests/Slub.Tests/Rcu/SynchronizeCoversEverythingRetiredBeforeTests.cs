using Slub.Rcu;

namespace Slub.Tests.Rcu;

/// <summary>
/// <see cref="EpochReclaimer.Synchronize"/>'s promise under contention: threads retire items (free actions and
/// callbacks that take a little while), run passes (Poll, the automatic ones of Retire) and call Synchronize; each
/// Synchronize notes, before the call, how far every retiring thread had got, and checks afterwards that every one of
/// those items has run to completion. Bounded by operation counts.
/// </summary>
public class SynchronizeCoversEverythingRetiredBeforeTests
{
    private const int Retirers = 2, PerRetirer = 20_000, Syncs = 300;

    [Fact]
    public void EveryItemRetiredBeforeASynchronizeHasRunWhenItReturns()
    {
        var rcu = new EpochReclaimer();
        // done[r][i]: item i of retirer r has finished; retired[r]: items of retirer r whose Retire has returned.
        var done = new int[Retirers][];
        var retired = new int[Retirers];
        for (int r = 0; r < Retirers; r++) done[r] = new int[PerRetirer];
        long violations = 0;
        Exception? failure = null;
        void Guard(Action a)
        {
            try { a(); }
            catch (Exception e) { Interlocked.CompareExchange(ref failure, e, null); }
        }

        Action<nint> free = item =>
        {
            int r = (int)(item >> 32), i = (int)(item & 0xFFFF_FFFF);
            Thread.SpinWait(50 + i % 200);   // long enough for other threads' passes and syncs to overlap it
            Volatile.Write(ref done[r][i], 1);
        };
        var retirers = Enumerable.Range(0, Retirers).Select(r => new Thread(() => Guard(() =>
        {
            for (int i = 0; i < PerRetirer; i++)
            {
                if (i % 3 == 0)
                {
                    int ii = i;
                    rcu.Retire(() => { Thread.SpinWait(50 + ii % 200); Volatile.Write(ref done[r][ii], 1); });
                }
                else rcu.Retire(((nint)r << 32) | (nint)i, free);
                Volatile.Write(ref retired[r], i + 1);
                if (i % 97 == 0) rcu.Poll();
                if (i % 31 == 0) { using (rcu.EnterRead()) Thread.SpinWait(20); }
            }
        }))).ToList();
        var syncers = Enumerable.Range(0, 2).Select(_ => new Thread(() => Guard(() =>
        {
            var before = new int[Retirers];
            for (int s = 0; s < Syncs; s++)
            {
                for (int r = 0; r < Retirers; r++) before[r] = Volatile.Read(ref retired[r]);
                rcu.Synchronize();
                for (int r = 0; r < Retirers; r++)
                    for (int i = 0; i < before[r]; i++)
                        if (Volatile.Read(ref done[r][i]) == 0) { Interlocked.Increment(ref violations); break; }
                if (before.All(b => b == PerRetirer)) break;
            }
        }))).ToList();
        foreach (var t in retirers.Concat(syncers)) t.Start();
        foreach (var t in retirers.Concat(syncers)) t.Join();
        Assert.Null(failure);
        Assert.Equal(0, violations);
        rcu.Synchronize();
        Assert.All(done, d => Assert.All(d, x => Assert.Equal(1, x)));
        Assert.Equal(rcu.RetiredCount, rcu.FreedCount);
    }
}
