using Slub.XArray;
using XA = Slub.XArray.XArray;

namespace Slub.Tests.XArray;

/// <summary>
/// Node migration through the xa_node cache's mobility callback, including one test for each flaw the notes
/// list in the kernel series' version.
/// </summary>
public unsafe class MigrationTests : XaTest
{
    private static Dictionary<ulong, (XaEntry e, bool m1, int order)> Snapshot(XA xa)
    {
        var d = new Dictionary<ulong, (XaEntry, bool, int)>();
        foreach (var kv in xa) d[kv.Key] = (kv.Value, xa.GetMark(kv.Key, XaMark.Mark1), xa.GetOrder(kv.Key));
        return d;
    }

    private static void AssertSame(XA xa, Dictionary<ulong, (XaEntry e, bool m1, int order)> before)
    {
        var after = Snapshot(xa);
        Assert.Equal(before.Count, after.Count);
        foreach (var (k, v) in before)
        {
            Assert.Equal(v, after[k]);
            Is(v.e, xa.Load(k));
        }
        xa.Validate();
    }

    private static MigrateResult[] MigrateDirect(XA xa, IReadOnlyList<nint> nodes)
    {
        var results = new MigrateResult[nodes.Count];
        xa.Nodes.Migrate(xa.NodeCache, nodes.ToArray(), 0, null, results);
        return results;
    }

    [Fact]
    public void MigratingEveryNodeKeepsEntriesMarksOrdersAndLinks()
    {
        var xa = New();
        var rnd = new Random(42);
        for (ulong i = 0; i < 5000; i++) xa.StoreValue(i * 7 + (ulong)rnd.Next(7), i);
        StoreOrder(xa, 1UL << 30, 9, V(9));
        StoreOrder(xa, 1UL << 40, 14, XaEntry.FromPointer(0x7000));
        for (ulong i = 0; i < 35000; i += 97) xa.SetMark(i, XaMark.Mark1);
        xa.SetMark(1UL << 30, XaMark.Mark1);
        xa.Reserve(1UL << 50);
        var before = Snapshot(xa);
        var nodes = xa.NodeAddresses();
        long movedBefore = xa.Nodes.NodesMoved;
        var results = MigrateDirect(xa, nodes);
        Assert.All(results, r => Assert.Equal(MigrateResult.Moved, r));
        Assert.Equal(movedBefore + nodes.Count, xa.Nodes.NodesMoved);
        // (Old addresses may be reused by later replacements: retired nodes are freed as grace periods pass.)
        Assert.Equal(nodes.Count, xa.NodeAddresses().Count);
        AssertSame(xa, before);
        Assert.True(xa.Marked(XaMark.Mark1));
        Assert.Equal(XaError.Busy, xa.TryInsert(1UL << 50, V(1)));   // the reservation moved too
        Assert.Equal(0, xa.Reclaimer.PendingCount);     // the batch's grace period freed the old nodes
    }

    [Fact]
    public void ShrinkDefragmentsXaNodeAndEveryEntryStillReadsBack()
    {
        var xa = New();
        var cache = xa.NodeCache;
        const int n = 200_000;
        for (ulong i = 0; i < n; i++) xa.StoreValue(i, i);
        var rnd = new Random(7);
        var keep = new SortedSet<ulong>();
        for (ulong i = 0; i < n; i++)
        {
            // Erase most entries at random, keeping a few in each leaf so most leaves survive sparsely.
            if (rnd.Next(100) < 4) keep.Add(i);
            else xa.Erase(i);
        }
        xa.Reclaimer.Synchronize();
        var st0 = cache.GetStatistics();
        cache.Shrink();
        var st1 = cache.GetStatistics();
        Assert.True(st1.Slabs < st0.Slabs, $"slabs {st0.Slabs} -> {st1.Slabs}");
        Assert.True(st1.Slabs <= st1.OptimalSlabs + 2 * st1.Nodes.Count + 8, $"slabs {st1.Slabs}, optimal {st1.OptimalSlabs}");
        Assert.True(xa.Nodes.NodesMoved > 0);
        foreach (ulong i in keep) Is(V(i), xa.Load(i));
        Assert.Equal(keep.Count, xa.Count());
        xa.Validate();
    }

