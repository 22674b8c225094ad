using Slub.XArray;
using XA = Slub.XArray.XArray;

namespace Slub.Tests.XArray;

/// <summary>
/// The struct enumerator behind <c>foreach</c>, <see cref="XA.Enumerate"/> and <see cref="XA.EnumerateMarked"/>
/// (<c>xa_for_each*</c>): against a model with marks, reservations, multi-index entries and range bounds; with the
/// array modified from the loop body; while other threads store, erase and migrate nodes; and without allocating.
/// </summary>
public class EnumeratorTests : XaTest
{
    /// <summary>A model entry: covers [First, Last]; Value Zero is a reservation.</summary>
    private sealed record Item(ulong First, ulong Last, XaEntry Value, bool[] Marks);

    private static readonly XaMark[] Filters = [XaMark.Present, XaMark.Mark0, XaMark.Mark1, XaMark.Mark2];

    /// <summary>xa_for_each_range as specified: each non-reserved entry meeting the filter and overlapping [start, last], at max(first, start).</summary>
    private static List<(ulong, XaEntry)> Expected(SortedDictionary<ulong, Item> model, ulong start, ulong last, XaMark filter)
    {
        var list = new List<(ulong, XaEntry)>();
        if (start > last) return list;
        foreach (var it in model.Values)
        {
            if (it.Last < start || it.First > last || it.Value.IsZero) continue;
            if (filter != XaMark.Present && !it.Marks[(int)filter]) continue;
            list.Add((Math.Max(it.First, start), it.Value));
        }
        return list;
    }

    /// <summary>The previous implementation: one Find, then FindAfter per entry.</summary>
    private static List<(ulong, XaEntry)> ByFindAfter(XA xa, ulong start, ulong last, XaMark filter)
    {
        var list = new List<(ulong, XaEntry)>();
        ulong index = start;
        for (var e = xa.Find(ref index, last, filter); !e.IsNull; e = xa.FindAfter(ref index, last, filter)) list.Add((index, e));
        return list;
    }

    private static List<(ulong, XaEntry)> ByForeach(XA.EntryRange range)
    {
        var list = new List<(ulong, XaEntry)>();
        foreach (var kv in range) list.Add((kv.Key, kv.Value));
        return list;
    }

    private static Item? Covering(SortedDictionary<ulong, Item> model, ulong index)
    {
        foreach (var it in model.Values)   // small models: a scan is fine
            if (it.First <= index && index <= it.Last) return it;
        return null;
    }

    private static bool Free(SortedDictionary<ulong, Item> model, ulong first, ulong last) =>
        !model.Values.Any(it => it.First <= last && first <= it.Last);

