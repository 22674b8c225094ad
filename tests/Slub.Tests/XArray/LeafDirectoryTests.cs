using Slub.XArray;
using XA = Slub.XArray.XArray;

namespace Slub.Tests.XArray;

/// <summary>
/// The leaf directory (index &gt;&gt; 6 → leaf, docs/xarray.md "The leaf directory"): its growth and density rule,
/// that <see cref="XA.Validate"/> catches an entry that disagrees with the tree, and loads through it while
/// writers unlink, replace and migrate leaves and freed nodes are reused.
/// </summary>
public unsafe class LeafDirectoryTests : XaTest
{
    [Fact]
    public void DenseArraysGetADirectoryCoveringEveryLeaf()
    {
        var xa = New();
        Assert.Equal(0UL, xa.DirectoryCapacity);
        for (ulong i = 0; i < 100_000; i++) xa.StoreValue(i, i);
        xa.Validate();   // includes: every leaf is in the directory under its own key
        ulong leaves = (100_000 + 63) / 64;
        Assert.InRange(xa.DirectoryCapacity, leaves, 2 * leaves);
        for (ulong i = 0; i < 100_000; i += 997) Is(i, xa.Load(i).Value);
        // Erasing whole leaves clears their entries; a multi-index entry over a leaf's range replaces it.
        for (ulong i = 640; i < 1280; i++) xa.Erase(i);
        xa.StoreOrder(4096, 12, XaEntry.FromValue(7));
        xa.Validate();
        Is(XaEntry.Null, xa.Load(700));
        Is(7UL, xa.Load(5000).Value);
        using (var r = xa.BeginRead())
        {
            Is(7UL, r.Load(8191).Value);
            Assert.False(r.TryGetValue(1000, out _));
            Assert.True(r.TryGetValue(99_999, out ulong v));
            Is(99_999UL, v);
        }
        xa.Destroy();
        xa.Validate();
        Assert.True(xa.IsEmpty);
        Is(XaEntry.Null, xa.Load(5));
    }

    [Fact]
    public void SparseArraysPayLittleAndHugeIndicesNothing()
    {
        var xa = New();
        // One leaf per 2^14 indices: the directory may hold at most 8 entries per leaf, so it stays small.
        for (ulong i = 0; i < 64; i++) xa.StoreValue(i << 14, i);
        xa.Validate();
        Assert.True(xa.DirectoryCapacity <= 8 * 64, $"directory of {xa.DirectoryCapacity} entries for 64 leaves");
        // Beyond 2^26 no leaf enters the directory, and leaves there do not count for the density rule: a few
        // leaves below 2^26 among many above do not buy a large directory.
        var far = New();
        for (ulong i = 0; i < 64_000; i++) far.StoreValue((1UL << 30) + i, i);
        far.Validate();
        Assert.Equal(0UL, far.DirectoryCapacity);
        Is(999UL, far.Load((1UL << 30) + 999).Value);
        for (ulong i = 0; i < 4; i++) far.StoreValue((i + 1) << 22, i);
        far.Validate();
        Assert.True(far.DirectoryCapacity <= 8 * 4, $"directory of {far.DirectoryCapacity} entries for 4 leaves below 2^26");
        Is(3UL, far.Load(4UL << 22).Value);
        // Filled in, the sparse array gets a full directory (rebuilt from the tree, early leaves included).
        for (ulong i = 0; i < 1UL << 20; i += 64) xa.StoreValue(i + 1, i);
        xa.Validate();
        Assert.Equal(1UL << 14, xa.DirectoryCapacity);
        Is(5UL, xa.Load(5UL << 14).Value);
    }

