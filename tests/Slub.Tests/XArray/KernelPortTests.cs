using Slub.XArray;
using XA = Slub.XArray.XArray;

namespace Slub.Tests.XArray;

/// <summary>Ports of lib/test_xarray.c checks that make sense outside the kernel (normal API).</summary>
public class KernelPortTests : XaTest
{
    [Fact]
    public void XaErr()
    {
        var xa = New();
        long before = xa.Nodes.NodesAllocated;
        Assert.Equal(XaError.None, xa.TryStore(0, V(0), out _));   // index 0 lives in the head: no node
        Assert.Equal(before, xa.Nodes.NodesAllocated);
        Is(V(0), xa.Erase(0));
        // The user-space harness fails allocations that may not sleep; we inject slab failures instead.
        Alloc.Faults.CacheName = XaNodeCache.CacheName;
        Alloc.Faults.FailEveryNth = 1;
        Assert.Equal(XaError.NoMemory, xa.TryStore(1, V(0), out _));
        Assert.Equal(XaError.NoMemory, xa.TryStore(1, V(0), out _));
        var ex = Assert.Throws<XArrayException>(() => xa.Store(1, V(0)));
        Assert.Equal(XaError.NoMemory, ex.Error);
        AssertEmpty(xa);
        Alloc.Faults.FailEveryNth = 0;
        Assert.Equal(XaError.None, xa.TryStore(1, V(0), out _));
        Assert.Equal(XaError.None, xa.TryStore(1, V(0), out _));
        Is(V(0), xa.Erase(1));
        // Internal entries are refused by the normal API (the commented-out kernel check).
        Assert.Equal(XaError.Invalid, xa.TryStore(0, XaEntry.FromRaw(2), out _));
        Assert.Equal(XaError.Invalid, xa.TryStore(0, XaEntry.Retry, out _));
        AssertEmpty(xa);
    }

    [Fact]
    public void XaLoad()
    {
        var xa = New();
        for (ulong i = 0; i < 1024; i++)
        {
            for (ulong j = 0; j < 1024; j++)
                Is(j < i ? V(j) : XaEntry.Null, xa.Load(j));
            StoreIndex(xa, i);
        }
        xa.Validate();
        for (ulong i = 0; i < 1024; i++)
        {
            for (ulong j = 0; j < 1024; j++)
                Is(j >= i ? V(j) : XaEntry.Null, xa.Load(j));
            EraseIndex(xa, i);
        }
        AssertEmpty(xa);
    }

    [Fact]
    public void XaMark1()
    {
        var xa = New();
        for (ulong index = 0; index < 16384; index += 4) CheckMark1(xa, index);
    }

    private static void CheckMark1(XA xa, ulong index)
    {
        xa.SetMark(index, XaMark.Mark0);           // on a NULL index: nothing
        Assert.False(xa.GetMark(index, XaMark.Mark0));
        StoreIndex(xa, index);
        Assert.False(xa.GetMark(index, XaMark.Mark0));
        xa.SetMark(index, XaMark.Mark0);
        Assert.True(xa.GetMark(index, XaMark.Mark0));
        Assert.False(xa.GetMark(index + 1, XaMark.Mark0));
        Assert.False(xa.GetMark(index, XaMark.Mark1));
        Assert.True(xa.Marked(XaMark.Mark0));
        EraseIndex(xa, index);
        Assert.True(xa.IsEmpty);
        Assert.False(xa.GetMark(index, XaMark.Mark0));
        Assert.False(xa.Marked(XaMark.Mark0));
        xa.SetMark(index, XaMark.Mark0);
        Assert.False(xa.GetMark(index, XaMark.Mark0));

        // Multi-index: the new entry gets the union of the marks of what it replaces. (Bounded: the
        // kernel runs this part for every index; we run it for the first 64 and then every 64th.)
        if (index >= 256 && index % 256 != 0) return;
        for (int order = 2; order < 8; order++)
        {
            ulong size = 1UL << order, baseI = index & ~(size - 1), next = baseI + size;
            StoreIndex(xa, index + 1);
            xa.SetMark(index + 1, XaMark.Mark0);
            StoreIndex(xa, index + 2);
            xa.SetMark(index + 2, XaMark.Mark2);
            StoreIndex(xa, next);
            StoreOrder(xa, index, order, V(index));
            for (ulong i = baseI; i < next; i++)
            {
                if (!xa.GetMark(i, XaMark.Mark0)) Assert.Fail("mark 0");
                Assert.False(xa.GetMark(i, XaMark.Mark1));
                Assert.True(xa.GetMark(i, XaMark.Mark2));
            }
            ulong start = index;
            Assert.Equal(2, xa.Enumerate(start).Count());                 // the multi entry and next
            Assert.Single(xa.EnumerateMarked(XaMark.Mark0));
            Assert.False(xa.GetMark(next, XaMark.Mark0));
            Assert.False(xa.GetMark(next, XaMark.Mark1));
            Assert.False(xa.GetMark(next, XaMark.Mark2));
            xa.Validate();
            xa.Erase(index);
            EraseIndex(xa, next);
            AssertEmpty(xa);
        }
    }

