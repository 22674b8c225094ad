using Slub.Rcu;

namespace Slub.Tests.Rcu;

/// <summary>
/// <see cref="EpochReclaimer.Synchronize"/> promises that every item retired before the call has been freed when it
/// returns. A pass (<see cref="EpochReclaimer.Poll"/>, an automatic pass of Retire, another Synchronize) takes its
/// ready items off the pending list before running them, so a Synchronize that only looked at the pending list
/// returned while another thread was still running such an item.
/// </summary>
public class SynchronizeWaitsForRunningPassesTests
{
    // How long a wrong implementation is given to return early. Not a timing assertion: a correct Synchronize is
    // blocked until the gate opens whatever this is, and a late early return only lets a wrong one pass this run.
    private static readonly TimeSpan EarlyReturnWindow = TimeSpan.FromMilliseconds(300);

    /// <summary>Thread A's pass runs an item that blocks on a gate; thread B's Synchronize must not return before it finished.</summary>
    private static void AssertSynchronizeWaitsFor(Action<EpochReclaimer, Action> retire, Action<EpochReclaimer> runPassOnA)
    {
        var rcu = new EpochReclaimer();
        using var started = new ManualResetEventSlim();
        using var gate = new ManualResetEventSlim();
        int finished = 0;
        retire(rcu, () =>
        {
            started.Set();
            gate.Wait();
            Volatile.Write(ref finished, 1);
        });
        var a = new GuardedThread(() => runPassOnA(rcu)) { IsBackground = true };
        a.Start();
        started.Wait();   // A has taken the item off the pending list and is running it

        int finishedWhenBReturned = -1;
        var b = new GuardedThread(() =>
        {
            rcu.Synchronize();
            Volatile.Write(ref finishedWhenBReturned, Volatile.Read(ref finished));
        }) { IsBackground = true };
        b.Start();
        bool returnedWhileGateClosed = b.Join(EarlyReturnWindow);
        gate.Set();
        b.Join();
        a.Join();
        Assert.False(returnedWhileGateClosed, "Synchronize returned while an item retired before it was still running");
        Assert.Equal(1, finishedWhenBReturned);
        Assert.Equal(0, rcu.PendingCount);
        Assert.Equal(rcu.RetiredCount, rcu.FreedCount);
    }

    [Fact]
    public void SynchronizeWaitsForACallbackAnotherThreadsPollIsRunning() =>
        AssertSynchronizeWaitsFor((rcu, body) => rcu.Retire(body), rcu => rcu.Poll());

    [Fact]
    public void SynchronizeWaitsForAFreeActionAnotherThreadsPollIsRunning() =>
        AssertSynchronizeWaitsFor((rcu, body) => rcu.Retire(42, item => { Assert.Equal(42, item); body(); }), rcu => rcu.Poll());

    [Fact]
    public void SynchronizeWaitsForACallbackAnotherThreadsSynchronizeIsRunning() =>
        AssertSynchronizeWaitsFor((rcu, body) => rcu.Retire(body), rcu => rcu.Synchronize());

    [Fact]
    public void SynchronizeWaitsForAnAutomaticPassOfRetireOnAnotherThread() =>
        AssertSynchronizeWaitsFor((rcu, body) => rcu.Retire(body), rcu =>
        {
            // The PollThreshold-th retirement (the gated item was the first) runs a pass on this thread, inside Retire.
            for (int i = 1; i < EpochReclaimer.PollThreshold; i++) rcu.Retire(static () => { });
        });

    [Fact]
    public void AFailureInThePassWaitedForIsReportedToTheWaiter()
    {
        var rcu = new EpochReclaimer();
        using var started = new ManualResetEventSlim();
        using var gate = new ManualResetEventSlim();
        rcu.Retire(() =>
        {
            started.Set();
            gate.Wait();
            throw new InvalidOperationException("late failure");
        });
        // The automatic pass keeps failures for an explicit pass; the waiting Synchronize is one.
        var a = new GuardedThread(() => { for (int i = 1; i < EpochReclaimer.PollThreshold; i++) rcu.Retire(static () => { }); }) { IsBackground = true };
        a.Start();
        started.Wait();
        Exception? seen = null;
        var b = new GuardedThread(() =>
        {
            try { rcu.Synchronize(); }
            catch (Exception e) { seen = e; }
        }) { IsBackground = true };
        b.Start();
        b.Join(EarlyReturnWindow);
        gate.Set();
        b.Join();
        a.Join();
        var agg = Assert.IsType<AggregateException>(seen);
        Assert.Contains(agg.InnerExceptions, e => e.Message == "late failure");
        rcu.Synchronize();   // reported once
    }

    [Fact]
    public void SynchronizeInsideACallbackDoesNotWaitForItsOwnPass()
    {
        var rcu = new EpochReclaimer();
        int inner = 0, later = 0;
        rcu.Retire(() =>
        {
            rcu.Retire(() => Interlocked.Increment(ref later));
            rcu.Synchronize();   // would deadlock if it waited for the pass it runs in
            inner = 1;
        });
        rcu.Synchronize();
        Assert.Equal(1, inner);
        Assert.Equal(1, later);
        Assert.Equal(0, rcu.PendingCount);
    }

    [Fact]
    public void CallbacksOnTwoThreadsCallingSynchronizeDoNotWaitForEachOther()
    {
        var rcu = new EpochReclaimer();
        using var xStarted = new ManualResetEventSlim();
        using var bothIn = new Barrier(2);
        int done = 0;
        void Body()
        {
            bothIn.SignalAndWait();   // both passes are registered and running
            rcu.Synchronize();        // each would wait for the other's pass if callbacks waited for passes
            Interlocked.Increment(ref done);
        }
        rcu.Retire(() => { xStarted.Set(); Body(); });
        var a = new GuardedThread(() => rcu.Poll()) { IsBackground = true };
        a.Start();
        xStarted.Wait();
        rcu.Retire(Body);
        var b = new GuardedThread(() => rcu.Poll()) { IsBackground = true };
        b.Start();
        // A deadlock detector, not a timing assertion: the two threads have nothing else to wait for.
        Assert.True(a.Join(TimeSpan.FromSeconds(60)) & b.Join(TimeSpan.FromSeconds(60)), "callbacks deadlocked in Synchronize");
        Assert.Equal(2, done);
    }
}