    /// <summary>
    /// Flaw 1: the series leaves the old node's slots intact, so a lock-free reader that loads, then re-validates
    /// with xas_reload, compares against the stale copy and misses later stores. Ours writes retry entries.
    /// </summary>
    [Fact]
    public void ReaderInsideAMovedNodeDoesNotRevalidateAgainstAStaleCopy()
    {
        var xa = New();
        for (ulong i = 0; i < 64; i++) xa.StoreValue(i, i);
        xa.StoreValue(1000, 1000);                      // two levels: root (shift 6) and leaves
        using var loaded = new ManualResetEventSlim();
        using var stored = new ManualResetEventSlim();
        XaEntry first = default, reloaded = default;
        nint oldLeaf = 0;
        var reader = new GuardedThread(() =>
        {
            using (xa.ReadLock())
            {
                var xas = new XaState(xa, 5);
                first = xas.Load();
                oldLeaf = xas.NodeAddress;
                loaded.Set();
                stored.Wait();
                reloaded = xas.Reload();                // the page-cache "load, get ref, reload" check
            }
        });
        reader.Start();
        loaded.Wait();
        MigrateResult[] results = [];
        var migrator = new GuardedThread(() => results = MigrateDirect(xa, new[] { oldLeaf }));
        migrator.Start();
        // The move itself happens under the array lock; the migrator then waits for our reader's grace period.
        SpinWait.SpinUntil(() => Volatile.Read(ref ((XaNode*)oldLeaf)->Array) == XaNode.RetiredArray);
        Is(V(5), xa.Store(5, V(555)));                  // lands in the new leaf
        stored.Set();
        reader.Join();
        migrator.Join();
        Is(V(5), first);
        Is(V(555), reloaded);
        Assert.Equal(MigrateResult.Moved, results[0]);
        xa.Validate();
    }

    /// <summary>Flaw 2: nothing pinned the array between reading node->array and locking it. Ours resolves a strong reference and re-checks under the lock.</summary>
    [Fact]
    public void ArrayDisposedBetweenResolvingAndLockingIsHandled()
    {
        var xa = New();
        for (ulong i = 0; i < 300; i++) xa.StoreValue(i, i);
        var nodes = xa.NodeAddresses();
        XaNodeCache.BeforeLockHook = a => { if (ReferenceEquals(a, xa)) a.Dispose(); };
        MigrateResult[] results;
        try { results = MigrateDirect(xa, nodes); }
        finally { XaNodeCache.BeforeLockHook = null; }
        // The first node's array went away under us: nothing was moved, every node is reported freed.
        Assert.All(results, r => Assert.Equal(MigrateResult.Freed, r));
        Assert.Equal(0, xa.Reclaimer.PendingCount);
        foreach (var p in nodes) Assert.Equal(XaNode.NoArray, ((XaNode*)p)->Array);   // back in the slab
        Is(XaEntry.Null, xa.Load(5));
        Assert.Throws<ObjectDisposedException>(() => xa.Store(5, V(1)));
        // A stale id never resolves to another array.
        Assert.Null(XArrayRegistry.Resolve(xa.Id));
    }