    [Fact]
    public void XaMark2()
    {
        var xa = New();
        StoreIndex(xa, 0);
        xa.SetMark(0, XaMark.Mark0);
        using (xa.Lock())
        {
            var xas = new XaState(xa, 0);
            xas.Load();
            xas.ClearMark(XaMark.Mark0);                 // xas_init_marks
        }
        Assert.False(xa.GetMark(0, XaMark.Mark0));
        for (ulong i = 3500; i < 4500; i++) { StoreIndex(xa, i); xa.SetMark(i, XaMark.Mark0); }
        Assert.Equal(1000, xa.EnumerateMarked(XaMark.Mark0).Count());
        xa.Validate();
        xa.Destroy();
        AssertEmpty(xa);
    }

    [Fact]
    public void XaMark3()
    {
        var xa = New();
        StoreOrder(xa, 0x40, 2, V(0x40));
        xa.SetMark(0x41, XaMark.Mark0);
        var found = xa.EnumerateMarked(XaMark.Mark0, 0x41).ToList();
        Assert.Single(found);
        Is(V(0x40), found[0].Value);
        xa.Destroy();
    }

    [Fact]
    public void XaShrink()
    {
        var xa = New();
        StoreIndex(xa, 0);
        StoreIndex(xa, 1);
        nint leaf;
        using (xa.ReadLock()) { var xas = new XaState(xa, 0); xas.Load(); leaf = xas.NodeAddress; }
        Assert.NotEqual(0, leaf);
        Is(V(1), xa.Erase(1));
        Is(XaEntry.Null, xa.Load(1));
        unsafe
        {
            // The old leaf is retired, not yet freed: its slot 0 is a retry entry, so a reader inside restarts.
            Assert.Equal(XaEntry.Retry.Raw, ((XaNode*)leaf)->Slots[0]);
        }
        Is(V(0), xa.Load(0));
        EraseIndex(xa, 0);
        AssertEmpty(xa);

        for (int order = 0; order < 15; order++)
        {
            ulong max = (1UL << order) - 1;
            StoreOrder(xa, 0, order, V(0));
            Is(V(0), xa.Load(max));
            Is(XaEntry.Null, xa.Load(max + 1));
            ulong head = xa.HeadRaw;
            Is(XaEntry.Null, xa.Store(ulong.MaxValue, V(ulong.MaxValue)));
            Assert.NotEqual(head, xa.HeadRaw);
            xa.Erase(ulong.MaxValue);
            Assert.Equal(head, xa.HeadRaw);        // the same node is the head again
            xa.Validate();
            xa.Erase(0);
            AssertEmpty(xa);
        }
    }

    [Fact]
    public void Insert()
    {
        var xa = New();
        for (ulong i = 0; i < 1024; i++)
        {
            Assert.Equal(XaError.None, xa.TryInsert(i, V(i)));
            Is(XaEntry.Null, xa.Load(i - 1));
            Is(XaEntry.Null, xa.Load(i + 1));
            EraseIndex(xa, i);
        }
        for (int i = 10; i < 64; i++)
        {
            ulong a = 1UL << i;
            foreach (ulong idx in new[] { a, a - 1 })
            {
                Assert.Equal(XaError.None, xa.TryInsert(idx, V(idx)));
                Is(XaEntry.Null, xa.Load(idx - 1));
                Is(XaEntry.Null, xa.Load(idx + 1));
                EraseIndex(xa, idx);
            }
        }
        Assert.Equal(XaError.None, xa.TryInsert(ulong.MaxValue, V(ulong.MaxValue)));
        Is(XaEntry.Null, xa.Load(0));
        Is(XaEntry.Null, xa.Load(ulong.MaxValue - 1));
        EraseIndex(xa, ulong.MaxValue);
        AssertEmpty(xa);
    }

