using Slub.XArray;
using XA = Slub.XArray.XArray;

namespace Slub.Tests.XArray;

/// <summary>Ports of lib/test_xarray.c checks of the advanced (xas_*) API.</summary>
public class CursorTests : XaTest
{
    [Fact]
    public void MoveTiny()
    {
        var xa = New();
        using (xa.Lock())
        {
            var xas = new XaState(xa, 0);
            Is(XaEntry.Null, xas.Next());
            Is(XaEntry.Null, xas.Next());
        }
        StoreIndex(xa, 0);
        using (xa.Lock())
        {
            var xas = new XaState(xa, 0);
            Is(V(0), xas.Next());
            Is(XaEntry.Null, xas.Next());
            xas.Set(0);
            Is(V(0), xas.Prev());
            Is(XaEntry.Null, xas.Prev());
        }
        EraseIndex(xa, 0);
        AssertEmpty(xa);
    }

    [Fact]
    public void MoveMax()
    {
        var xa = New();
        StoreIndex(xa, ulong.MaxValue);
        using (xa.ReadLock())
        {
            var xas = new XaState(xa, 0);
            Is(V(ulong.MaxValue), xas.Find());
            Is(XaEntry.Null, xas.Find());
            xas.Set(0);
            Is(V(ulong.MaxValue), xas.Find());
            xas.Pause();
            Is(XaEntry.Null, xas.Find());
        }
        EraseIndex(xa, ulong.MaxValue);
        AssertEmpty(xa);
    }

    [Fact]
    public void MoveSmall()
    {
        var xa = New();
        for (int i = 0; i < 16; i++) MoveSmallOne(xa, 1UL << i);
        for (int i = 2; i < 16; i++) MoveSmallOne(xa, (1UL << i) - 1);
    }

    private static void MoveSmallOne(XA xa, ulong idx)
    {
        StoreIndex(xa, 0);
        StoreIndex(xa, idx);
        using (xa.ReadLock())
        {
            var xas = new XaState(xa, 0);
            for (ulong i = 0; i < idx * 4; i++)
            {
                var e = xas.Next();
                Is(i, xas.Index);
                Is(i == 0 || i == idx ? V(i) : XaEntry.Null, e);
            }
            var p = xas.Next();   // one past
            Is(XaEntry.Null, p);
            ulong at = xas.Index;
            while (xas.Index > 0)
            {
                var e = xas.Prev();
                ulong i = xas.Index;
                Is(i == 0 || i == idx ? V(i) : XaEntry.Null, e);
            }
            Assert.True(at > 0);
            xas.Set(ulong.MaxValue);
            Is(XaEntry.Null, xas.Next());
            Assert.Equal(ulong.MaxValue, xas.Index);
            Is(V(0), xas.Next());
            Assert.Equal(0UL, xas.Index);
            Is(XaEntry.Null, xas.Prev());
            Assert.Equal(ulong.MaxValue, xas.Index);
        }
        EraseIndex(xa, 0);
        EraseIndex(xa, idx);
        AssertEmpty(xa);
    }

    [Fact]
    public void Move()
    {
        var xa = New();
        const ulong n = 1UL << 16;
        for (ulong i = 0; i < n; i++) StoreIndex(xa, i);
        Walk(xa, n, hole: null);
        for (ulong i = 256; i < (1UL << 15); i++) EraseIndex(xa, i);
        Walk(xa, n, hole: (256, (1UL << 15) - 1));
        xa.Validate();
        xa.Destroy();
        AssertEmpty(xa);
    }

    private static void Walk(XA xa, ulong n, (ulong lo, ulong hi)? hole)
    {
        bool present(ulong i) => hole is not { } h || i < h.lo || i > h.hi;
        using (xa.ReadLock())
        {
            var xas = new XaState(xa, n - 1);
            var e = xas.Load();
            Is(V(n - 1), e);
            for (ulong i = n - 1; i > 0; i--)
            {
                e = xas.Prev();
                Is(i - 1, xas.Index);
                Is(present(i - 1) ? V(i - 1) : XaEntry.Null, e);
            }
            Is(XaEntry.Null, xas.Prev());
            Assert.Equal(ulong.MaxValue, xas.Index);
            for (ulong i = 0; i < n; i++)
            {
                e = xas.Next();
                Is(i, xas.Index);
                Is(present(i) ? V(i) : XaEntry.Null, e);
            }
        }
    }

