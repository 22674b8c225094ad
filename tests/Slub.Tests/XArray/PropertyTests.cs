using CsCheck;
using Slub.XArray;
using XA = Slub.XArray.XArray;

namespace Slub.Tests.XArray;

/// <summary>
/// Model-based property tests: random operation sequences applied to an XArray and to a model built on a
/// <see cref="SortedDictionary{TKey,TValue}"/> of index → value (plus the multi-index entry each index belongs
/// to and its marks), interleaved with defragmentation of the xa_node cache and direct node migration.
/// </summary>
public class PropertyTests : XaTest
{
    private enum Op { Store, StoreOrder, Erase, Insert, Cmpxchg, SetMark, ClearMark, Find, Shrink, MigrateAll, Alloc, MarkedRange }

    private sealed class Model
    {
        public readonly SortedDictionary<ulong, ulong> Values = new();      // every covered index
        public readonly Dictionary<ulong, ulong> BaseOf = new();            // index → first index of its entry
        public readonly SortedDictionary<ulong, (int Order, int Marks)> Entries = new();

        public ulong? Load(ulong i) => Values.TryGetValue(i, out ulong v) ? v : null;

        private void Remove(ulong b)
        {
            var (order, _) = Entries[b];
            for (ulong n = 0; n < (1UL << order); n++) { Values.Remove(b + n); BaseOf.Remove(b + n); }
            Entries.Remove(b);
        }

        public ulong? Store(ulong i, int order, ulong v)
        {
            ulong? old = Load(i);
            ulong size = 1UL << order, b = i & ~(size - 1);
            if (BaseOf.TryGetValue(b, out ulong eb) && Entries[eb].Order > order)
            {
                // A larger entry covers the range: it is replaced whole, keeping its order and marks.
                for (ulong n = 0; n < (1UL << Entries[eb].Order); n++) Values[eb + n] = v;
                return old;
            }
            int marks = 0;
            for (ulong n = 0; n < size; n++)
                if (BaseOf.TryGetValue(b + n, out ulong x)) { marks |= Entries[x].Marks; Remove(x); }
            for (ulong n = 0; n < size; n++) { Values[b + n] = v; BaseOf[b + n] = b; }
            Entries[b] = (order, marks);
            return old;
        }

        public ulong? Erase(ulong i)
        {
            ulong? old = Load(i);
            if (BaseOf.TryGetValue(i, out ulong b)) Remove(b);
            return old;
        }

        public void Mark(ulong i, int m, bool set)
        {
            if (!BaseOf.TryGetValue(i, out ulong b)) return;
            var (o, marks) = Entries[b];
            Entries[b] = (o, set ? marks | (1 << m) : marks & ~(1 << m));
        }

        public bool GetMark(ulong i, int m) => BaseOf.TryGetValue(i, out ulong b) && (Entries[b].Marks & (1 << m)) != 0;
    }

    private static readonly Gen<ulong> GenKey =
        Gen.Select(Gen.Int[0, 9], Gen.ULong[0, 300], Gen.ULong).Select((kind, dense, any) => kind switch
        {
            < 6 => dense,                         // dense: most operations hit a small range
            6 => dense << 7,                      // a leaf every other 64 indices: the leaf directory grows
            7 => dense << 20,                     // sparse but structured
            8 => ulong.MaxValue - dense,          // the top of the index space
            _ => any,
        });

    private static readonly Gen<(Op, ulong, ulong, int)> GenOp =
        Gen.Select(Gen.Int[0, 99], GenKey, Gen.ULong[0, long.MaxValue], Gen.Int[0, 6]).Select((p, k, v, o) =>
        {
            Op op = p switch
            {
                < 30 => Op.Store, < 38 => Op.StoreOrder, < 58 => Op.Erase, < 64 => Op.Insert, < 70 => Op.Cmpxchg,
                < 78 => Op.SetMark, < 83 => Op.ClearMark, < 93 => Op.Find, < 96 => Op.Shrink, _ => Op.MigrateAll,
            };
            return (op, k, v, o);
        });