    [Fact]
    public void Cmpxchg()
    {
        var xa = New();
        XaEntry five = V(5), six = V(6), lots = V(12345678);
        Is(XaEntry.Null, xa.Store(12345678, lots));
        Assert.Equal(XaError.Busy, xa.TryInsert(12345678, six));
        Assert.Equal(lots, xa.CompareExchange(12345678, six, five));
        Assert.Equal(lots, xa.CompareExchange(12345678, lots, five));
        Assert.Equal(five, xa.CompareExchange(12345678, five, lots));
        Is(XaEntry.Null, xa.CompareExchange(5, five, XaEntry.Null));
        Is(XaEntry.Null, xa.CompareExchange(5, XaEntry.Null, five));
        Assert.Equal(XaError.Busy, xa.TryInsert(5, five));
        Assert.Equal(five, xa.CompareExchange(5, five, XaEntry.Null));
        Assert.Equal(XaError.None, xa.TryInsert(5, five));
        Assert.Equal(XaError.Busy, Assert.Throws<XArrayException>(() => xa.Insert(5, five)).Error);
        Assert.Equal(lots, xa.Erase(12345678));
        Assert.Equal(five, xa.Erase(5));
        AssertEmpty(xa);
    }

    [Fact]
    public void CmpxchgOrder()
    {
        var xa = New();
        var five = V(5);
        StoreOrder(xa, 0, 3, five);
        Assert.Equal(3, xa.GetOrder(5));
        for (ulong i = 0; i < 8; i++) { Assert.Equal(five, xa.Load(i)); Assert.Equal(3, xa.GetOrder(i)); }
        Is(XaEntry.Null, xa.Load(8));
        StoreOrder(xa, 8, 3, five);
        for (ulong i = 8; i < 15; i++) { Assert.Equal(five, xa.Load(i)); Assert.Equal(3, xa.GetOrder(i)); }
        Assert.Equal(five, xa.CompareExchange(0, five, XaEntry.Null));
        for (ulong i = 0; i < 8; i++) { Is(XaEntry.Null, xa.Load(i)); Assert.Equal(0, xa.GetOrder(i)); }
        Assert.Equal(0, xa.GetOrder(5));
        for (ulong i = 8; i < 15; i++) { Assert.Equal(five, xa.Load(i)); Assert.Equal(3, xa.GetOrder(i)); }
        xa.Validate();
        StoreOrder(xa, 0, 63, XaEntry.Null);
        AssertEmpty(xa);
    }

    [Theory]
    [InlineData(XaFlags.None)]
    [InlineData(XaFlags.Alloc)]
    public void MarkedReservationsAreSkippedByMarkedFinds(XaFlags flags)
    {
        // A reservation can carry a mark (xa_set_mark only needs a non-NULL slot), but xa_find and
        // xa_find_after skip zero entries (xas_retry), so xa_for_each_marked and xa_extract never see one.
        var xa = New(flags);
        xa.Reserve(0);
        xa.SetMark(0, XaMark.Mark1);                 // a reservation in the head
        ulong index = 0;
        Is(XaEntry.Null, xa.Find(ref index, ulong.MaxValue, XaMark.Mark1));
        Assert.Equal(0UL, index);
        xa.Reserve(5);
        StoreOrder(xa, 64, 6, XaEntry.Zero);          // a multi-index reservation
        StoreIndex(xa, 9);
        StoreIndex(xa, 200);
        foreach (ulong i in new ulong[] { 5, 70, 9, 200 }) xa.SetMark(i, XaMark.Mark1);
        Assert.True(xa.GetMark(5, XaMark.Mark1));
        index = 1;
        Is(V(9), xa.Find(ref index, ulong.MaxValue, XaMark.Mark1));
        Assert.Equal(9UL, index);
        Is(V(200), xa.FindAfter(ref index, ulong.MaxValue, XaMark.Mark1));
        Assert.Equal(200UL, index);
        index = 65;
        Is(V(200), xa.Find(ref index, ulong.MaxValue, XaMark.Mark1));
        index = 65;
        Is(XaEntry.Null, xa.Find(ref index, 127, XaMark.Mark1));
        Assert.Equal(65UL, index);
        Assert.Equal(new ulong[] { 9, 200 }, xa.EnumerateMarked(XaMark.Mark1).Select(kv => kv.Key).ToArray());
        var dst = new XaEntry[8];
        Assert.Equal(2, xa.Extract(dst, 0, ulong.MaxValue, XaMark.Mark1));
        Is(V(9), dst[0]);
        Is(V(200), dst[1]);
        // The cursor, like xas_find_marked, still returns them.
        using (xa.ReadLock())
        {
            var xas = new XaState(xa, 1);
            Is(XaEntry.Zero, xas.FindMarked(XaMark.Mark1));
            Assert.Equal(5UL, xas.Index);
        }
        xa.Destroy();
        AssertEmpty(xa);
    }

