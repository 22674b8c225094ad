using Slub.Pages;

namespace Slub.Tests.Faults;

/// <summary>
/// A node whose memory is used up while another node still has pages: allocations asked for on the full
/// node fall back the way the kernel's do (partial slabs anywhere before new remote slabs), and a NUMA move
/// to the full node never "moves" an object onto another node.
/// </summary>
public class FullNodeTests
{
    private sealed class Reserve : PageBlock;

    /// <summary>Takes every free block on <paramref name="node"/> only.</summary>
    private static List<Reserve> ExhaustNode(SlabAllocator a, int node)
    {
        var taken = new List<Reserve>();
        for (int o = 10; o >= 0; o--)
            while (true)
            {
                var r = new Reserve();
                if (!a.Pages.TryAllocate(o, node, r, exactNode: true)) break;
                taken.Add(r);
            }
        return taken;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]   // slub_debug caches allocate from the node lists: their own path, same rule
    public void AllocNodeOnAFullNodeReusesTheRemoteSlabItWasGiven(bool debug)
    {
        using var a = TestAllocator.Create(nodes: 2, cpus: 2, mbPerNode: 8);
        var cache = a.CreateCache("fullnode", 256, flags: debug ? SlabFlags.ConsistencyChecks | SlabFlags.RedZone : SlabFlags.None);
        var reserve = ExhaustNode(a, 0);
        var objects = Enumerable.Range(0, 100).Select(_ => cache.AllocNode(0)).ToList();
        Assert.All(objects, p => Assert.Equal(1, a.Pages.NodeOf(p)));
        // Not one new slab per call. As in the kernel, a remote node's partial slabs are taken only while it
        // holds more than min_partial of them, and then only with probability remote_node_defrag_ratio
        // (1000/1024 at most): each miss costs a slab. Misses among ~100 tries average 2.3; 10 has odds
        // of about 1 in 70,000.
        var st = cache.GetStatistics();
        int needed = (100 + cache.ObjectsPerSlab - 1) / cache.ObjectsPerSlab;
        Assert.True(st.Slabs <= needed + cache.MinPartial + 10, $"{st.Slabs} slabs for 100 objects ({cache.ObjectsPerSlab} per slab, min_partial {cache.MinPartial})");
        foreach (var p in objects) cache.Free(p);
        foreach (var r in reserve) a.Pages.Free(r);
    }

    [Fact]
    public void MovingToAFullNodeNeverPlacesAnObjectOnAThirdPlace()
    {
        using var a = TestAllocator.Create(nodes: 2, cpus: 2, mbPerNode: 8);
        var table = new MovableHandleTable(a, "movefull", 120);
        var live = new List<long>();
        var all = Enumerable.Range(0, 40 * table.Cache.ObjectsPerSlab).Select(i => table.Allocate(i % 2)).ToList();
        for (int i = 0; i < all.Count; i++)
        {
            if (i % 4 != 0) { table.Free(all[i]); continue; }
            using (var s = table.Access(all[i])) HandleTableChurn.Stamp(s.Bytes, all[i], 5);
            live.Add(all[i]);
        }
        table.Cache.FlushAll();
        var reserve = ExhaustNode(a, 1);   // node 1 keeps only the holes in its partial slabs; node 0 has pages
        var where = live.ToDictionary(h => h, table.AddressOf);
        table.Cache.MoveNode(0, 1);
        foreach (long h in live)
        {
            nint now = table.AddressOf(h);
            if (now != where[h]) Assert.Equal(1, a.Pages.NodeOf(now));   // moved means moved to node 1
            using var s = table.Access(h);
            Assert.True(HandleTableChurn.Check(s.Bytes, h, 5), $"handle {h} damaged");
        }
        long moved = live.Count(h => table.AddressOf(h) != where[h]);
        Assert.Equal(table.Cache.Defrag.ObjectsMoved, moved);
        Assert.True(moved > 0, "node 1's holes should have taken some objects");
        Assert.Equal(live.Count, table.Cache.CountObjects());
        Assert.Empty(table.Cache.Validate());
        foreach (var r in reserve) a.Pages.Free(r);
    }
}