    /// <summary>
    /// Operations for allocating arrays: the plain ones plus ID allocation (<c>xa_alloc</c> within a random limit) and
    /// marked enumeration over random ranges, the latter often enough that the leaf step and the general search both
    /// meet entries stored, erased, allocated and marked in between.
    /// </summary>
    private static readonly Gen<(Op, ulong, ulong, int)> GenAllocOp =
        Gen.Select(Gen.Int[0, 99], GenKey, Gen.ULong[0, long.MaxValue], Gen.Int[0, 6]).Select((p, k, v, o) =>
        {
            Op op = p switch
            {
                < 20 => Op.Store, < 25 => Op.StoreOrder, < 40 => Op.Erase, < 44 => Op.Insert, < 48 => Op.Cmpxchg,
                < 60 => Op.SetMark, < 65 => Op.ClearMark, < 70 => Op.Find, < 82 => Op.Alloc, < 97 => Op.MarkedRange,
                < 98 => Op.Shrink, _ => Op.MigrateAll,
            };
            return (op, k, v, o);
        });

    /// <summary>
    /// Marked enumeration in allocating arrays (<see cref="XaFlags.Alloc"/>, <see cref="XaFlags.Alloc1"/>), where mark 0
    /// is the free mark: <c>EnumerateMarked</c>, the <c>Find</c>/<c>FindAfter</c> loop and <c>Extract</c> of marks 1 and 2
    /// over random ranges agree with the model after random stores, multi-index stores, erases, ID allocations and
    /// defragmentation; mark 0 yields nothing in every form, the cursor's included.
    /// </summary>
    [Fact]
    public void MarkedEnumerationInAllocatingArraysMatchesTheModel()
    {
        Gen.Select(Gen.Bool, GenAllocOp.Array[1, 150]).Sample((alloc1, ops) =>
        {
            using var xa = new XA(alloc1 ? XaFlags.Alloc1 : XaFlags.Alloc, Alloc);
            var model = new Model();
            foreach (var (op, key, value, order) in ops) Apply(xa, model, op, key, value, order);
            Compare(xa, model);
            CheckMarkedRange(xa, model, 0, ulong.MaxValue, XaMark.Mark1);
            CheckMarkedRange(xa, model, 0, ulong.MaxValue, XaMark.Mark2);
        }, iter: 150, threads: 1, print: t => $"{(t.Item1 ? "Alloc1" : "Alloc")}: " + string.Join(", ", t.Item2.Select(o => o.ToString())));
    }

    /// <summary>
    /// <c>xa_for_each_marked</c> over [<paramref name="start"/>, <paramref name="last"/>] against the model: each entry
    /// carrying the mark and overlapping the range, once, at max(first index, start), by the struct enumerator, by the
    /// Find/FindAfter loop and by Extract; and nothing at all for mark 0 of an allocating array.
    /// </summary>
    private static void CheckMarkedRange(XA xa, Model model, ulong start, ulong last, XaMark mark)
    {
        int bit = 1 << (int)mark;
        var expected = new List<(ulong, ulong)>();
        if (start <= last)
            foreach (var (b, (order, marks)) in model.Entries)
            {
                ulong end = b + ((1UL << order) - 1);
                if ((marks & bit) != 0 && end >= start && b <= last) expected.Add((Math.Max(b, start), model.Values[b]));
            }
        var viaForeach = new List<(ulong, ulong)>();
        foreach (var kv in xa.EnumerateMarked(mark, start, last)) viaForeach.Add((kv.Key, kv.Value.Value));
        Assert.Equal(expected, viaForeach);
        var viaFind = new List<(ulong, ulong)>();
        ulong index = start;
        if (start <= last)
            for (var e = xa.Find(ref index, last, mark); !e.IsNull; e = xa.FindAfter(ref index, last, mark)) viaFind.Add((index, e.Value));
        Assert.Equal(expected, viaFind);
        var extracted = new XaEntry[Math.Min(expected.Count + 1, 64)];
        int n = start <= last ? xa.Extract(extracted, start, last, mark) : 0;
        Assert.Equal(expected.Take(extracted.Length).Select(x => XaEntry.FromValue(x.Item2)), extracted.Take(n));

        if (!xa.IsAllocating) return;
        // Mark 0 is the free mark: set on empty slots only, so no entry carries it, whatever the range.
        foreach (var _ in xa.EnumerateMarked(XaMark.Mark0, start, last)) Assert.Fail("an entry carries the free mark");
        ulong at = start;
        Assert.True(xa.Find(ref at, last, XaMark.Mark0).IsNull);
        Assert.Equal(start, at);
        at = start;
        Assert.True(xa.FindAfter(ref at, last, XaMark.Mark0).IsNull);
        Assert.Equal(0, xa.Extract(extracted, start, last, XaMark.Mark0));
        // The cursor, as xas_find_marked(XA_FREE_MARK), stops at free indices instead: the first call at the lowest
        // index no entry covers (never 0 with ALLOC1), inside the tree or at its bounds just past it, or, when none up
        // to last is free, it is left unwalked. Later calls step slot by slot, as the kernel's do: an empty interior
        // slot is one stop for its whole range, so they give free indices in increasing order, not every one, and
        // may find nothing more before last.
        bool zeroBusy = (xa.Flags & XaFlags.ZeroBusy) != 0;
        using (xa.ReadLock())
        {
            var xas = new XaState(xa, start);
            ulong from = start == 0 && zeroBusy ? 1 : start;
            for (int step = 0; step < 3; step++)
            {
                ulong expect = from;
                while (expect <= last && expect != ulong.MaxValue && model.Load(expect).HasValue) expect++;
                bool none = start > last || expect > last || model.Load(expect).HasValue;
                Assert.True(xas.FindMarked(XaMark.Mark0, last).IsNull);
                if (step > 0 && xas.IsRestart) break;   // the rest of the range lay in the slot it stopped on
                if (none)
                {
                    Assert.True(xas.IsRestart, $"no free index in [{from}, {last}], cursor {xas}");
                    break;
                }
                Assert.False(xas.IsRestart, $"free index {expect} expected, cursor {xas}");
                if (step == 0) Assert.Equal(expect, xas.Index);
                else
                {
                    Assert.InRange(xas.Index, expect, last);
                    Assert.False(model.Load(xas.Index).HasValue, $"cursor stopped at {xas.Index}, which holds an entry");
                }
                if (xas.IsAtBounds) break;   // past the tree: every later index is free too
                if (xas.Index == last) break;
                from = xas.Index + 1;
            }
        }
    }