    [Theory]
    [InlineData(XaFlags.None)]
    [InlineData(XaFlags.Alloc)]
    public void Reserve(XaFlags flags)
    {
        var xa = New(flags);
        Assert.Equal(XaError.None, xa.TryReserve(12345678));
        Assert.False(xa.IsEmpty);
        Is(XaEntry.Null, xa.Load(12345678));
        xa.Release(12345678);
        AssertEmpty(xa);

        // A reservation makes the later store allocation-free.
        Assert.Equal(XaError.None, xa.TryReserve(12345678));
        long nodes = xa.Nodes.NodesAllocated;
        Is(XaEntry.Null, xa.Store(12345678, V(12345678)));
        Assert.Equal(nodes, xa.Nodes.NodesAllocated);
        xa.Release(12345678);
        Is(V(12345678), xa.Erase(12345678));
        AssertEmpty(xa);

        Assert.Equal(XaError.None, xa.TryReserve(12345678));
        Is(XaEntry.Null, xa.CompareExchange(12345678, XaEntry.Zero, V(12345678)));
        Is(V(12345678), xa.Erase(12345678));
        AssertEmpty(xa);

        Assert.Equal(XaError.None, xa.TryReserve(12345678));
        Assert.Equal(XaError.Busy, xa.TryInsert(12345678, V(12345678)));
        Assert.False(xa.IsEmpty);
        Is(XaEntry.Null, xa.Erase(12345678));
        AssertEmpty(xa);

        StoreIndex(xa, 5);
        xa.Reserve(6);
        StoreIndex(xa, 7);
        Assert.Equal(new ulong[] { 5, 7 }, xa.Select(kv => kv.Key).ToArray());
        if (xa.IsAllocating)
        {
            Assert.Equal(XaError.None, xa.TryAlloc(V(1), new XaLimit(5, 10), out uint id));
            Assert.Equal(8u, id);
            xa.Release(6);
            Assert.Equal(XaError.None, xa.TryAlloc(V(1), new XaLimit(5, 10), out id));
            Assert.Equal(6u, id);
        }
        xa.Validate();
        xa.Destroy();
        AssertEmpty(xa);
    }

    [Fact]
    public void MultiStore()
    {
        var xa = New();
        StoreOrder(xa, 0, 1, V(0));
        Is(V(0), xa.Load(0));
        Is(V(0), xa.Load(1));
        Is(XaEntry.Null, xa.Load(2));
        Assert.Equal((0, 2, 2), xa.NodeInfo(0));
        Is(XaEntry.Null, xa.Store(3, XaEntry.FromPointer(0x1000)));
        Assert.Equal((0, 3, 2), xa.NodeInfo(0));
        StoreOrder(xa, 0, 2, V(1));
        for (ulong i = 0; i < 4; i++) Is(V(1), xa.Load(i));
        Is(XaEntry.Null, xa.Load(4));
        Assert.Equal((0, 4, 4), xa.NodeInfo(0));
        StoreOrder(xa, 0, 63, XaEntry.Null);
        AssertEmpty(xa);

        StoreIndex(xa, 1);
        StoreIndex(xa, 2);
        StoreOrder(xa, 0, 2, XaEntry.Null);
        AssertEmpty(xa);

        for (int i = 0; i < 60; i++)
            for (int j = 0; j < 60; j++)
            {
                StoreOrder(xa, 0, i, V((ulong)i));
                StoreOrder(xa, 0, j, V((ulong)j));
                for (int k = 0; k < 60; k++)
                {
                    var e = xa.Load((1UL << k) - 1);
                    Is(i < k && j < k ? XaEntry.Null : V((ulong)j), e);
                }
                xa.Erase(0);
                Assert.True(xa.IsEmpty);
            }

        for (int i = 0; i < 20; i++)
        {
            MultiStore1(xa, 200, i);
            MultiStore1(xa, 0, i);
            MultiStore1(xa, (1UL << i) + 1, i);
        }
        // _2: a store returns the old entry and a NULL store empties.
        StoreOrder(xa, 4095, 9, V(4095));
        Is(V(4095), xa.Store(4095, V(1)));
        StoreOrder(xa, 4095, 9, XaEntry.Null);
        AssertEmpty(xa);
        // _3: iteration sees the entry once, also when starting inside it.
        for (int i = 1; i < 20; i++)
        {
            ulong index = (1UL << i) * 3;
            StoreOrder(xa, index, i, V(index));
            Assert.Single(xa.Enumerate(0));
            Assert.Single(xa.Enumerate(index + 1));
            xa.Erase(index);
            AssertEmpty(xa);
        }
    }

