using Slub.Rcu;
using XA = Slub.XArray.XArray;

namespace Slub.Tests.XArray;

/// <summary>
/// A throwing <see cref="EpochReclaimer.Retire(Action)"/> callback used to abandon every other item of the same
/// pass (the XArray's retired nodes leaked) and to surface inside whatever unrelated call ran the pass, e.g. an
/// <see cref="XA.Erase"/> that is documented never to fail.
/// </summary>
public class ReclaimerCallbackFailureTests
{
    [Fact]
    public void AThrowingCallbackDoesNotLoseTheOthersOrFailAnUnrelatedRetire()
    {
        var rcu = new EpochReclaimer();
        int ran = 0;
        rcu.Retire(() => throw new InvalidOperationException("callback bug"));
        for (int i = 0; i < 10; i++) rcu.Retire(() => Interlocked.Increment(ref ran));
        // Retire never blocks and never fails: the automatic pass it runs must not throw the callback's exception.
        for (int i = 0; i < EpochReclaimer.PollThreshold; i++) rcu.Retire(() => Interlocked.Increment(ref ran));
        var e = Assert.Throws<AggregateException>(rcu.Synchronize);   // reported once, to a caller that waits
        Assert.Contains(e.InnerExceptions, x => x.Message == "callback bug");
        Assert.Equal(10 + EpochReclaimer.PollThreshold, ran);        // every other callback still ran
        Assert.Equal(0, rcu.PendingCount);
        Assert.Equal(1, rcu.CallbackFailures);
        rcu.Synchronize();                                           // the failure is not reported twice
    }

    [Fact]
    public void FreeActionsThatRetireMoreDuringAPassRunOnceEach()
    {
        // Passes reuse one list for their ready items; a free action that retires (and so may run a nested pass)
        // must neither lose nor repeat items.
        var rcu = new EpochReclaimer();
        var freed = new int[3 * EpochReclaimer.PollThreshold];
        Action<nint> free = null!;
        free = i =>
        {
            freed[i]++;
            if (i < EpochReclaimer.PollThreshold) rcu.Retire(i + EpochReclaimer.PollThreshold, free);   // a second generation
        };
        for (int round = 0; round < 3; round++)
        {
            Array.Clear(freed);
            for (nint i = 0; i < EpochReclaimer.PollThreshold; i++) rcu.Retire(i, free);
            rcu.Synchronize();
            rcu.Synchronize();
            Assert.Equal(0, rcu.PendingCount);
            for (int i = 0; i < 2 * EpochReclaimer.PollThreshold; i++) Assert.Equal(1, freed[i]);
        }
        Assert.Equal(rcu.RetiredCount, rcu.FreedCount);
    }

    [Fact]
    public void XArrayEraseSurvivesAThrowingCallbackOnItsReclaimer()
    {
        using var a = TestAllocator.Create();
        using var xa = new XA(allocator: a);
        xa.Reclaimer.Retire(() => throw new InvalidOperationException("someone else's callback"));
        for (ulong round = 0; round < 8; round++)
        {
            for (ulong i = 0; i < 4096; i += 3) xa.StoreValue(i, i);
            for (ulong i = 0; i < 4096; i += 3) xa.Erase(i);   // retires nodes: automatic passes run here
        }
        Assert.True(xa.IsEmpty);
        Assert.ThrowsAny<Exception>(xa.Reclaimer.Synchronize);  // pending failure, if the passes did not report it
        xa.Reclaimer.Synchronize();
        Assert.Equal(0, xa.Reclaimer.PendingCount);
    }
}