    [Fact]
    public void XasErase()
    {
        var xa = New();
        for (ulong i = 0; i < 200; i++)
        {
            using (xa.Lock())
            {
                for (ulong j = i; j < 2 * i + 17; j++)
                {
                    var xas = new XaState(xa, j);
                    Is(XaEntry.Null, xas.Store(V(j)));
                    Assert.Equal(XaError.None, xas.Error);
                }
                var top = new XaState(xa, ulong.MaxValue);
                top.Store(V(0));
                top.Store(XaEntry.Null);
                var it = new XaState(xa, 0);
                ulong expect = i;
                for (var e = it.Find(); !e.IsNull; e = it.Find())
                {
                    Is(V(expect), e);
                    Assert.Equal(expect, it.Index);
                    it.Store(XaEntry.Null);
                    expect++;
                }
                Assert.Equal(2 * i + 17, expect);
            }
            AssertEmpty(xa);
        }
    }

    [Fact]
    public void Pause()
    {
        var xa = New();
        int count = 0;
        for (int order = 0; order < 64; order++)
        {
            ulong index = 1UL << order;
            StoreOrder(xa, index, order, V(index));
            count++;
        }
        xa.Validate();
        Assert.Equal(count, CountWith(xa, 0, pause: false));
        Assert.Equal(count, CountWith(xa, 0, pause: true));
        xa.Destroy();

        // Reversed: order 63 at 0, 62 at 2^63, 61 at 2^63 + 2^62, …
        ulong idx = 0;
        count = 0;
        for (int order = 63; order >= 0; order--)
        {
            StoreOrder(xa, idx, order, V(idx));
            count++;
            idx += 1UL << order;
        }
        xa.Validate();
        Assert.Equal(count, CountWith(xa, 0, pause: false));
        Assert.Equal(count, CountWith(xa, 0, pause: true));
        Assert.Equal(count, CountWith(xa, 1, pause: true));
        xa.Destroy();
        AssertEmpty(xa);
    }

    private static int CountWith(XA xa, ulong start, bool pause)
    {
        int n = 0;
        ulong last = 0;
        var xas = new XaState(xa, start);
        while (true)
        {
            XaEntry e;
            ulong index;
            using (xa.ReadLock())
            {
                e = xas.Find();
                index = xas.Index;   // before Pause moves it past the entry
                if (!e.IsNull && pause) xas.Pause();
            }
            if (e.IsNull) break;
            if (n > 0) Assert.True(index > last);
            last = index;
            n++;
        }
        return n;
    }

    [Fact]
    public void FindEntryWithPause()
    {
        var xa = New();
        for (int order = 0; order < 20; order++)
        {
            for (ulong index = 0; index < (1UL << (order + 5)); index += 1UL << order)
            {
                StoreOrder(xa, index, order, V(index));
                Is(V(index), xa.Load(index));
                Assert.Equal((long)index, FindEntry(xa, V(index)));
            }
            Assert.Equal(-1, FindEntry(xa, XaEntry.FromPointer(0x4444)));
            xa.Destroy();
        }
        Assert.True(xa.IsEmpty);
    }

    private static long FindEntry(XA xa, XaEntry item)
    {
        var xas = new XaState(xa, 0);
        int n = 0;
        using (xa.ReadLock())
            for (var e = xas.Find(); !e.IsNull; e = xas.Find())
            {
                if (e == item) return (long)xas.Index;
                if (++n % 4 == 0) xas.Pause();
            }
        return -1;
    }