    private static void MultiStore1(XA xa, ulong index, int order)
    {
        ulong min = index & ~((1UL << order) - 1), max = min + (1UL << order);
        StoreOrder(xa, index, order, V(index));
        Is(V(index), xa.Load(min));
        Is(V(index), xa.Load(max - 1));
        Is(XaEntry.Null, xa.Load(max));
        if (min > 0) Is(XaEntry.Null, xa.Load(min - 1));
        xa.Validate();
        Is(V(index), xa.Store(min, V(min)));       // an order-0 store replaces the whole range
        Is(V(min), xa.Load(index));
        Is(V(min), xa.Load(max - 1));
        Is(XaEntry.Null, xa.Load(max));
        Is(V(min), xa.Erase(min));
        AssertEmpty(xa);
    }

    [Fact]
    public void MultiStoreAdvancedReduced()
    {
        var xa = New();
        var p = XaEntry.FromPointer(0x12340);
        foreach (ulong pos0 in new ulong[] { 7, 7 * 7 + 564, 1UL << 40, (ulong.MaxValue / 2) - 157 })
            for (int order = 0; order < 20; order++)
            {
                ulong size = 1UL << order, pos = pos0 & ~(size - 1);
                StoreOrder(xa, pos, order, p);
                for (ulong i = 0; i < Math.Min(size, 64UL); i++) Assert.Equal(p, xa.Load(pos + i * (size / Math.Min(size, 64UL))));
                Assert.Equal(p, xa.Load(pos + size - 1));
                Is(XaEntry.Null, xa.Load(pos + size));
                if (pos > 0) Is(XaEntry.Null, xa.Load(pos - 1));
                StoreOrder(xa, pos + size, order, V(1));      // neighbour of the same order
                StoreIndex(xa, pos + 2 * size);                // and of order 0
                Assert.Equal(p, xa.Load(pos));
                xa.Validate();
                xa.Erase(pos + size);
                xa.Erase(pos + 2 * size);
                Assert.Equal(p, xa.Erase(pos + size - 1));
                AssertEmpty(xa);
            }
    }

    [Fact]
    public void GetOrder()
    {
        var xa = New();
        for (ulong i = 0; i < 3; i++) Assert.Equal(0, xa.GetOrder(i));
        for (int order = 0; order < 20; order++)
            for (ulong i = 0; i < 10; i++)
            {
                ulong index = i << order;
                StoreOrder(xa, index, order, V(index));
                for (ulong j = index; j < index + (1UL << order); j += Math.Max(1, (1UL << order) / 16))
                    Assert.Equal(order, xa.GetOrder(j));
                Assert.Equal(order, xa.GetOrder(index + (1UL << order) - 1));
                xa.Erase(index);
                Assert.True(xa.IsEmpty);
            }
    }

    [Theory]
    [InlineData(XaFlags.Alloc, 0u)]
    [InlineData(XaFlags.Alloc1, 1u)]
    public void Alloc1(XaFlags flags, uint b)
    {
        var xa = New(flags);
        Assert.Equal(b, xa.Alloc(V(b)));
        Is(V(b), xa.Erase(b));
        AssertEmpty(xa);
        Assert.Equal(b, xa.Alloc(V(b)));
        for (uint i = b + 1; i < 128; i++) Assert.Equal(i, xa.Alloc(V(i)));
        for (uint i = b; i < 128; i++) xa.Erase(i);
        AssertEmpty(xa);
        Assert.Equal(b, xa.Alloc(V(b)));
        xa.Destroy();
        Assert.Equal(b, xa.Alloc(V(b)));
        Assert.Equal(b + 1, xa.Alloc(V(b + 1)));
        xa.Erase(b + 1);
        StoreIndex(xa, b + 1);
        Assert.Equal(b + 2, xa.Alloc(V(b + 2)));
        xa.Erase(b);
        Assert.Equal(b, xa.Alloc(V(b)));
        xa.Erase(b + 1);
        xa.Erase(b + 2);
        for (uint i = b + 1; i < b + 5000; i++) Assert.Equal(i, xa.Alloc(V(i)));
        xa.Validate();
        xa.Destroy();
        AssertEmpty(xa);

        var top = new XaLimit(uint.MaxValue - 1, uint.MaxValue);
        Assert.Equal(XaError.None, xa.TryAlloc(V(1), top, out uint id));
        Assert.Equal(0xfffffffeu, id);
        Assert.Equal(XaError.None, xa.TryAlloc(V(1), top, out id));
        Assert.Equal(0xffffffffu, id);
        Assert.Equal(XaError.Busy, xa.TryAlloc(V(1), top, out _));
        xa.Destroy();
        Assert.Equal(XaError.Busy, xa.TryAlloc(V(1), new XaLimit(10, 5), out _));
        StoreIndex(xa, 3);
        Assert.Equal(XaError.Busy, xa.TryAlloc(V(1), new XaLimit(10, 5), out _));
        xa.Destroy();
        // Not an allocating array: EINVAL.
        Assert.Equal(XaError.Invalid, New().TryAlloc(V(1), XaLimit.Limit32, out _));
    }

