using Slub.Rcu;
using Slub.XArray;

namespace Slub.Tests.XArray;

/// <summary>Readers, writers and defragmentation at once; every value read is checked. Bounded by operation counts, not time.</summary>
public class ConcurrencyTests : XaTest
{
    private const int Keys = 1 << 14;

    private static ulong Encode(ulong key, ulong version) => (key << 24) | (version & 0xFFFFFF);

    /// <summary>A value read at <paramref name="index"/> must have been written for that index's block.</summary>
    private static bool Plausible(ulong index, XaEntry e) =>
        e.IsNull || (e.IsValue && ((e.Value >> 24) == index || (e.Value >> 24) == (index & ~3UL)));

    [Fact]
    public void ReadersWritersAndDefragTogether()
    {
        var xa = New();
        var finals = new Dictionary<ulong, ulong>[2];
        int writersDone = 0;
        long reads = 0, migrations = 0;
        Exception? failure = null;
        void Guard(Action a)
        {
            try { a(); }
            catch (Exception e) { Interlocked.CompareExchange(ref failure, e, null); }
        }

        var writers = Enumerable.Range(0, 2).Select(w => new Thread(() => Guard(() =>
        {
            // Writer w owns the 4-index blocks whose number has parity w, so order ≤ 2 stores stay in its blocks.
            var rnd = new Random(w + 1);
            var mine = new Dictionary<ulong, ulong>();
            for (int i = 0; i < 150_000 && Volatile.Read(ref failure) is null; i++)
            {
                ulong block = (ulong)rnd.Next(Keys / 8) * 2 + (ulong)w;
                ulong key = block * 4 + (ulong)rnd.Next(4);
                int p = rnd.Next(100);
                if (p < 45)
                {
                    ulong v = Encode(key, (ulong)i);
                    // Replacing a piece of a multi-index entry replaces the whole entry.
                    ulong b = key & ~3UL;
                    if (mine.TryGetValue(b, out ulong bv) && xa.GetOrder(key) == 2)
                    {
                        xa.Store(key, XaEntry.FromValue(Encode(b, (ulong)i)));
                        for (ulong k = b; k < b + 4; k++) mine[k] = Encode(b, (ulong)i);
                        continue;
                    }
                    xa.Store(key, XaEntry.FromValue(v));
                    mine[key] = v;
                }
                else if (p < 55)
                {
                    ulong b = key & ~3UL;
                    xa.StoreOrder(b, 2, XaEntry.FromValue(Encode(b, (ulong)i)));
                    for (ulong k = b; k < b + 4; k++) mine[k] = Encode(b, (ulong)i);
                }
                else
                {
                    int order = xa.GetOrder(key);
                    xa.Erase(key);
                    if (order == 2) for (ulong k = key & ~3UL; k < (key & ~3UL) + 4; k++) mine.Remove(k);
                    else mine.Remove(key);
                }
                if (i % 64 == 0) xa.SetMark(key, XaMark.Mark1);
            }
            finals[w] = mine;
            Interlocked.Increment(ref writersDone);
        }))).ToList();

        // A third writer makes the tree grow and shrink (an entry far above the others, stored and erased), so
        // roots are replaced and retired under readers that cache them (XaReader).
        const ulong Far = 1UL << 22;
        var heightWriter = new Thread(() => Guard(() =>
        {
            for (ulong i = 0; Volatile.Read(ref writersDone) < 2 && Volatile.Read(ref failure) is null; i++)
            {
                ulong far = Far + (i & 7);
                xa.Store(far, XaEntry.FromValue(Encode(far, i)));
                Thread.Yield();
                xa.Erase(far);
            }
        }));

        var readers = Enumerable.Range(0, 2).Select(r => new Thread(() => Guard(() =>
        {
            var rnd = new Random(100 + r);
            var batchKeys = new ulong[61];
            var batchEntries = new XaEntry[61];
            var runKeys = new ulong[203];
            var runEntries = new XaEntry[203];
            while (Volatile.Read(ref writersDone) < 2 && Volatile.Read(ref failure) is null)
            {
                for (int i = 0; i < 1000; i++)
                {
                    ulong key = (ulong)rnd.Next(Keys);
                    var e = xa.Load(key);
                    if (!Plausible(key, e)) throw new Exception($"load({key}) returned {e}");
                }
                // The read-section API: its leaf and root caches live across concurrent writes and migration.
                using (var rd = xa.BeginRead())
                {
                    ulong run = (ulong)rnd.Next(Keys);
                    for (int i = 0; i < 1000; i++)
                    {
                        ulong key = (i & 1) == 0 ? (ulong)rnd.Next(Keys) : (run + (ulong)i) % Keys;   // random and sequential
                        if ((i & 15) == 7) key = Far + (ulong)(i & 7);
                        var e = rd.Load(key);
                        if (!Plausible(key, e)) throw new Exception($"reader load({key}) returned {e}");
                        if (rd.TryGetValue(key, out ulong v) && !Plausible(key, XaEntry.FromValue(v)))
                            throw new Exception($"reader value({key}) = {v}");
                        if ((i & 63) == 0)
                        {
                            // The lockstep walk: random keys, a sequential run, and keys beyond the root's reach.
                            for (int b = 0; b < batchKeys.Length; b++)
                                batchKeys[b] = (b % 3) switch
                                {
                                    0 => (ulong)rnd.Next(Keys),
                                    1 => (run + (ulong)(i + b)) % Keys,
                                    _ => (b & 8) != 0 ? Far + (ulong)(b & 7) : (ulong)rnd.Next(Keys),
                                };
                            rd.LoadMany(batchKeys, batchEntries);
                            for (int b = 0; b < batchKeys.Length; b++)
                                if (!Plausible(batchKeys[b], batchEntries[b]))
                                    throw new Exception($"reader LoadMany({batchKeys[b]}) returned {batchEntries[b]}");
                            // Consecutive keys (the run copy), from any alignment, sometimes up to the far keys.
                            ulong first = (i & 64) != 0 ? (ulong)rnd.Next(Keys - runKeys.Length) : Far - (ulong)rnd.Next(8);
                            for (int b = 0; b < runKeys.Length; b++) runKeys[b] = first + (ulong)b;
                            rd.LoadMany(runKeys, runEntries);
                            for (int b = 0; b < runKeys.Length; b++)
                                if (!Plausible(runKeys[b], runEntries[b]))
                                    throw new Exception($"reader LoadMany run ({runKeys[b]}) returned {runEntries[b]}");
                        }
                    }
                }
                // A lock-free cursor walk over a slice.
                using (xa.ReadLock())
                {
                    ulong start = (ulong)rnd.Next(Keys);
                    var xas = new XaState(xa, start);
                    ulong last = 0;
                    bool firstSeen = false;
                    for (var e = xas.Find(start + 2048); !e.IsNull; e = xas.Find(start + 2048))
                    {
                        if (!Plausible(xas.Index, e)) throw new Exception($"cursor at {xas.Index} found {e}");
                        // After a retry entry (a node freed or moved under the walk) the cursor restarts from the
                        // head at its current index and may return that index once more, as xas_find does in
                        // Linux; it must never go backwards.
                        if (firstSeen && xas.Index < last) throw new Exception($"cursor went back from {last} to {xas.Index}");
                        last = xas.Index;
                        firstSeen = true;
                    }
                }
                foreach (var kv in xa.EnumerateMarked(XaMark.Mark1, (ulong)rnd.Next(Keys), Keys))
                    if (!Plausible(kv.Key, kv.Value)) throw new Exception($"marked {kv.Key} = {kv.Value}");
                Interlocked.Add(ref reads, 1000);
            }
        }))).ToList();

        var defrag = new Thread(() => Guard(() =>
        {
            while (Volatile.Read(ref writersDone) < 2 && Volatile.Read(ref failure) is null)
            {
                xa.NodeCache.Shrink();
                var nodes = xa.NodeAddresses();
                var results = new MigrateResult[nodes.Count];
                xa.Nodes.Migrate(xa.NodeCache, nodes.ToArray(), 0, null, results);
                // Nodes freed by a writer between the listing and the move are reported, not moved.
                foreach (var res in results)
                    if (res is not (MigrateResult.Moved or MigrateResult.Freed or MigrateResult.Later))
                        throw new Exception($"unexpected migrate result {res}");
                Interlocked.Add(ref migrations, results.Count(x => x == MigrateResult.Moved));
            }
        }));

        var all = writers.Concat(readers).Append(defrag).Append(heightWriter).ToList();
        foreach (var t in all) t.Start();
        foreach (var t in all) t.Join();
        Assert.Null(failure);
        Assert.True(migrations > 0);
        Assert.True(reads > 0);

        xa.Validate();
        var expected = finals[0].Concat(finals[1]).OrderBy(kv => kv.Key).ToList();
        foreach (var (k, v) in expected) Is(XaEntry.FromValue(v), xa.Load(k));
        Assert.Equal(expected.Count, xa.Sum(kv => 1L << xa.GetOrder(kv.Key)));
    }

