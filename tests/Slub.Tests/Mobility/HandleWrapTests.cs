namespace Slub.Tests.Mobility;

/// <summary>
/// The specified limits of <see cref="MovableHandleTable"/>'s stale-handle and foreign-handle checks (its remarks on
/// handle reuse): a slot's generation wraps after <see cref="MovableHandleTable.HandleGenerations"/> reuses and a
/// table's tag after <see cref="MovableHandleTable.TableTags"/> tables; up to the wrap the checks refuse.
/// </summary>
public class HandleWrapTests
{
    [Fact]
    public void AStaleHandleIsRefusedUntilItsSlotWasReusedHandleGenerationsTimes()
    {
        using var a = TestAllocator.Create();
        var t = new MovableHandleTable(a, "gen_wrap", 8);
        long stale = t.Allocate();
        t.Free(stale);
        for (int reuse = 1; reuse < MovableHandleTable.HandleGenerations; reuse++)
        {
            long h = t.Allocate();   // last freed, first reused: the same slot every time
            if (reuse % 4096 == 1 || reuse == MovableHandleTable.HandleGenerations - 1)
            {
                Assert.NotEqual(stale, h);
                Assert.Equal(stale & ((1L << 28) - 1), h & ((1L << 28) - 1));   // same slot, another generation
                Assert.Throws<ArgumentException>(() => { using var s = t.Access(stale); });
                Assert.Equal(0, t.AddressOf(stale));
            }
            t.Free(h);
        }
        Assert.Throws<ArgumentException>(() => t.Free(stale));
        // Reuse number 2^19: the generation has wrapped and the new handle is the stale one, bit for bit.
        long back = t.Allocate();
        Assert.Equal(stale, back);
        using (var s = t.Access(stale)) s.Bytes.Fill(1);   // taken for the live handle: the documented limit
        t.Free(stale);
        Assert.Equal(0, t.Count);
    }

    [Fact]
    public void TablesWhoseCreationNumbersDifferByTableTagsShareHandles()
    {
        using var a = TestAllocator.Create();
        var first = new MovableHandleTable(a, "tag_first", 8, SlabFlags.None, creationNumber: 7);
        var wrapped = new MovableHandleTable(a, "tag_wrapped", 8, SlabFlags.None, creationNumber: 7 + MovableHandleTable.TableTags);
        var other = new MovableHandleTable(a, "tag_other", 8, SlabFlags.None, creationNumber: 8);
        Assert.Equal(first.Tag, wrapped.Tag);
        long h = first.Allocate();
        var e = Assert.Throws<ArgumentException>(() => wrapped.Free(h));   // nothing live there yet
        long w = wrapped.Allocate();
        Assert.Equal(h, w);                                                 // same history, same handle
        using (var s = wrapped.Access(h)) Assert.Equal(wrapped.AddressOf(w), s.Payload);   // another table's handle, taken
        long o = other.Allocate();
        Assert.NotEqual(h, o);
        e = Assert.Throws<ArgumentException>(() => { using var s = other.Access(h); });   // a different tag is always refused
        Assert.Contains("another table", e.Message);
        first.Free(h);
        wrapped.Free(w);
        other.Free(o);
    }
}