    [Theory]
    [InlineData(XaFlags.Alloc, 0u)]
    [InlineData(XaFlags.Alloc1, 1u)]
    public void Alloc2(XaFlags flags, uint b)
    {
        var xa = New(flags);
        Assert.Equal(b, xa.Alloc(XaEntry.Null));
        Assert.False(xa.IsEmpty);
        Is(XaEntry.Null, xa.Erase(b));
        AssertEmpty(xa);
        Assert.Equal(b, xa.Alloc(XaEntry.Null));
        xa.Destroy();
        AssertEmpty(xa);
        for (uint i = b; i < b + 10; i++) Assert.Equal(i, xa.Alloc(XaEntry.Null));
        Is(XaEntry.Null, xa.Store(3, V(3)));
        Is(XaEntry.Null, xa.Store(4, V(4)));
        Is(V(4), xa.Store(4, XaEntry.Null));    // stays reserved
        Is(XaEntry.Null, xa.Erase(5));            // frees 5
        Assert.Equal(5u, xa.Alloc(XaEntry.Null));
        Assert.Equal(new ulong[] { 3 }, xa.Select(kv => kv.Key).ToArray());
        for (uint i = b; i < b + 9; i++)
        {
            xa.Erase(i);
            Assert.False(xa.IsEmpty);
        }
        xa.Erase(8);
        Assert.False(xa.IsEmpty);
        xa.Erase(b + 9);
        AssertEmpty(xa);
    }

    [Theory]
    [InlineData(XaFlags.Alloc, 0u)]
    [InlineData(XaFlags.Alloc1, 1u)]
    public void Alloc3Cyclic(XaFlags flags, uint b)
    {
        var xa = New(flags);
        var limit = new XaLimit(1, 0x3fff);
        uint next = 0;
        Assert.Equal(1u, xa.AllocCyclic(V(1), limit, ref next, out bool wrapped));
        Assert.False(wrapped);
        next = 0x3ffd;
        Assert.Equal(0x3ffdu, xa.AllocCyclic(V(0x3ffd), limit, ref next, out wrapped));
        Assert.False(wrapped);
        xa.Erase(0x3ffd);
        xa.Erase(1);
        AssertEmpty(xa);
        foreach (uint expect in new uint[] { 0x3ffe, 0x3fff, 1, 2, 3 })
        {
            Assert.Equal(expect, xa.AllocCyclic(V(expect), limit, ref next, out wrapped));
            Assert.Equal(expect == 1, wrapped);
        }
        foreach (uint i in new uint[] { 0x3ffe, 0x3fff, 1, 2, 3 }) xa.Erase(i);
        AssertEmpty(xa);

        // Wrapping at uint.MaxValue with the 32-bit limit.
        next = uint.MaxValue;
        Assert.Equal(uint.MaxValue, xa.AllocCyclic(V(1), XaLimit.Limit32, ref next, out wrapped));
        Assert.False(wrapped);
        Assert.Equal(b, xa.AllocCyclic(V(1), XaLimit.Limit32, ref next, out wrapped));
        Assert.True(wrapped);
        Assert.Equal(b + 1, xa.AllocCyclic(V(1), XaLimit.Limit32, ref next, out wrapped));
        Assert.False(wrapped);
        xa.Erase(uint.MaxValue);
        xa.Erase(b);
        xa.Erase(b + 1);
        AssertEmpty(xa);
    }

