using Slub.Rcu;

namespace Slub.Tests.Faults;

/// <summary>
/// A retired item's callback that throws must not cost the other items of the same grace period their turn: they
/// are already off the pending list, so any that did not run then would never run (for an XArray, retired nodes
/// that stay allocated for good).
/// </summary>
public class ReclaimerCallbackFaultTests
{
    [Fact]
    public void AThrowingCallbackDoesNotStrandTheOthersOfItsGracePeriod()
    {
        var rcu = new EpochReclaimer();
        int ran = 0;
        rcu.Retire(() => throw new InjectedCallbackException("first callback"));
        rcu.Retire(() => Interlocked.Increment(ref ran));
        rcu.Retire(0x1000, _ => Interlocked.Increment(ref ran));
        var e = Assert.Throws<InjectedCallbackException>(rcu.Synchronize);
        Assert.Equal("first callback", e.Message);
        Assert.Equal(2, ran);
        Assert.Equal(0, rcu.PendingCount);
        Assert.Equal(3, rcu.FreedCount);
        // The same through a non-blocking pass.
        rcu.Retire(() => throw new InjectedCallbackException("second callback"));
        rcu.Retire(() => Interlocked.Increment(ref ran));
        Assert.Throws<InjectedCallbackException>(() => rcu.Poll());
        Assert.Equal(3, ran);
        Assert.Equal(0, rcu.PendingCount);
    }
}
