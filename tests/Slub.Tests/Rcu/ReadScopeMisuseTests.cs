using Slub.Rcu;

namespace Slub.Tests.Rcu;

/// <summary>
/// A read section (<see cref="EpochReclaimer.EnterRead"/>, <c>XArray.ReadLock()</c>) belongs to the thread that entered
/// it: its record is that thread's. A scope that could be stored or carried across an <c>await</c> was disposed on the
/// continuation's thread: that thread's record was decremented (or <c>ExitRead without EnterRead</c> was thrown) and the
/// entering thread's section stayed open for good, so every later grace period — <see cref="EpochReclaimer.Synchronize"/>,
/// <c>xa_node</c> migration, dcache reclaim — waited forever. A second <c>Dispose</c> of a nested scope ended the
/// enclosing section early, leaving its reader unprotected.
/// </summary>
public class ReadScopeMisuseTests
{
    [Fact]
    public void ReadScopeIsARefStructSoItCannotCrossAnAwaitOrLeaveItsThread()
    {
        // A ref struct cannot be a field of a class, be captured by a lambda, or live across an await (CS4007):
        // the compiler keeps the scope on its thread, as it does for Lock.Scope and XaReader.
        Assert.True(typeof(EpochReclaimer.ReadScope).IsByRefLike);
        Assert.True(typeof(Slub.XArray.XArray).GetMethod(nameof(Slub.XArray.XArray.ReadLock))!.ReturnType.IsByRefLike);
    }

    [Fact]
    public void DisposingANestedScopeTwiceThrowsAndKeepsTheEnclosingSectionOpen()
    {
        var rcu = new EpochReclaimer();
        using (rcu.EnterRead())
        {
            var inner = rcu.EnterRead();
            inner.Dispose();
            var e = DisposeExpectingMisuse(inner);
            Assert.Contains("disposed twice", e.Message);
            Assert.True(rcu.InReadSection);   // the outer section still protects this thread's reads

            // ... so a grace period started now cannot end before the outer section does.
            int freed = 0;
            rcu.Retire(() => Interlocked.Increment(ref freed));
            Assert.Equal(0, rcu.Poll());
            Assert.Equal(0, Volatile.Read(ref freed));
        }
        Assert.False(rcu.InReadSection);
    }

    [Fact]
    public void DisposingAnOuterScopeBeforeAnInnerOneThrows()
    {
        var rcu = new EpochReclaimer();
        var outer = rcu.EnterRead();
        var inner = rcu.EnterRead();
        var e = DisposeExpectingMisuse(outer);
        Assert.Contains("innermost", e.Message);
        inner.Dispose();
        outer.Dispose();
        Assert.False(rcu.InReadSection);
    }

    [Fact]
    public void ADefaultScopeDoesNothing()
    {
        var rcu = new EpochReclaimer();
        using (rcu.EnterRead())
        {
            default(EpochReclaimer.ReadScope).Dispose();
            Assert.True(rcu.InReadSection);
        }
    }

    // A lambda cannot capture a ref struct (Assert.Throws takes one): the scope is disposed here instead.
    private static InvalidOperationException DisposeExpectingMisuse(EpochReclaimer.ReadScope scope)
    {
        try { scope.Dispose(); }
        catch (InvalidOperationException e) { return e; }
        Assert.Fail("Dispose of a scope that is not the innermost open one did not throw");
        return null!;
    }
}
