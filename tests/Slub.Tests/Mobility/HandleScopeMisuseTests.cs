using System.Reflection;

namespace Slub.Tests.Mobility;

/// <summary>
/// <see cref="MovableHandleTable.Access"/> scope misuse: a Free, Allocate or second Access on the same thread
/// inside a scope whose handle shares the lock stripe used to spin forever; a scope disposed twice released the lock
/// of whichever thread held the stripe next, letting its object move or be freed under it; a disposed scope still
/// handed out its payload (<see cref="MovableHandleTable.Scope.Bytes"/>, <see cref="MovableHandleTable.Scope.Payload"/>)
/// although nothing kept the object there any more: writes through it landed in a freed or moved slot.
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

    [Fact]
    public void ThePayloadOfADisposedScopeThrowsInsteadOfReachingAMovedObject()
    {
        using var a = TestAllocator.Create();
        var t = new MovableHandleTable(a, "scope_after_dispose", 16);
        // Fragment the cache so that a shrink moves the accessed object.
        var hs = Enumerable.Range(0, 2000).Select(_ => t.Allocate()).ToList();
        long h = hs[0];
        foreach (var x in hs.Skip(1).Where((_, i) => i % 8 != 0)) t.Free(x);
        var s = t.Access(h);
        nint before = s.Payload;
        s.Bytes.Fill(7);
        s.Dispose();
        t.Cache.Shrink(DefragPolicy.EmptyAllCandidates);   // the series' policy: every object of a partial slab moves
        Assert.NotEqual(before, t.AddressOf(h));   // the object moved: the old payload address is stale

        var e = ReadExpectingDisposed(s, payload: false);
        Assert.Contains("scope_after_dispose", e.Message);
        Assert.Contains(h.ToString(), e.Message);
        ReadExpectingDisposed(s, payload: true);
        using (var again = t.Access(h)) Assert.All(again.Bytes.ToArray(), b => Assert.Equal(7, b));
    }

    [Fact]
    public void ADisposedScopeStaysDisposedWhenTheThreadTakesItsStripeAgain()
    {
        using var a = TestAllocator.Create();
        var t = new MovableHandleTable(a, "scope_stripe_again", 16);
        var hs = Enumerable.Range(0, Stripes + 1).Select(_ => t.Allocate()).ToList();
        var s = t.Access(hs[0]);
        s.Dispose();
        t.Free(hs[0]);
        using (var other = t.Access(hs[Stripes]))   // same stripe, held by this thread again
        {
            ReadExpectingDisposed(s, payload: false);   // its object was freed meanwhile
            Assert.Equal(16, other.Bytes.Length);
        }
    }

    [Fact]
    public void ADefaultScopeHasNoPayload()
    {
        ReadExpectingDisposed(default, payload: false);
        ReadExpectingDisposed(default, payload: true);
        default(MovableHandleTable.Scope).Dispose();
    }

    // A lambda cannot capture a ref struct (Assert.Throws takes one): the scope is read here instead.
    private static ObjectDisposedException ReadExpectingDisposed(MovableHandleTable.Scope s, bool payload)
    {
        try
        {
            if (payload) _ = s.Payload;
            else _ = s.Bytes.Length;
        }
        catch (ObjectDisposedException e) { return e; }
        Assert.Fail($"reading {(payload ? "Payload" : "Bytes")} of a disposed scope did not throw ObjectDisposedException");
        return null!;
    }

    private static int StripeWord(MovableHandleTable t, long handle)
    {
        var locks = (int[])typeof(MovableHandleTable).GetField("_stripeLocks", BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(t)!;
        return Volatile.Read(ref locks[(int)(handle & (Stripes - 1)) * 16]);
    }
}
