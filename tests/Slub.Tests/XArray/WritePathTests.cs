using Slub.XArray;

namespace Slub.Tests.XArray;

/// <summary>
/// The write paths' shortcuts (docs/xarray.md, "Write paths"): order-0 stores and erases that reuse the walk for
/// the old entry, empty nodes deleted without retry entries, and free <c>xa_node</c> objects kept in the
/// constructor's state so that a new node is not zeroed.
/// </summary>
public unsafe class WritePathTests : XaTest
{
    [Fact]
    public void OrderZeroStoreOverAMultiIndexEntryReplacesItWholeAndKeepsItsMarks()
    {
        foreach (int order in new[] { 2, 6, 8 })
        {
            var xa = New();
            xa.StoreOrder(256, order, XaEntry.FromValue(1));
            xa.SetMark(256, XaMark.Mark1);
            ulong last = 256 + (1UL << order) - 1;
            // Through a sibling slot, or (order 6 and up) an entry in an interior node.
            Is(XaEntry.FromValue(1), xa.Store(last, XaEntry.FromValue(2)));
            xa.Validate();
            Is(XaEntry.FromValue(2), xa.Load(256));
            Is(XaEntry.FromValue(2), xa.Load(last));
            Assert.Equal(order, xa.GetOrder(last));
            Assert.True(xa.GetMark(256, XaMark.Mark1));
            // An order-0 erase inside it removes all of it.
            Is(XaEntry.FromValue(2), xa.Erase(257));
            xa.Validate();
            Is(XaEntry.Null, xa.Load(256));
            Is(XaEntry.Null, xa.Load(last));
            Assert.True(xa.IsEmpty);
        }
    }

    [Fact]
    public void StoresAndErasesKeepCountsMarksAndTheDirectoryExact()
    {
        // Dense keys (the directory names the leaves), sparse keys (it does not), reservations and a free-tracking array.
        foreach (var flags in new[] { XaFlags.None, XaFlags.Alloc })
        {
            var xa = New(flags);
            var rnd = new Random(5);
            var model = new Dictionary<ulong, ulong>();
            for (int step = 0; step < 20_000; step++)
            {
                ulong k = step % 2 == 0 ? (ulong)rnd.Next(4096) : (ulong)rnd.NextInt64(1L << 40);
                switch (rnd.Next(4))
                {
                    case 0:
                    case 1:
                        xa.StoreValue(k, k + (ulong)step);
                        model[k] = k + (ulong)step;
                        break;
                    case 2:
                        xa.Erase(k);
                        model.Remove(k);
                        break;
                    default:
                        if (!model.ContainsKey(k) && xa.Load(k).IsNull) xa.Reserve(k);   // a reservation, then a store over it
                        xa.StoreValue(k, 1);
                        model[k] = 1;
                        if (rnd.Next(2) == 0) xa.SetMark(k, XaMark.Mark2);
                        break;
                }
                if (step % 2_000 == 0) xa.Validate();
            }
            xa.Validate();
            foreach (var (k, v) in model) Is(v, xa.Load(k).Value);
            Assert.Equal(model.Count, xa.Count());
        }
    }

    [Fact]
    public void AStoreThatRunsOutOfNodesPartWayDownLeavesNoEmptyNodes()
    {
        var xa = New();
        xa.StoreValue(0, 0);
        xa.StoreValue(1UL << 30, 1);   // root at shift 30; a key at 5 << 24 needs a chain of four new nodes
        ulong key = 5UL << 24;
        int nodes = xa.Validate().Nodes;
        // No new slabs, and every free node taken: then hand back k nodes, so the (k+1)-th of the chain fails.
        Alloc.Faults.CacheName = XaNodeCache.CacheName;
        Alloc.Faults.FailEveryNth = 1;
        var held = new List<nint>();
        for (nint p; (p = xa.NodeCache.TryAlloc()) != 0;) held.Add(p);
        try
        {
            for (int k = 0; k < 4; k++)
            {
                for (int i = 0; i < k; i++) { xa.NodeCache.Free(held[^1]); held.RemoveAt(held.Count - 1); }
                Assert.Equal(XaError.NoMemory, xa.TryStore(key, XaEntry.FromValue(5), out _));
                Assert.Equal(nodes, xa.Validate().Nodes);   // the nodes made before the failure were deleted again
                Is(XaEntry.Null, xa.Load(key));
                xa.Reclaimer.Synchronize();                  // they go back to the cache: take them again
                for (nint p; (p = xa.NodeCache.TryAlloc()) != 0;) held.Add(p);
            }
        }
        finally
        {
            Alloc.Faults.FailEveryNth = 0;
            foreach (nint p in held) xa.NodeCache.Free(p);
        }
        xa.StoreValue(key, 5);
        Assert.Equal(nodes + 4, xa.Validate().Nodes);
        Is(5UL, xa.Load(key).Value);
    }