    [Fact]
    public void ValidateCatchesAnEntryThatDisagreesWithTheTree()
    {
        var xa = New();
        for (ulong i = 0; i < 1000; i++) xa.StoreValue(i, i);
        xa.Validate();
        ulong* entries = XA.DirectoryEntries(xa._dir);
        ulong saved = entries[3];
        entries[3] = XA.NoLeaf;   // a leaf missing from the directory
        Assert.Throws<InvalidOperationException>(() => xa.Validate());
        entries[3] = entries[4];   // the wrong leaf
        Assert.Throws<InvalidOperationException>(() => xa.Validate());
        entries[3] = saved;
        xa.Validate();
        // A stale entry: the leaf at key 15 is erased (and retired), the entry is put back.
        ulong stale = entries[15];
        for (ulong i = 960; i < 1000; i++) xa.Erase(i);
        Assert.Equal(XA.NoLeaf, entries[15]);
        entries[15] = stale;
        Assert.Throws<InvalidOperationException>(() => xa.Validate());
        entries[15] = XA.NoLeaf;
        xa.Validate();
    }

    [Fact]
    public void MigrationPointsTheDirectoryAtTheCopies()
    {
        var xa = New();
        for (ulong i = 0; i < 5000; i++) xa.StoreValue(i, i);
        var before = new HashSet<nint>(xa.NodeAddresses());
        var nodes = xa.NodeAddresses();
        var results = new MigrateResult[nodes.Count];
        xa.Nodes.Migrate(xa.NodeCache, nodes.ToArray(), 0, null, results);
        Assert.All(results, r => Assert.Equal(MigrateResult.Moved, r));
        xa.Validate();   // every entry names a live leaf of the tree, none an old one
        ulong* entries = XA.DirectoryEntries(xa._dir);
        for (ulong k = 0; k < (5000 + 63) / 64; k++) Assert.DoesNotContain((nint)(entries[k] - 2), before);
        for (ulong i = 0; i < 5000; i += 7) Is(i, xa.Load(i).Value);
    }

    private sealed class Current { public XA Xa = null!; }

    private static ulong Encode(ulong key, ulong version) => (key << 24) | (version & 0xFFFFFF);

    /// <summary>A value read at <paramref name="index"/> must have been written for it or for the order-6 or order-12 entry covering it.</summary>
    private static bool Plausible(ulong index, XaEntry e) =>
        e.IsNull || (e.IsValue && ((e.Value >> 24) == index || (e.Value >> 24) == (index & ~63UL) || (e.Value >> 24) == (index & ~4095UL)));