    [Fact]
    public void AllocCyclicWrapsOnNoMemoryToo()
    {
        // __xa_alloc_cyclic retries from limit.min after any error (ret < 0), not only -EBUSY: when the search
        // from next needs a node and none can be had, a free index below that needs none is still handed out,
        // as a wrapped allocation (1).
        var xa = New(XaFlags.Alloc);
        for (uint i = 0; i < 64; i++) Assert.Equal(i, xa.Alloc(V(i)));   // one full leaf, the root
        xa.Erase(3);
        Alloc.Faults.CacheName = XaNodeCache.CacheName;
        Alloc.Faults.FailEveryNth = 1;                     // no new slab; take what the current slabs hold
        var held = new List<nint>();
        for (nint p; (p = xa.NodeCache.TryAlloc()) != 0;) held.Add(p);
        uint next = 100;                                   // index 100 needs a new leaf and a new root
        Assert.Equal(XaError.None, xa.TryAllocCyclic(V(3), XaLimit.Limit32, ref next, out uint id, out bool wrapped));
        Assert.Equal(3u, id);
        Assert.True(wrapped);
        Assert.Equal(4u, next);
        next = 100;                                        // the lowest free index, 64, needs nodes too
        Assert.Equal(XaError.NoMemory, xa.TryAllocCyclic(V(100), XaLimit.Limit32, ref next, out _, out _));
        Assert.Equal(100u, next);
        Alloc.Faults.FailEveryNth = 0;
        foreach (nint p in held) xa.NodeCache.Free(p);
        xa.Validate();
        Assert.Equal(100u, xa.AllocCyclic(V(100), XaLimit.Limit32, ref next, out wrapped));
        Assert.False(wrapped);
        xa.Destroy();
        AssertEmpty(xa);
    }

    [Theory]
    [InlineData(2)] [InlineData(3)] [InlineData(5)] [InlineData(6)] [InlineData(7)] [InlineData(9)]
    public void MultiFind1(int order)
    {
        var xa = New();
        ulong multi = 3UL << order, next = 4UL << order;
        StoreOrder(xa, multi, order, V(multi));
        StoreIndex(xa, next);
        StoreIndex(xa, next + 1);
        ulong index = 0;
        Is(V(multi), xa.Find(ref index));
        Assert.Equal(multi, index);
        index = multi + 1;
        Is(V(multi), xa.Find(ref index));
        Assert.InRange(index, multi, next - 1);
        Is(V(next), xa.FindAfter(ref index));
        Assert.Equal(next, index);
        index = next;   // a find_after bounded at next finds nothing and leaves the index alone
        Is(XaEntry.Null, xa.FindAfter(ref index, next));
        Assert.Equal(next, index);
        xa.Erase(multi);
        xa.Erase(next);
        xa.Erase(next + 1);
        AssertEmpty(xa);
    }

    [Fact]
    public void MultiFind3()
    {
        var xa = New();
        for (int order = 5; order < 64; order++)
        {
            ulong index = 1UL << (order - 5);
            StoreOrder(xa, 0, order - 4, V(0));
            Is(XaEntry.Null, xa.FindAfter(ref index));
            xa.Erase(0);
            Assert.True(xa.IsEmpty);
        }
    }

    [Fact]
    public void Find1()
    {
        var xa = New();
        for (ulong i = 0; i < 64; i++)
            for (ulong j = 0; j < i; j++)
            {
                StoreIndex(xa, j);
                StoreIndex(xa, i);
                xa.SetMark(j, XaMark.Mark0);
                xa.SetMark(i, XaMark.Mark0);
                for (ulong k = 0; k < 64; k++)
                {
                    ulong index = k;
                    var e = xa.Find(ref index);
                    ulong mindex = k;
                    var m = xa.Find(ref mindex, ulong.MaxValue, XaMark.Mark0);
                    if (k <= j) { Assert.Equal(j, index); Assert.Equal(j, mindex); Is(V(j), m); }
                    else if (k <= i) { Assert.Equal(i, index); Assert.Equal(i, mindex); Is(V(i), m); }
                    else { Is(XaEntry.Null, e); Is(XaEntry.Null, m); Assert.Equal(k, index); }
                }
                EraseIndex(xa, j);
                EraseIndex(xa, i);
                Assert.False(xa.GetMark(j, XaMark.Mark0));
                Assert.False(xa.Marked(XaMark.Mark0));
                Assert.True(xa.IsEmpty);
            }
    }

    [Fact]
    public void Find2()
    {
        var xa = New();
        Assert.Empty(xa);
        for (ulong i = 0; i < 1024; i++)
        {
            StoreIndex(xa, i);
            ulong expect = 0;
            foreach (var kv in xa)
            {
                Is(expect, kv.Key);
                Is(V(expect), kv.Value);
                expect++;
            }
            Assert.Equal(i + 1, expect);
        }
        xa.Destroy();
    }

