namespace Slub.Tests.Mobility;

/// <summary>
/// Handle misuse on a <see cref="MovableHandleTable"/> must throw, not reach another object: a handle freed twice,
/// a stale handle whose slot was reused by a later <see cref="MovableHandleTable.Allocate"/>, and a handle of
/// another table (handles used to be bare slot numbers, so all of these hit whatever object sat in that slot).
/// </summary>
public class HandleMisuseTests
{
    [Fact]
    public void DoubleFreeThrows()
    {
        using var a = TestAllocator.Create();
        var t = new MovableHandleTable(a, "misuse_double", 16);
        long h = t.Allocate();
        t.Free(h);
        var e = Assert.Throws<ArgumentException>(() => t.Free(h));
        Assert.Contains("misuse_double", e.Message);
        Assert.Equal(0, t.Count);
    }

    [Fact]
    public void StaleHandleAfterReuseIsRefusedAndTheNewObjectSurvives()
    {
        using var a = TestAllocator.Create();
        var t = new MovableHandleTable(a, "misuse_stale", 16);
        long stale = t.Allocate();
        t.Free(stale);
        long fresh = t.Allocate();   // takes the freed slot
        using (var s = t.Access(fresh)) s.Bytes.Fill(0x5A);
        Assert.NotEqual(stale, fresh);
        Assert.Throws<ArgumentException>(() => t.Free(stale));
        Assert.Throws<ArgumentException>(() => { using var s = t.Access(stale); });
        Assert.Equal(0, t.AddressOf(stale));
        Assert.Equal(1, t.Count);
        using (var s = t.Access(fresh)) Assert.All(s.Bytes.ToArray(), b => Assert.Equal(0x5A, b));
        t.Free(fresh);
    }

    [Fact]
    public void HandleOfAnotherTableIsRefused()
    {
        using var a = TestAllocator.Create();
        var t = new MovableHandleTable(a, "misuse_mine", 16);
        var other = new MovableHandleTable(a, "misuse_theirs", 16);
        long mine = t.Allocate();
        long theirs = other.Allocate();
        var e = Assert.Throws<ArgumentException>(() => t.Free(theirs));
        Assert.Contains("another table", e.Message);
        Assert.Throws<ArgumentException>(() => { using var s = t.Access(theirs); });
        Assert.Equal(1, t.Count);
        Assert.Equal(1, other.Count);
        t.Free(mine);
        other.Free(theirs);
    }

    [Fact]
    public void ReusedHandlesStillMoveUnderDefragmentation()
    {
        using var a = TestAllocator.Create(cpus: 1);
        var t = new MovableHandleTable(a, "misuse_defrag", 56);
        var hs = Enumerable.Range(0, 3000).Select(_ => t.Allocate()).ToList();
        for (int i = 0; i < hs.Count; i++) if (i % 2 == 0) t.Free(hs[i]);
        var again = Enumerable.Range(0, 1000).Select(_ => t.Allocate()).ToList();   // reused slots, next generation
        var live = hs.Where((_, i) => i % 2 != 0).Concat(again).ToList();
        foreach (long h in live) using (var s = t.Access(h)) BitConverter.TryWriteBytes(s.Bytes, h);
        for (int i = 0; i < live.Count; i++) if (i % 3 != 0) t.Free(live[i]);
        live = live.Where((_, i) => i % 3 == 0).ToList();
        long movedBefore = t.Cache.Defrag.ObjectsMoved;
        t.Cache.Shrink();
        Assert.True(t.Cache.Defrag.ObjectsMoved > movedBefore);
        foreach (long h in live) using (var s = t.Access(h)) Assert.Equal(h, BitConverter.ToInt64(s.Bytes));
    }

    [Fact]
    public void ConstructorArgumentsAreCheckedByName()
    {
        // A null allocator was a NullReferenceException; a payload of 0 said only "Specified argument was out of the
        // range of valid values".
        Assert.Equal("allocator", Assert.Throws<ArgumentNullException>(() => new MovableHandleTable(null!, "misuse_ctor", 16)).ParamName);
        using var a = TestAllocator.Create();
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new MovableHandleTable(a, "misuse_ctor", 0));
        Assert.Equal("payloadSize", e.ParamName);
        Assert.Contains("misuse_ctor: payload size must be at least 1 byte", e.Message);
        Assert.Null(a.FindCache("misuse_ctor"));
    }
}