    /// <remarks>
    /// Also on allocating arrays, where mark 0 is the free mark: the test sets marks 1 and 2 only, and every
    /// <c>EnumerateMarked(Mark0)</c> / <c>Find(…, Mark0)</c> must yield nothing (the model's mark 0 stays clear).
    /// </remarks>
    [Theory]
    [InlineData(1, XaFlags.None)]
    [InlineData(2, XaFlags.None)]
    [InlineData(3, XaFlags.None)]
    [InlineData(4, XaFlags.None)]
    [InlineData(5, XaFlags.Alloc)]
    [InlineData(6, XaFlags.Alloc1)]
    public void MatchesTheModelWithMarksReservationsMultiIndexEntriesAndBounds(int seed, XaFlags flags)
    {
        var rnd = new Random(seed);
        var xa = New(flags);
        int firstMark = xa.IsAllocating ? 1 : 0;
        var model = new SortedDictionary<ulong, Item>();
        ulong[] far = [ulong.MaxValue, ulong.MaxValue - 1, ulong.MaxValue - 64, 1UL << 40, (1UL << 40) + 63, 1UL << 26];
        ulong RandomKey() => rnd.Next(10) == 0 ? far[rnd.Next(far.Length)] : (ulong)rnd.Next(3000);

        for (int step = 0; step < 1500; step++)
        {
            ulong k = RandomKey();
            var cover = Covering(model, k);
            int p = rnd.Next(100);
            if (cover is not null)
            {
                if (p < 40)
                {
                    xa.Erase(k);   // erases the whole entry covering k
                    model.Remove(cover.First);
                }
                else
                {
                    var m = (XaMark)rnd.Next(firstMark, 3);
                    bool set = p < 80;
                    if (set) xa.SetMark(cover.First, m); else xa.ClearMark(cover.First, m);
                    cover.Marks[(int)m] = set;
                }
            }
            else if (p < 60)
            {
                xa.Store(k, V(k));
                model[k] = new Item(k, k, V(k), new bool[3]);
            }
            else if (p < 75)
            {
                xa.Reserve(k);
                model[k] = new Item(k, k, XaEntry.Zero, new bool[3]);
            }
            else
            {
                int order = rnd.Next(1, 9);
                ulong first = k & ~((1UL << order) - 1);
                ulong last = first + ((1UL << order) - 1);
                if (!Free(model, first, last)) continue;
                StoreOrder(xa, first, order, V(first));
                model[first] = new Item(first, last, V(first), new bool[3]);
            }

            if (step % 25 != 0) continue;
            xa.Validate();
            // Ranges: random, empty (start > last), one index, to ulong.MaxValue, from inside a multi-index entry.
            var starts = new List<ulong> { 0, RandomKey(), ulong.MaxValue, ulong.MaxValue - 1 };
            var multi = model.Values.Where(it => it.Last > it.First).ToList();
            if (multi.Count > 0)
            {
                var it = multi[rnd.Next(multi.Count)];
                starts.Add(it.First + 1 + (ulong)rnd.NextInt64((long)(it.Last - it.First)));   // its middle or end
            }
            foreach (ulong s in starts)
            {
                ulong[] lasts = [ulong.MaxValue, s, s == 0 ? 0 : s - 1, s + (ulong)rnd.Next(200), RandomKey()];
                foreach (ulong l in lasts)
                    foreach (var f in Filters)
                    {
                        var expected = Expected(model, s, l, f);
                        Assert.Equal(expected, ByForeach(xa.Enumerate(s, l, f)));
                        Assert.Equal(expected, ByFindAfter(xa, s, l, f));
                        if (f != XaMark.Present) Assert.Equal(expected, ByForeach(xa.EnumerateMarked(f, s, l)));
                    }
            }
            var all = Expected(model, 0, ulong.MaxValue, XaMark.Present);
            var viaForeach = new List<(ulong, XaEntry)>();
            foreach (var kv in xa) viaForeach.Add((kv.Key, kv.Value));
            Assert.Equal(all, viaForeach);
            // The interfaces and LINQ see the same entries (boxed enumerators).
            Assert.Equal(all, ((IEnumerable<KeyValuePair<ulong, XaEntry>>)xa).Select(kv => (kv.Key, kv.Value)).ToList());
            Assert.Equal(all.Count, xa.Enumerate().Count());
        }
    }

    [Fact]
    public void HeadEntryEmptyArrayAndDefaultEnumerator()
    {
        var xa = New();
        Assert.Empty(ByForeach(xa.Enumerate()));
        xa.Store(0, V(7));   // a single entry at index 0 lives in the head
        Assert.Equal(new List<(ulong, XaEntry)> { (0UL, V(7)) }, ByForeach(xa.Enumerate()));
        Assert.Empty(ByForeach(xa.Enumerate(1)));
        Assert.Empty(ByForeach(xa.Enumerate(1, 0)));
        xa.Store(ulong.MaxValue, V(9));
        Assert.Equal(new List<(ulong, XaEntry)> { (0UL, V(7)), (ulong.MaxValue, V(9)) }, ByForeach(xa.Enumerate()));
        Assert.Equal(new List<(ulong, XaEntry)> { (ulong.MaxValue, V(9)) }, ByForeach(xa.Enumerate(ulong.MaxValue, ulong.MaxValue)));

        var none = default(XA.Enumerator);
        Assert.False(none.MoveNext());
        foreach (var _ in default(XA.EntryRange)) Assert.Fail("a default range has no entries");

        var e = xa.GetEnumerator();
        Assert.True(e.MoveNext());
        Assert.True(e.MoveNext());
        Assert.Equal(ulong.MaxValue, e.Current.Key);
        Assert.False(e.MoveNext());
        Assert.False(e.MoveNext());
        e.Reset();
        Assert.True(e.MoveNext());
        Assert.Equal(0UL, e.Current.Key);
        e.Dispose();
    }