    [Fact]
    public void ACursorInsideALeafDeletedAsEmptyStillFindsTheEntriesAfterIt()
    {
        var xa = New();
        xa.StoreValue(64, 64);          // alone in its leaf (64..127)
        xa.StoreValue(1000, 1000);      // in a later leaf
        xa.StoreValue(1L << 30, 1);     // under another interior node
        using (xa.ReadLock())
        {
            var xas = new XaState(xa, 0);
            Is(XaEntry.FromValue(64), xas.Find());
            nint leaf = xas.NodeAddress;
            xa.Erase(64);               // the leaf is now empty: deleted and retired, still allocated for this section
            Assert.Equal(XaNode.RetiredArray, ((XaNode*)leaf)->Array);
            Is(XaEntry.FromValue(1000), xas.Find());
            Is(1000UL, xas.Index);
            Is(XaEntry.FromValue(1), xas.Find());
            Assert.True(xas.Find().IsNull);
            // Reload of a slot in the deleted leaf: nothing there, as at the moment it was unlinked.
            var back = new XaState(xa, 64);
            Is(XaEntry.Null, back.Load());
        }
        xa.Validate();
    }

    [Fact]
    public void NodesFreedAfterRetirementComeBackFromTheCacheWithNullSlots()
    {
        var xa = New();
        // Nodes retired with entries (destroy: every slot a retry entry) and nodes deleted empty (erase).
        for (ulong i = 0; i < 64 * 200; i += 3) xa.StoreValue(i, i);
        for (ulong i = 0; i < 64 * 20; i++) xa.Erase(i);
        xa.Destroy();
        xa.Reclaimer.Synchronize();
        // The per-CPU free lists hand recently freed objects out first: every one must be all nulls.
        var held = new List<nint>();
        for (int i = 0; i < 600; i++) held.Add(xa.NodeCache.Alloc());
        try
        {
            foreach (nint p in held)
            {
                var n = (XaNode*)p;
                for (int s = 0; s < 64; s++)
                    if (n->Slots[s] != 0) Assert.Fail($"node 0x{p:x} slot {s} holds 0x{n->Slots[s]:x} after it was freed");
            }
        }
        finally
        {
            foreach (nint p in held) xa.NodeCache.Free(p);
        }
        // And an array built from them is sound.
        for (ulong i = 0; i < 64 * 200; i += 5) xa.StoreValue(i, i);
        xa.Validate();
        for (ulong i = 0; i < 64 * 200; i++) Is(i % 5 == 0 ? XaEntry.FromValue(i) : XaEntry.Null, xa.Load(i));
    }

    [Fact]
    public void CursorAndForEachStepsMatchAModelWithReservationsMultiIndexEntriesAndBounds()
    {
        var xa = New();
        var rnd = new Random(11);
        var model = new SortedDictionary<ulong, (ulong First, XaEntry Entry, int Order)>();   // by first index
        for (int i = 0; i < 3000; i++)
        {
            ulong k = (ulong)rnd.Next(20_000);
            int order = rnd.Next(8) == 0 ? 2 : 0;
            k &= ~((1UL << order) - 1);
            bool free = true;
            for (ulong j = k; j < k + (1UL << order); j++) if (!xa.Load(j).IsNull || model.ContainsKey(j)) free = false;
            if (!free) continue;
            if (order == 0 && rnd.Next(6) == 0) { xa.Reserve(k); model[k] = (k, XaEntry.Zero, 0); }
            else { xa.StoreOrder(k, order, XaEntry.FromValue(k)); model[k] = (k, XaEntry.FromValue(k), order); }
        }
        xa.Validate();
        foreach (ulong max in new[] { ulong.MaxValue, 5000UL, 12_345UL })
        {
            var expected = model.Values.Where(v => v.First <= max).ToList();
            var got = new List<(ulong, XaEntry)>();
            using (xa.ReadLock())
            {
                var xas = new XaState(xa, 0);
                for (var e = xas.Find(max); !e.IsNull; e = xas.Find(max)) got.Add((xas.Index, e));
                Assert.True(xas.IsAtBounds);
            }
            Assert.Equal(expected.Select(v => (v.First, v.Entry)), got);
            // foreach (xa_find_after per step) skips reservations and reports each multi-index entry once.
            var listed = xa.Enumerate(0, max).Select(kv => (kv.Key, kv.Value)).ToList();
            Assert.Equal(expected.Where(v => !v.Entry.IsZero).Select(v => (v.First, v.Entry)), listed);
        }
    }

    [Fact]
    public void CursorFindStopsAtMaxInsideALeaf()
    {
        var xa = New();
        for (ulong i = 0; i < 100; i++) xa.StoreValue(i, i);
        using (xa.ReadLock())
        {
            var xas = new XaState(xa, 10);
            ulong n = 0;
            for (var e = xas.Find(50); !e.IsNull; e = xas.Find(50)) Is(10 + n++, e.Value);
            Is(41UL, n);
            Assert.True(xas.IsAtBounds);
        }
    }

    [Fact]
    public void ForEachDoesNotReturnEntriesErasedAheadOfItNorLoseTheOnesAfterADeletedLeaf()
    {
        var xa = New();
        for (ulong i = 0; i < 4096; i++) xa.StoreValue(i, i);
        var seen = new List<ulong>();
        foreach (var kv in xa)
        {
            seen.Add(kv.Key);
            // Erase the rest of this leaf and the next one: their leaves are deleted under the enumeration.
            if (kv.Key % 128 == 0) for (ulong j = kv.Key + 1; j < kv.Key + 128; j++) xa.Erase(j);
        }
        Assert.Equal(Enumerable.Range(0, 32).Select(i => (ulong)i * 128), seen);
        xa.Validate();
    }
}