    [Fact]
    public void StoreLeavesTheCursorOnTheStoredEntry()
    {
        // xas_store then xas_set_mark is how __xa_alloc and the page cache mark what they just stored.
        var xa = New();
        StoreIndex(xa, 6);
        StoreIndex(xa, 200);
        using (xa.Lock())
        {
            var xas = new XaState(xa, 5);
            Is(XaEntry.Null, xas.Store(V(5)));
            xas.SetMark(XaMark.Mark1);
            Assert.True(xas.GetMark(XaMark.Mark1));
            Is(V(6), xas.Next());                       // xas_next moves on from the stored index
            Assert.Equal(6UL, xas.Index);

            var multi = new XaState(xa, 64, order: 6);   // a store that grows the tree
            Is(XaEntry.Null, multi.Store(V(64)));
            Assert.Equal(6, multi.GetOrder());
            multi.SetMark(XaMark.Mark2);
            Is(V(200), multi.Find());                   // continues after the whole multi-index entry
            Assert.Equal(200UL, multi.Index);

            var erase = new XaState(xa, 6);
            Is(V(6), erase.Store(XaEntry.Null));
            erase.SetMark(XaMark.Mark1);                // nothing there any more: no-op
            Is(XaEntry.Null, erase.Next());
            Assert.Equal(7UL, erase.Index);
        }
        Assert.True(xa.GetMark(5, XaMark.Mark1));
        Assert.True(xa.GetMark(100, XaMark.Mark2));
        Assert.False(xa.GetMark(6, XaMark.Mark1));
        xa.Validate();
    }

    [Fact]
    public void PauseMovesTheIndexPastTheEntry()
    {
        var xa = New();
        StoreIndex(xa, 5);
        StoreIndex(xa, 6);
        StoreOrder(xa, 8, 3, V(8));
        using (xa.ReadLock())
        {
            var xas = new XaState(xa, 0);
            Is(V(5), xas.Find());
            xas.Pause();
            Assert.Equal(6UL, xas.Index);
            Is(V(6), xas.Next());                       // xas_next after xas_pause loads the new index
            Assert.Equal(6UL, xas.Index);
            Is(V(8), xas.Find());
            Assert.Equal(8UL, xas.Index);
            xas.Pause();                                // skips the rest of the order-3 entry
            Assert.Equal(16UL, xas.Index);
            Is(XaEntry.Null, xas.Find());

            var head = new XaState(xa, 0);
            StoreIndex(xa, 0);
            Is(V(0), head.Find());
            head.Pause();
            Assert.Equal(1UL, head.Index);
        }
    }

    [Fact]
    public void XasRetryPortablePart()
    {
        var xa = New();
        StoreIndex(xa, 0);
        StoreIndex(xa, 1);
        using (xa.ReadLock())
        {
            var xas = new XaState(xa, 0);
            Is(V(0), xas.Find());
            EraseIndex(xa, 1);
            // The tree collapsed; the old leaf now holds retry entries and Reload walks again from the head.
            Is(V(0), xas.Reload());
            Assert.Equal(0, xas.NodeAddress);
            Is(XaEntry.Null, xa.Store(1, V(1)));
            var again = new XaState(xa, 0);
            Is(V(0), again.Load());
            Assert.NotEqual(0, again.NodeAddress);
        }
        // Under the lock a cursor walk visits and overwrites both entries.
        using (xa.Lock())
        {
            var xas = new XaState(xa, 0);
            int seen = 0;
            for (var e = xas.Find(); !e.IsNull; e = xas.Find())
            {
                Is(V(xas.Index), e);
                xas.Store(V(xas.Index + 100));
                seen++;
            }
            Assert.Equal(2, seen);
        }
        Is(V(100), xa.Erase(0));
        Is(V(101), xa.Erase(1));
        AssertEmpty(xa);
    }

    [Fact]
    public void XasGetOrderAndMarks()
    {
        var xa = New();
        for (int order = 0; order < 20; order++)
        {
            ulong index = 3UL << order;
            StoreOrder(xa, index, order, V(index));
            using (xa.Lock())
            {
                var xas = new XaState(xa, index + (1UL << order) - 1);
                Is(V(index), xas.Load());
                Assert.Equal(order, xas.GetOrder());
                xas.SetMark(XaMark.Mark1);
                Assert.True(xas.GetMark(XaMark.Mark1));
            }
            Assert.True(xa.GetMark(index, XaMark.Mark1));
            using (xa.Lock())
            {
                var xas = new XaState(xa, 0);
                Is(V(index), xas.FindMarked(XaMark.Mark1));
                Assert.Equal(index, xas.Index);
                xas.ClearMark(XaMark.Mark1);
            }
            Assert.False(xa.Marked(XaMark.Mark1));
            xa.Erase(index);
            AssertEmpty(xa);
        }
    }