    [Fact]
    public void RandomOperationsMatchTheModelAcrossDefragmentation()
    {
        GenOp.Array[1, 150].Sample(ops =>
        {
            using var xa = new XA(XaFlags.None, Alloc);
            var model = new Model();
            foreach (var (op, key, value, order) in ops) Apply(xa, model, op, key, value, order);
            Compare(xa, model);
        }, iter: 150, threads: 1, print: ops => string.Join(", ", ops.Select(o => o.ToString())));
    }

    /// <summary>
    /// One <see cref="XaReader"/> stays open across the operations (reopened only around defragmentation, which
    /// waits for readers): its cached leaf and root must never make it disagree with the model, whatever the
    /// writes in between did to the tree (growth, shrinking, multi-index stores, node deletion).
    /// </summary>
    [Fact]
    public void AReaderKeptOpenAcrossWritesMatchesTheModel()
    {
        GenOp.Array[1, 150].Sample(ops =>
        {
            using var xa = new XA(XaFlags.None, Alloc);
            var model = new Model();
            var r = xa.BeginRead();
            try
            {
                foreach (var (op, key, value, order) in ops)
                {
                    if (op is Op.Shrink or Op.MigrateAll) r.Dispose();
                    Apply(xa, model, op, key, value, order);
                    if (op is Op.Shrink or Op.MigrateAll) r = xa.BeginRead();
                    ulong[] probe = [key, key + 1, key - 1, key ^ 1, key + 64, key - 64, key ^ 4096, 0UL, 1UL,
                        .. Enumerable.Range(0, 72).Select(j => (key & ~15UL) - 4 + (ulong)j)];   // a consecutive run
                    var many = new XaEntry[probe.Length];
                    r.LoadMany(probe, many);   // the lockstep walk, with the same caches
                    for (int p = 0; p < probe.Length; p++)
                    {
                        ulong k = probe[p];
                        Assert.Equal(Entry(model.Load(k)), many[p]);
                        Assert.Equal(Entry(model.Load(k)), r.Load(k));
                        Assert.Equal(model.Load(k).HasValue, r.TryGetValue(k, out ulong v));
                        if (model.Load(k) is { } mv) Assert.Equal(mv, v);
                    }
                }
                foreach (var (k, v) in model.Values) Assert.Equal(XaEntry.FromValue(v), r.Load(k));
            }
            finally { r.Dispose(); }
        }, iter: 150, threads: 1, print: ops => string.Join(", ", ops.Select(o => o.ToString())));
    }