    /// <summary>
    /// Readers load through the directory (plain loads, <see cref="XaReader"/> per key and in batches) while a
    /// writer fills and empties whole leaves, replaces leaves and whole subtrees by multi-index entries, destroys
    /// the array and swaps in fresh ones (whose directories grow under the readers), defragmentation migrates
    /// nodes, and a second array churns the <c>xa_node</c> cache so that freed leaves are reused with foreign
    /// values. A directory entry outliving its leaf would show such a value (or a value of another index).
    /// </summary>
    [Fact]
    public void ReadersThroughTheDirectoryNeverSeeAnUnlinkedLeaf()
    {
        const int Leaves = 160;
        const ulong Span = Leaves * 64;
        var current = new Current { Xa = New() };
        var junk = New();
        int writerDone = 0;
        long reads = 0, moved = 0;
        Exception? failure = null;
        void Guard(Action a)
        {
            try { a(); }
            catch (Exception e) { Interlocked.CompareExchange(ref failure, e, null); }
        }

        var writer = new Thread(() => Guard(() =>
        {
            var rnd = new Random(7);
            // 4000 rounds, and on a slow machine more until the readers and the migrations have run (bounded).
            for (int round = 0; (round < 4000 || (Volatile.Read(ref reads) == 0 || Volatile.Read(ref moved) == 0) && round < 400_000)
                                 && Volatile.Read(ref failure) is null; round++)
            {
                var xa = current.Xa;
                if (round % 400 == 399)
                {
                    var fresh = New();
                    Volatile.Write(ref current.Xa, fresh);
                    xa.Dispose();   // readers still inside it keep its nodes and directory until they leave
                    xa = fresh;
                }
                ulong b = (ulong)rnd.Next(Leaves) * 64;
                int p = rnd.Next(100);
                // A store into a multi-index entry replaces the whole entry: erase the one covering b first, so
                // that every value stays one written for its own index or for its order-6 or order-12 entry.
                if (p < 35)
                {
                    xa.Erase(b);
                    for (ulong k = 0; k < 64; k++) xa.StoreValue(b + k, Encode(b + k, (ulong)round));
                }
                else if (p < 55)
                    for (ulong k = 0; k < 64; k++) xa.Erase(b + k);   // the leaf is deleted
                else if (p < 70)
                {
                    xa.Erase(b);
                    xa.StoreOrder(b, 6, XaEntry.FromValue(Encode(b, (ulong)round)));   // replaces the leaf
                }
                else if (p < 78)
                    xa.StoreOrder(b & ~4095UL, 12, XaEntry.FromValue(Encode(b & ~4095UL, (ulong)round)));   // a subtree
                else if (p < 88)
                    xa.Erase(b);
                else if (p < 90)
                    xa.Destroy();
                else
                    for (ulong k = b; k < Math.Min(Span, b + 1024); k++)
                    {
                        if ((k & 63) == 0) xa.Erase(k);
                        xa.StoreValue(k, Encode(k, (ulong)round));
                    }
                // Churn: nodes freed above come back here with values no reader of xa may see.
                ulong j = (ulong)rnd.Next(Leaves) * 64;
                for (ulong k = 0; k < 64; k++) junk.StoreValue(j + k, (1UL << 60) | k);
                if ((round & 3) == 0) junk.Destroy();
            }
            Interlocked.Increment(ref writerDone);
        }));

        var readers = Enumerable.Range(0, 2).Select(id => new Thread(() => Guard(() =>
        {
            var rnd = new Random(100 + id);
            var keys = new ulong[64];
            var entries = new XaEntry[64];
            while (Volatile.Read(ref writerDone) == 0 && Volatile.Read(ref failure) is null)
            {
                var xa = Volatile.Read(ref current.Xa);
                for (int i = 0; i < 256; i++)
                {
                    ulong key = (ulong)rnd.NextInt64((long)Span);
                    if (xa.TryGetValue(key, out ulong v) && !Plausible(key, XaEntry.FromValue(v)))
                        throw new Exception($"TryGetValue({key}) = {v:x}");
                }
                using (var r = xa.BeginRead())
                {
                    ulong run = (ulong)rnd.NextInt64((long)Span);
                    for (int i = 0; i < 512; i++)
                    {
                        ulong key = (i & 1) == 0 ? (ulong)rnd.NextInt64((long)Span) : (run + (ulong)i) % Span;
                        var e = r.Load(key);
                        if (!Plausible(key, e)) throw new Exception($"reader Load({key}) = {e}");
                        if ((i & 31) == 0)
                        {
                            ulong first = (ulong)rnd.NextInt64((long)Span - 64);
                            for (int k = 0; k < keys.Length; k++) keys[k] = (k & 1) == 0 ? first + (ulong)k : (ulong)rnd.NextInt64((long)Span);
                            r.LoadMany(keys, entries);
                            for (int k = 0; k < keys.Length; k++)
                                if (!Plausible(keys[k], entries[k])) throw new Exception($"LoadMany({keys[k]}) = {entries[k]}");
                        }
                    }
                }
                Interlocked.Add(ref reads, 768);
            }
        }))).ToList();

        var defrag = new Thread(() => Guard(() =>
        {
            while (Volatile.Read(ref writerDone) == 0 && Volatile.Read(ref failure) is null)
            {
                var xa = Volatile.Read(ref current.Xa);
                xa.NodeCache.Shrink();
                var nodes = xa.NodeAddresses();
                var results = new MigrateResult[nodes.Count];
                xa.Nodes.Migrate(xa.NodeCache, nodes.ToArray(), 0, null, results);
                Interlocked.Add(ref moved, results.Count(x => x == MigrateResult.Moved));
            }
        }));

        var all = readers.Append(writer).Append(defrag).ToList();
        foreach (var t in all) t.Start();
        foreach (var t in all) t.Join();
        Assert.Null(failure);
        Assert.True(reads > 0);
        Assert.True(moved > 0);
        current.Xa.Validate();
        junk.Validate();
    }
}
