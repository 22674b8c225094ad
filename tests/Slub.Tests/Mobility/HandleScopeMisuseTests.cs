using System.Reflection;

namespace Slub.Tests.Mobility;

/// <summary>
/// <see cref="MovableHandleTable.Access"/> scope misuse: a Free, Allocate or second Access on the same thread
/// inside a scope whose handle shares the lock stripe used to spin forever; a scope disposed twice released the lock
/// of whichever thread held the stripe next, letting its object move or be freed under it.
/// </summary>
public class HandleScopeMisuseTests
{
    private const int Stripes = 64;

    [Fact]
    public void FreeInsideAScopeOfTheSameStripeThrowsInsteadOfDeadlocking()
    {
        using var a = TestAllocator.Create();
        var t = new MovableHandleTable(a, "scope_nested", 16);
        var hs = Enumerable.Range(0, Stripes + 1).Select(_ => t.Allocate()).ToList();
        long first = hs[0], sameStripe = hs[Stripes];   // consecutive slots: 64 apart share a stripe
        using (var s = t.Access(first))
        {
            var e = Assert.Throws<InvalidOperationException>(() => t.Free(sameStripe));
            Assert.Contains("scope_nested", e.Message);
            Assert.Throws<InvalidOperationException>(() => { using var inner = t.Access(sameStripe); });
            t.Free(hs[1]);   // another stripe: fine
        }
        t.Free(sameStripe);  // after the scope: fine
        Assert.Equal(Stripes - 1, t.Count);
    }

    [Fact]
    public void ASecondDisposeDoesNotReleaseAnotherThreadsLock()
    {
        using var a = TestAllocator.Create();
        var t = new MovableHandleTable(a, "scope_twice", 16);
        long h = t.Allocate();
        var s = t.Access(h);
        s.Dispose();
        using var held = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var other = new GuardedThread(() =>
        {
            using (t.Access(h)) { held.Set(); release.Wait(); }
        });
        other.Start();
        held.Wait();
        s.Dispose();   // again: the stripe is the other thread's now
        bool stillHeld = StripeWord(t, h) != 0;
        release.Set();
        other.Join();
        Assert.True(stillHeld, "the second Dispose released the other thread's lock");
        Assert.Equal(0, StripeWord(t, h));
    }

    private static int StripeWord(MovableHandleTable t, long handle)
    {
        var locks = (int[])typeof(MovableHandleTable).GetField("_stripeLocks", BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(t)!;
        return Volatile.Read(ref locks[(int)(handle & (Stripes - 1)) * 16]);
    }
}