    [Fact]
    public void CursorStoreNeedsLockAndRefusesRetry()
    {
        var xa = New();
        var xas = new XaState(xa, 3);
        Assert.Throws<InvalidOperationException>(() => xas.Store(V(1)));
        using (xa.Lock())
        {
            var c = new XaState(xa, 3);
            c.Store(XaEntry.Retry);
            Assert.Equal(XaError.Invalid, c.Error);
            c.Store(XaEntry.Zero);                     // a reservation through the cursor
            Assert.Equal(XaError.None, c.Error);
            c.Set(3);
            Assert.Equal(XaEntry.Zero, c.Load());      // the cursor sees reserved entries
        }
        Is(XaEntry.Null, xa.Load(3));
        Assert.False(xa.IsEmpty);
        xa.Release(3);
        AssertEmpty(xa);
    }

    [Fact]
    public void PreallocatedNodesAreUsedWithoutAllocating()
    {
        var xa = New();
        var xas = new XaState(xa, 1UL << 20);
        Assert.Equal(XaError.None, xas.PreallocateNodes(4));
        long before = xa.Nodes.NodesAllocated;
        using (xa.Lock()) xas.Store(V(7));
        Assert.Equal(before, xa.Nodes.NodesAllocated);
        Assert.Equal(0, xas.PreallocatedNodes);     // root + 3 levels down to index 2^20
        Is(V(7), xa.Load(1UL << 20));
        xa.Validate();
        xas.ReleasePreallocated();
    }
    /// <summary>
    /// xas_find_marked(XA_FREE_MARK) on an allocating array stops at free indices (the loop __xa_alloc is built on):
    /// positioned on each free slot of the tree in turn with a null entry, then at the bounds just past the tree, and
    /// left unwalked when nothing up to max is free. ALLOC1 never offers index 0.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void FindMarkedFreeStopsAtEachFreeIndex(bool alloc1)
    {
        var xa = New(alloc1 ? XaFlags.Alloc1 : XaFlags.Alloc);
        using (xa.Lock())
        {
            var empty = new XaState(xa, 0);
            Assert.True(empty.FindMarked(XaMark.Mark0).IsNull);
            Assert.False(empty.IsRestart);
            Assert.Equal(alloc1 ? 1UL : 0UL, empty.Index);   // the empty head (or, for ALLOC1, the bounds at 1)
            Assert.Equal(alloc1, empty.IsAtBounds);
        }
        for (ulong i = 0; i < 64; i++) xa.Store(i, V(i));
        xa.Erase(5);
        xa.Erase(40);
        using (xa.Lock())
        {
            var xas = new XaState(xa, 0);
            Assert.True(xas.FindMarked(XaMark.Mark0).IsNull);
            Assert.Equal(5UL, xas.Index);
            Assert.False(xas.IsAtBounds);
            Assert.True(xas.FindMarked(XaMark.Mark0).IsNull);
            Assert.Equal(40UL, xas.Index);
            Assert.True(xas.FindMarked(XaMark.Mark0).IsNull);
            Assert.True(xas.IsAtBounds);                       // the leaf is full from 41 on: 64 lies past the tree
            Assert.Equal(64UL, xas.Index);

            var limited = new XaState(xa, 6);
            Assert.True(limited.FindMarked(XaMark.Mark0, 39).IsNull);
            Assert.True(limited.IsRestart);                    // 6..39 all taken: "busy"
            Assert.Equal(6UL, limited.Index);
        }
        xa.Store(5, V(5));
        xa.Store(40, V(40));
        xa.Store(64, V(64));                                   // the tree grows a level: 65 is a free slot inside it
        using (xa.Lock())
        {
            var xas = new XaState(xa, 0);
            Assert.True(xas.FindMarked(XaMark.Mark0).IsNull);
            Assert.Equal(65UL, xas.Index);
            Assert.False(xas.IsAtBounds);
        }
        // The normal API keeps the kernel's answer: no entry carries the free mark.
        ulong at = 0;
        Assert.True(xa.Find(ref at, ulong.MaxValue, XaMark.Mark0).IsNull);
        xa.Destroy();
    }
}