    [Fact]
    public void ReaderFollowsGrowthAndShrinkingAndThrowsAfterDispose()
    {
        using var xa = new XA(XaFlags.None, Alloc);
        xa.StoreValue(0, 7);
        var r = xa.BeginRead();
        Assert.Equal(7UL, r.Load(0).Value);                       // head entry, no node
        for (ulong i = 1; i < 100; i++) xa.StoreValue(i, i);       // two levels
        Assert.Equal(99UL, r.Load(99).Value);
        xa.StoreValue(1UL << 22, 5);                              // four levels: beyond the cached root's reach
        Assert.Equal(5UL, r.Load(1UL << 22).Value);
        Assert.Equal(42UL, r.Load(42).Value);
        xa.StoreValue(1UL << 40, 6);                              // eight levels: the loop walk
        Assert.Equal(6UL, r.Load(1UL << 40).Value);
        Assert.Equal(43UL, r.Load(43).Value);
        xa.Erase(1UL << 40);
        xa.Erase(1UL << 22);                                      // shrinks back: the cached roots are retired
        Assert.Equal(XaEntry.Null, r.Load(1UL << 22));
        Assert.Equal(44UL, r.Load(44).Value);
        xa.StoreOrder(64, 6, XaEntry.FromValue(9));               // a multi-index entry replaces a cached leaf
        Assert.Equal(9UL, r.Load(70).Value);
        xa.StoreOrder(0, 4, XaEntry.FromValue(3));                // siblings in a leaf
        Assert.Equal(3UL, r.Load(15).Value);
        xa.Reserve(200);
        Assert.Equal(XaEntry.Null, r.Load(200));                  // reservations read as null
        for (ulong i = 0; i < 200; i++) xa.Erase(i);
        Assert.Equal(XaEntry.Null, r.Load(5));
        r.Dispose();
        r.Dispose();                                              // idempotent
        Assert.False(xa.Reclaimer.InReadSection);
        xa.StoreValue(5, 5);
        for (int attempt = 0; attempt < 2; attempt++)   // a failed load must not leave a usable cache behind
        {
            bool threw = false;
            try { r.Load(5); } catch (ObjectDisposedException) { threw = true; }
            Assert.True(threw);
        }
        var blank = default(XaReader);
        bool blankThrew = false;
        try { blank.Load(1); } catch (ObjectDisposedException) { blankThrew = true; }
        Assert.True(blankThrew);
    }

    private void Apply(XA xa, Model model, Op op, ulong key, ulong value, int order)
    {
        var v = XaEntry.FromValue(value);
        switch (op)
        {
            case Op.Store:
                Assert.Equal(Entry(model.Store(key, 0, value)), xa.Store(key, v));
                break;
            case Op.StoreOrder:
                Assert.Equal(Entry(model.Store(key, order, value)), xa.StoreOrder(key, order, v));
                break;
            case Op.Erase:
                Assert.Equal(Entry(model.Erase(key)), xa.Erase(key));
                break;
            case Op.Insert:
            {
                bool busy = model.Load(key).HasValue;
                Assert.Equal(busy ? XaError.Busy : XaError.None, xa.TryInsert(key, v));
                if (!busy) model.Store(key, 0, value);
                break;
            }
            case Op.Cmpxchg:
            {
                ulong? cur = model.Load(key);
                // Half the time the expected entry is right.
                var expected = (value & 1) == 0 && cur.HasValue ? XaEntry.FromValue(cur.Value) : (value & 2) == 0 ? XaEntry.Null : v;
                var replacement = (value & 4) == 0 ? XaEntry.Null : XaEntry.FromValue(value >> 3);
                Assert.Equal(Entry(cur), xa.CompareExchange(key, expected, replacement));
                if (Entry(cur) == expected)
                {
                    if (replacement.IsNull) model.Erase(key);
                    else model.Store(key, 0, replacement.Value);
                }
                break;
            }
            case Op.SetMark:
                xa.SetMark(key, (XaMark)(1 + (int)(value & 1)));
                model.Mark(key, 1 + (int)(value & 1), true);
                break;
            case Op.ClearMark:
                xa.ClearMark(key, (XaMark)(1 + (int)(value & 1)));
                model.Mark(key, 1 + (int)(value & 1), false);
                break;
            case Op.Find:
            {
                ulong index = key;
                var e = xa.Find(ref index);
                // Expected: the entry covering key, else the first entry starting after it.
                var exp = model.Load(key) is { } here ? (key, here) : model.Entries.Keys.Where(b => b > key).Select(b => (b, model.Values[b])).FirstOrDefault((key, ulong.MaxValue));
                if (exp.Item2 == ulong.MaxValue) Assert.Equal(XaEntry.Null, e);
                else { Assert.Equal(XaEntry.FromValue(exp.Item2), e); Assert.Equal(exp.Item1, index); }
                Assert.Equal(model.GetMark(key, 1), xa.GetMark(key, XaMark.Mark1));
                break;
            }
            case Op.Alloc:
            {
                // xa_alloc within [min, max]: the lowest index there that no entry covers (index 0 never with ALLOC1).
                uint min = (uint)(key % 400), max = min + (uint)(value % 300);
                ulong expect = (xa.Flags & XaFlags.ZeroBusy) != 0 && min == 0 ? 1 : min;
                while (expect <= max && model.Load(expect).HasValue) expect++;
                var err = xa.TryAlloc(XaEntry.FromValue(value), new XaLimit(min, max), out uint id);
                if (expect > max) Assert.Equal(XaError.Busy, err);
                else
                {
                    Assert.Equal(XaError.None, err);
                    Assert.Equal(expect, (ulong)id);
                    model.Store(id, 0, value);
                }
                key = expect > max ? key : expect;   // the check below loads the allocated index
                break;
            }
            case Op.MarkedRange:
            {
                ulong span = (value >> 2) % 5000;
                ulong last = (value & 3) switch
                {
                    0 => ulong.MaxValue,
                    1 => key,
                    2 => ulong.MaxValue - key < span ? ulong.MaxValue : key + span,
                    _ => key - 1,   // start > last (or, from 0, the whole space)
                };
                CheckMarkedRange(xa, model, key, last, (value >> 20 & 1) == 0 ? XaMark.Mark1 : XaMark.Mark2);
                break;
            }
            case Op.Shrink:
                xa.NodeCache.Shrink();
                break;
            case Op.MigrateAll:
            {
                var nodes = xa.NodeAddresses();
                var results = new MigrateResult[nodes.Count];
                xa.Nodes.Migrate(xa.NodeCache, nodes.ToArray(), 0, null, results);
                Assert.All(results, r => Assert.Equal(MigrateResult.Moved, r));
                break;
            }
        }
        Assert.Equal(Entry(model.Load(key)), xa.Load(key));
        xa.Validate();   // after every step: tree invariants, and the leaf directory equal to the tree
    }