    /// <summary>Flaw 3: preallocated nodes carry the array's id; the series would "migrate" them into another preallocated node's slot. Ours checks linkage.</summary>
    [Fact]
    public void PreallocatedNodesAreNotMistakenForLiveOnes()
    {
        var xa = New();
        for (ulong i = 0; i < 100; i++) xa.StoreValue(i, i);
        var xas = new XaState(xa, 1UL << 30);
        Assert.Equal(XaError.None, xas.PreallocateNodes(4));
        var live = xa.NodeAddresses();
        var all = xa.NodeCache;
        // Find the preallocated nodes: they carry the id but are not in the tree.
        var prealloc = new List<nint>();
        foreach (var p in AllocatedNodesWithId(xa)) if (!live.Contains(p)) prealloc.Add(p);
        Assert.Equal(4, prealloc.Count);
        var copies = prealloc.Select(p => Snapshot(p)).ToList();
        var results = MigrateDirect(xa, prealloc);
        Assert.All(results, r => Assert.Equal(MigrateResult.Later, r));
        for (int i = 0; i < prealloc.Count; i++) Assert.Equal(copies[i], Snapshot(prealloc[i]));
        // Shrinking the whole cache leaves them alone as well, and the cursor can still use them.
        all.Shrink();
        using (xa.Lock()) xas.Store(V(30));
        Assert.Equal(0, xas.PreallocatedNodes);
        Is(V(30), xa.Load(1UL << 30));
        for (ulong i = 0; i < 100; i++) Is(V(i), xa.Load(i));
        xa.Validate();
    }

    private static byte[] Snapshot(nint node) => new ReadOnlySpan<byte>((void*)node, XaNode.Size).ToArray();

    private static List<nint> AllocatedNodesWithId(XA xa)
    {
        // Every object of the cache whose array field names xa (live, or preallocated by a cursor).
        var list = new List<nint>();
        foreach (var arena in xa.NodeCache.Allocator.Pages.Arenas)
            foreach (var block in arena.AllocatedBlocks())
                if (block is Slab s && s.Cache == xa.NodeCache)
                    for (int i = 0; i < s.Objects; i++)
                    {
                        nint p = s.ObjectAt(i);
                        if (((XaNode*)p)->Array == xa.Id) list.Add(p);
                    }
        return list;
    }

    /// <summary>Flaw 4: the series waits a full RCU barrier per object. Ours waits one grace period per batch.</summary>
    [Fact]
    public void OneGracePeriodPerBatch()
    {
        var xa = New();
        for (ulong i = 0; i < 64 * 40; i += 2) xa.StoreValue(i, i);
        var nodes = xa.NodeAddresses();
        Assert.True(nodes.Count > 10);
        long gp = xa.Reclaimer.GracePeriods;
        var results = MigrateDirect(xa, nodes);
        Assert.All(results, r => Assert.Equal(MigrateResult.Moved, r));
        Assert.Equal(gp + 1, xa.Reclaimer.GracePeriods);
        Assert.Equal(0, xa.Reclaimer.PendingCount);
        xa.Validate();
    }

    [Fact]
    public void RetiredAndUnownedNodesAreReportedNotTouched()
    {
        var xa = New();
        for (ulong i = 0; i < 200; i++) xa.StoreValue(i, i);
        var nodes = xa.NodeAddresses();
        xa.Destroy();                                   // all retired, waiting for a grace period
        var fresh = xa.NodeCache.Alloc();               // allocated but in no array
        var results = MigrateDirect(xa, nodes.Append(fresh).Append(0).ToList());
        for (int i = 0; i < nodes.Count; i++) Assert.Equal(MigrateResult.Freed, results[i]);
        Assert.Equal(MigrateResult.Later, results[nodes.Count]);
        Assert.Equal(MigrateResult.Skipped, results[nodes.Count + 1]);
        Assert.Equal(0, xa.Reclaimer.PendingCount);
        xa.NodeCache.Free(fresh);
    }

    [Fact]
    public void ShrinkInsideAReadSectionFailsInsteadOfDeadlocking()
    {
        var xa = New();
        for (ulong i = 0; i < 64 * 64; i++) xa.StoreValue(i, i);
        for (ulong i = 0; i < 64 * 64; i++) if (i % 61 != 0) xa.Erase(i);
        var nodes = xa.NodeAddresses();
        using (xa.ReadLock())
            Assert.Throws<InvalidOperationException>(() => MigrateDirect(xa, nodes));
        xa.Validate();
        for (ulong i = 0; i < 64 * 64; i += 61) Is(V(i), xa.Load(i));
    }
}