    [Fact]
    public void EpochReclaimerWaitsForReadersAndNotForQuiescentThreads()
    {
        var rcu = new EpochReclaimer();
        int freed = 0;
        using var inside = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var reader = new GuardedThread(() =>
        {
            using (rcu.EnterRead())
            {
                using (rcu.EnterRead()) { }             // nesting
                inside.Set();
                release.Wait();
            }
        });
        reader.Start();
        inside.Wait();
        rcu.Retire(() => Interlocked.Increment(ref freed));
        Assert.Equal(0, rcu.Poll());                    // the reader may hold it
        var sync = Task.Run(rcu.Synchronize);
        Assert.False(sync.Wait(50));                    // blocked by the reader (no timing claim: only that it has not finished)
        Assert.Equal(0, Volatile.Read(ref freed));
        release.Set();
        sync.Wait();
        reader.Join();
        Assert.Equal(1, freed);
        Assert.Equal(1, rcu.GracePeriods);
        // Retired after every reader left: a poll frees it without waiting.
        rcu.Retire(() => Interlocked.Increment(ref freed));
        Assert.Equal(1, rcu.Poll());
        Assert.Equal(2, freed);
        using (rcu.EnterRead())
            Assert.Throws<InvalidOperationException>(rcu.Synchronize);
        Assert.Throws<InvalidOperationException>(rcu.ExitRead);
    }

    [Fact]
    public void LoadInsideAReadSectionLeavesTheSectionProtected()
    {
        // Load's fast path publishes and clears the thread's epoch only when it is outside any section; inside
        // one it must leave the record alone, or the enclosing section would end early.
        var xa = New();
        xa.StoreValue(5, 5);
        var rcu = xa.Reclaimer;
        int freed = 0;
        using var inside = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var reader = new GuardedThread(() =>
        {
            using (xa.ReadLock())
            {
                Assert.Equal(5UL, xa.Load(5).Value);
                Assert.True(xa.TryGetValue(5, out _));
                Assert.True(rcu.InReadSection);
                inside.Set();
                release.Wait();
            }
        });
        reader.Start();
        inside.Wait();
        rcu.Retire(() => Interlocked.Increment(ref freed));
        Assert.Equal(0, rcu.Poll());
        Assert.Equal(0, Volatile.Read(ref freed));
        release.Set();
        reader.Join();
        Assert.Equal(1, rcu.Poll());
        Assert.Equal(1, freed);
    }
}