    [Fact]
    public void ErasingAheadFromTheLoopBodyHidesTheErasedEntries()
    {
        var xa = New();
        for (ulong i = 0; i < 1000; i++) StoreIndex(xa, i);
        var seen = new List<ulong>();
        foreach (var kv in xa)
        {
            seen.Add(kv.Key);
            xa.Erase(kv.Key + 1);
            xa.Erase(kv.Key + 2);
        }
        Assert.Equal(Enumerable.Range(0, 334).Select(i => (ulong)i * 3), seen);
        xa.Validate();
    }

    [Fact]
    public void StoringBehindIsNotSeenAndStoringAheadIs()
    {
        var xa = New();
        for (ulong i = 0; i < 2000; i += 2) StoreIndex(xa, i);
        var seen = new List<ulong>();
        foreach (var kv in xa.Enumerate(0, 1999))
        {
            seen.Add(kv.Key);
            if (kv.Key > 0 && kv.Key % 2 == 0) xa.Store(kv.Key - 1, V(kv.Key - 1));   // behind
        }
        Assert.Equal(Enumerable.Range(0, 1000).Select(i => (ulong)i * 2), seen);

        var ya = New();
        for (ulong i = 0; i < 2000; i += 2) StoreIndex(ya, i);
        seen.Clear();
        foreach (var kv in ya)
        {
            seen.Add(kv.Key);
            if (kv.Key % 2 == 0 && kv.Key < 2000) ya.Store(kv.Key + 1, V(kv.Key + 1));   // ahead, same leaf or the next
            if (kv.Key == 10) ya.Store(100_000, V(100_000));                           // ahead, a new leaf far away
        }
        Assert.Equal(Enumerable.Range(0, 2000).Select(i => (ulong)i).Append(100_000UL), seen);
        xa.Validate();
        ya.Validate();
    }

    [Fact]
    public void TheLoopBodyMayWaitForAGracePeriodWhileItsLeafIsFreedAndReused()
    {
        // No read section is held between steps: Synchronize in the body returns, and the leaf the enumerator
        // read last may be deleted, freed and reused (by another array) before the next step.
        var xa = New();
        var other = New();
        for (ulong i = 0; i < 64 * 20; i++) StoreIndex(xa, i);
        ulong otherNext = 0;
        var seen = new List<ulong>();
        foreach (var kv in xa)
        {
            seen.Add(kv.Key);
            Is(V(kv.Key), kv.Value);
            if (kv.Key % 64 == 10)
            {
                ulong leaf = kv.Key & ~63UL;
                for (ulong k = leaf; k < leaf + 64; k++) xa.Erase(k);   // the whole leaf: deleted and retired
                xa.Reclaimer.Synchronize();
                xa.Reclaimer.Synchronize();
                for (ulong k = 0; k < 4 * 64; k++) other.StoreValue(otherNext++, 0x1234);   // new leaves: reuse freed nodes
                for (ulong k = leaf + 20; k < leaf + 64; k += 2) StoreIndex(xa, k);   // a new leaf, ahead
            }
        }
        var expected = new List<ulong>();
        for (ulong l = 0; l < 20; l++)
        {
            for (ulong k = 0; k <= 10; k++) expected.Add(l * 64 + k);
            for (ulong k = 20; k < 64; k += 2) expected.Add(l * 64 + k);
        }
        Assert.Equal(expected, seen);
        xa.Validate();
    }