    [Fact]
    public void Find4()
    {
        var xa = New();
        StoreIndex(xa, ulong.MaxValue);
        ulong index = 0;
        Is(V(ulong.MaxValue), xa.FindAfter(ref index));
        Assert.Equal(ulong.MaxValue, index);
        Is(XaEntry.Null, xa.FindAfter(ref index));
        EraseIndex(xa, ulong.MaxValue);
        AssertEmpty(xa);
    }

    [Fact]
    public void StoreRange()
    {
        var xa = New();
        foreach (ulong b in new ulong[] { 0, 128, 4095, 4096, 123456, 1UL << 24 })
            for (ulong i = 0; i < 128; i += 3)
                for (ulong j = i; j < 128; j += 5)
                {
                    ulong first = b + i, last = b + j;
                    xa.StoreRange(first, last, V(first));
                    Is(V(first), xa.Load(first));
                    Is(V(first), xa.Load(last));
                    Is(V(first), xa.Load(first + (last - first) / 2));
                    Is(XaEntry.Null, xa.Load(first - 1));
                    Is(XaEntry.Null, xa.Load(last + 1));
                    xa.StoreRange(first, last, XaEntry.Null);
                    AssertEmpty(xa);
                }
        Assert.Equal(XaError.Invalid, xa.TryStoreRange(5, 4, V(1)));
        Assert.Equal(XaError.Invalid, xa.TryStoreRange(4, 5, XaEntry.Zero));
    }

    [Fact]
    public void Account()
    {
        var xa = New();
        for (int order = 1; order < 12; order++)
        {
            ulong size = 1UL << order;
            StoreOrder(xa, 0, order, XaEntry.FromPointer(0x4000));
            StoreIndex(xa, size);
            var info = xa.NodeInfo(size)!.Value;
            Assert.InRange(info.Count, 1, (int)size + 1);
            xa.Erase(size);
            StoreOrder(xa, size, order, V(1));
            info = xa.NodeInfo(size)!.Value;
            Assert.Equal(info.Count, 2 * info.NrValues);
            xa.Erase(size);
            Assert.Equal(0, xa.NodeInfo(0)!.Value.NrValues);
            xa.Erase(0);
            AssertEmpty(xa);
        }
    }

    [Fact]
    public void Destroy()
    {
        var xa = New();
        xa.Destroy();
        AssertEmpty(xa);
        for (ulong i = 0; i < 1000; i++)
        {
            StoreIndex(xa, i);
            xa.Destroy();
            Assert.True(xa.IsEmpty);
        }
        StoreIndex(xa, ulong.MaxValue);
        xa.Destroy();
        AssertEmpty(xa);
        StoreOrder(xa, 2048, 11, V(1));
        xa.Destroy();
        AssertEmpty(xa);
        // Every node went back to the cache once the grace period passed.
        xa.Reclaimer.Synchronize();
        Assert.Equal(0, xa.Reclaimer.PendingCount);
    }

    [Fact]
    public void ExtractAndPointers()
    {
        var xa = New();
        for (ulong i = 0; i < 100; i++) xa.Store(i * 3, XaEntry.FromPointer((nint)(0x10000 + i * 4)));
        xa.Reserve(1);
        xa.SetMark(30, XaMark.Mark1);
        var dst = new XaEntry[10];
        Assert.Equal(10, xa.Extract(dst, 0, ulong.MaxValue));
        Assert.Equal((nint)0x10000 + 9 * 4, dst[9].Pointer);
        Assert.Equal(0, xa.Extract(Span<XaEntry>.Empty, 0, 100));
        Assert.Equal(4, xa.Extract(dst, 5, 15));
        Assert.Equal(1, xa.Extract(dst, 0, ulong.MaxValue, XaMark.Mark1));
        Assert.Equal((nint)0x10000 + 10 * 4, dst[0].Pointer);
        Assert.Throws<ArgumentException>(() => XaEntry.FromPointer(0x10002));
        Assert.Throws<ArgumentOutOfRangeException>(() => XaEntry.FromValue(ulong.MaxValue));
        xa.Validate();
    }

    [Fact]
    public void Align2ReserveMakesStoreAllocationFree()
    {
        var xa = New();
        for (int i = 0; i < 8; i++)
        {
            Is(XaEntry.Null, xa.Store(0, XaEntry.FromPointer(0x100)));
            xa.Erase(0);
        }
        for (int i = 0; i < 8; i++)
        {
            xa.Reserve(0);
            long n = xa.Nodes.NodesAllocated;
            Is(XaEntry.Null, xa.Store(0, XaEntry.FromPointer(0x100)));
            Assert.Equal(n, xa.Nodes.NodesAllocated);
            xa.Erase(0);
        }
        AssertEmpty(xa);
    }
}