    private static XaEntry Entry(ulong? v) => v.HasValue ? XaEntry.FromValue(v.Value) : XaEntry.Null;

    private static void Compare(XA xa, Model model)
    {
        xa.Validate();
        var expected = model.Entries.Select(kv => (kv.Key, model.Values[kv.Key])).ToList();
        var actual = xa.Select(kv => (kv.Key, kv.Value.Value)).ToList();
        Assert.Equal(expected, actual);
        foreach (var (b, (order, marks)) in model.Entries)
        {
            Assert.Equal(order, xa.GetOrder(b));
            Assert.Equal(order, xa.GetOrder(b + (1UL << order) - 1));
            Assert.Equal((marks & 2) != 0, xa.GetMark(b, XaMark.Mark1));
            Assert.Equal((marks & 4) != 0, xa.GetMark(b, XaMark.Mark2));
        }
        Assert.Equal(model.Entries.Values.Any(e => (e.Marks & 2) != 0), xa.Marked(XaMark.Mark1));
        var marked = xa.EnumerateMarked(XaMark.Mark2).Select(kv => kv.Key).ToList();
        Assert.Equal(model.Entries.Where(e => (e.Value.Marks & 4) != 0).Select(e => e.Key).ToList(), marked);
        Assert.Equal(model.Entries.Count == 0, xa.IsEmpty);
    }

    /// <summary>The same against an allocating array: IDs handed out are the lowest free ones.</summary>
    [Fact]
    public void AllocMatchesLowestFreeIndex()
    {
        Gen.Select(Gen.Int[0, 2], Gen.UInt[0, 200]).Array[1, 300].Sample(ops =>
        {
            using var xa = new XA(XaFlags.Alloc1, Alloc);
            var used = new SortedSet<uint>();
            foreach (var (kind, k) in ops)
            {
                if (kind < 2)
                {
                    uint expect = 1;
                    while (used.Contains(expect)) expect++;
                    Assert.Equal(expect, xa.Alloc(XaEntry.FromValue(k)));
                    used.Add(expect);
                }
                else
                {
                    xa.Erase(k);
                    used.Remove(k);
                }
            }
            xa.Validate();
            Assert.Equal(used.Select(u => (ulong)u).ToList(), xa.Select(kv => kv.Key).ToList());
        }, iter: 100, threads: 1);
    }
}