    [Fact]
    public void ForeachOverTheStructEnumeratorDoesNotAllocate()
    {
        var xa = New();
        for (ulong i = 0; i < 5000; i++) StoreIndex(xa, i);
        for (ulong i = 0; i < 5000; i += 3) xa.SetMark(i, XaMark.Mark1);
        StoreOrder(xa, 1UL << 20, 8, V(1));
        xa.Store(1UL << 40, V(2));
        xa.Reserve(7000);

        ulong Pass()
        {
            ulong sum = 0;
            foreach (var kv in xa) sum += kv.Key;
            foreach (var kv in xa.Enumerate(100, 4000)) sum += kv.Key;
            foreach (var kv in xa.EnumerateMarked(XaMark.Mark1)) sum += kv.Key;
            foreach (var kv in xa.Enumerate(1UL << 20, ulong.MaxValue, XaMark.Present)) sum += kv.Key;
            return sum;
        }

        ulong expected = Pass();   // warm up: the thread's reader record, JIT
        Pass();
        ulong got = 0;
        long[] windows = AllocationWindows.UntilClean(3, () => got = Pass());
        Assert.Equal(expected, got);
        Assert.True(windows[^1] == 0, $"every pass allocated: {string.Join(", ", windows)} bytes");
    }

    [Fact]
    public void EntriesPresentThroughoutAreSeenOnceInOrderWhileOthersStoreEraseAndMigrate()
    {
        const ulong Span = 24_000;   // stable keys: multiples of 3 below Span; the writer owns the rest
        const ulong Region = 1UL << 16;   // and [Region, Region + 8192): multi-index entries and deleted leaves
        var xa = New();
        for (ulong k = 0; k < Span; k += 3)
        {
            xa.StoreValue(k, k);
            if (k % 6 == 0) xa.SetMark(k, XaMark.Mark0);
        }
        Exception? failure = null;
        int done = 0;
        long moved = 0, passes = 0;
        void Guard(Action a)
        {
            try { a(); }
            catch (Exception ex) { Interlocked.CompareExchange(ref failure, ex, null); }
        }

        var writer = new Thread(() => Guard(() =>
        {
            var rnd = new Random(7);
            while (Volatile.Read(ref done) == 0)
            {
                ulong k = (ulong)rnd.NextInt64((long)Span);
                if (k % 3 != 0)
                {
                    if (rnd.Next(2) == 0) xa.StoreValue(k, k); else xa.Erase(k);
                }
                ulong b = Region + (ulong)rnd.Next(128) * 64;
                switch (rnd.Next(4))
                {
                    case 0:
                        // A store into a multi-index entry replaces the whole entry: erase those first.
                        xa.Erase(b);
                        xa.Erase(b + 16);
                        for (ulong i = 0; i < 64; i++) xa.StoreValue(b + i, b + i);
                        break;
                    case 1:
                        for (ulong i = 0; i < 64; i++) xa.Erase(b + i);   // deletes the leaf
                        break;
                    case 2:
                        xa.Erase(b);
                        xa.StoreOrder(b, 6, XaEntry.FromValue(b));   // replaces the leaf
                        break;
                    default:
                        xa.Erase(b);
                        xa.StoreOrder(b + 16, 3, XaEntry.FromValue(b + 16));
                        break;
                }
            }
        }));

        var defrag = new Thread(() => Guard(() =>
        {
            while (Volatile.Read(ref done) == 0)
            {
                xa.NodeCache.Shrink();
                var nodes = xa.NodeAddresses();
                var results = new MigrateResult[nodes.Count];
                xa.Nodes.Migrate(xa.NodeCache, nodes.ToArray(), 0, null, results);
                Interlocked.Add(ref moved, results.Count(x => x == MigrateResult.Moved));
            }
        }));

        var reader = new Thread(() => Guard(() =>
        {
            var rnd = new Random(11);
            try
            {
                while (Volatile.Read(ref failure) is null && (passes < 200 || Interlocked.Read(ref moved) == 0) && passes < 100_000)
                {
                    ulong start = rnd.Next(3) == 0 ? (ulong)rnd.NextInt64((long)Span) : 0;
                    ulong last = rnd.Next(3) == 0 ? start + (ulong)rnd.NextInt64((long)Span) : ulong.MaxValue;
                    bool marked = rnd.Next(3) == 0;
                    ulong step = marked ? 6UL : 3UL;
                    ulong next = (start + step - 1) / step * step;   // the next stable key expected
                    ulong prev = 0;
                    bool any = false;
                    var range = marked ? xa.EnumerateMarked(XaMark.Mark0, start, last) : xa.Enumerate(start, last);
                    foreach (var kv in range)
                    {
                        ulong key = kv.Key, v = kv.Value.Value;
                        if (any && key <= prev) throw new Exception($"{key} after {prev}");
                        if (key < start || key > last) throw new Exception($"{key} outside [{start}, {last}]");
                        any = true;
                        prev = key;
                        if (key < Span)
                        {
                            if (v != key) throw new Exception($"[{key}] = {v}");
                            if (key % step == 0 && key >= next)
                            {
                                if (key != next) throw new Exception($"stable key {next} missed (next seen {key})");
                                next += step;
                            }
                        }
                        else if (v > key || key - v >= 64 || v < Region) throw new Exception($"[{key}] = {v}");
                    }
                    ulong end = Math.Min(last, Span - 1);
                    if (start <= end && next <= end) throw new Exception($"stable key {next} missed at the end of [{start}, {last}]");
                    Interlocked.Increment(ref passes);
                }
            }
            finally { Volatile.Write(ref done, 1); }
        }));

        var all = new[] { writer, defrag, reader };
        foreach (var t in all) t.Start();
        foreach (var t in all) t.Join();
        Assert.Null(failure);
        Assert.True(passes >= 200);
        Assert.True(moved > 0);
        xa.Validate();
    }
    /// <summary>
    /// Mark 0 of an allocating array is the free mark: no entry carries it, so every marked search for it answers
    /// nothing at once — also in the window where a writer has stored an entry into a free slot and not yet cleared
    /// the slot's free bit (reproduced here by setting the bit by hand). A scan of the free bits would report that
    /// entry; the plain array's mark 0 in the same state is a real mark and is reported.
    /// </summary>
    [Fact]
    public unsafe void TheFreeMarkOfAnAllocatingArrayNeverReportsAnEntry()
    {
        foreach (var flags in new[] { XaFlags.Alloc, XaFlags.None })
        {
            var xa = New(flags);
            for (ulong k = 0; k <= 10; k++) xa.StoreValue(k, k);
            var nodes = xa.NodeAddresses();
            Assert.Single(nodes);   // 11 entries: the root is one leaf
            var leaf = (XaNode*)nodes[0];
            Assert.Equal(0, leaf->Shift);
            ulong bit = 1UL << 5;   // slot 5 holds entry 5
            Assert.Equal(xa.IsAllocating ? ~0UL << 11 : 0UL, leaf->Marks[0]);
            leaf->Marks[0] |= bit;
            var seen = new List<ulong>();
            foreach (var kv in xa.EnumerateMarked(XaMark.Mark0)) seen.Add(kv.Key);
            foreach (var kv in xa.EnumerateMarked(XaMark.Mark0, 3, 7)) seen.Add(kv.Key);
            ulong i = 0;
            if (!xa.Find(ref i, ulong.MaxValue, XaMark.Mark0).IsNull) seen.Add(i);
            i = 2;
            if (!xa.FindAfter(ref i, ulong.MaxValue, XaMark.Mark0).IsNull) seen.Add(i);
            using (xa.ReadLock())
            {
                var xas = new XaState(xa, 1);
                if (!xas.FindMarked(XaMark.Mark0).IsNull) seen.Add(xas.Index);
            }
            if (xa.IsAllocating) Assert.Empty(seen);
            else Assert.Equal([5UL, 5, 5, 5, 5], seen);
            leaf->Marks[0] &= ~bit;
            xa.Validate();
        }
    }
}
