using Slub.XArray;
using XA = Slub.XArray.XArray;

namespace Slub.Tests.XArray;

/// <summary>
/// The throwing forms name what failed: the operation, the index (or range, or id limit) and the error. The message
/// was "Insert: index busy (EBUSY)" — which index, the caller had to work out.
/// </summary>
public class XArrayExceptionMessageTests
{
    [Fact]
    public void WritesAfterDisposeSayWhatWasDisposed()
    {
        // Both used to say only "Cannot access a disposed object. Object name: 'XArray'."
        using var a = TestAllocator.Create();
        var xa = new XA(allocator: a);
        xa.Dispose();
        var own = Assert.Throws<ObjectDisposedException>(() => xa.StoreValue(1, 1));
        Assert.Contains("the array has been disposed", own.Message);

        var b = TestAllocator.Create();
        var other = new XA(allocator: b);
        other.StoreValue(1000, 1);
        b.Dispose();
        var gone = Assert.Throws<ObjectDisposedException>(() => other.StoreValue(1, 1));
        Assert.Contains("SlabAllocator", gone.Message);
        Assert.Contains("xa_node", gone.Message);
    }

    [Fact]
    public void ErrorsNameTheIndexTheRangeOrTheLimit()
    {
        using var a = TestAllocator.Create();
        using var xa = new XA(allocator: a);
        xa.StoreValue(42, 1);
        var busy = Assert.Throws<XArrayException>(() => xa.Insert(42, XaEntry.FromValue(2)));
        Assert.Equal(XaError.Busy, busy.Error);
        Assert.Equal("Insert(42): index busy (EBUSY)", busy.Message);

        var invalid = Assert.Throws<XArrayException>(() => xa.Store(7, XaEntry.Retry));
        Assert.Equal("Store(7): invalid argument or entry (EINVAL)", invalid.Message);
        Assert.Equal("StoreOrder(0, order 64): invalid argument or entry (EINVAL)",
            Assert.Throws<XArrayException>(() => xa.StoreOrder(0, 64, XaEntry.FromValue(1))).Message);
        Assert.Equal("StoreRange(10..5): invalid argument or entry (EINVAL)",
            Assert.Throws<XArrayException>(() => xa.StoreRange(10, 5, XaEntry.FromValue(1))).Message);
        Assert.Equal("CompareExchange(7): invalid argument or entry (EINVAL)",
            Assert.Throws<XArrayException>(() => xa.CompareExchange(7, XaEntry.Null, XaEntry.Retry)).Message);

        using var ids = new XA(XaFlags.Alloc, a);
        var limit = new XaLimit(1, 2);
        ids.Alloc(XaEntry.FromValue(1), limit);
        ids.Alloc(XaEntry.FromValue(2), limit);
        var full = Assert.Throws<XArrayException>(() => ids.Alloc(XaEntry.FromValue(3), limit));
        Assert.Equal(XaError.Busy, full.Error);
        Assert.Equal("Alloc(ids 1..2): no free id (EBUSY)", full.Message);
        uint next = 1;
        Assert.Equal("AllocCyclic(ids 1..2): no free id (EBUSY)",
            Assert.Throws<XArrayException>(() => ids.AllocCyclic(XaEntry.FromValue(3), limit, ref next, out _)).Message);
    }
}
