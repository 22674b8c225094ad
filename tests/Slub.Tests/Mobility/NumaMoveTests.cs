using Slub.Sysfs;

namespace Slub.Tests.Mobility;

public class NumaMoveTests
{
    private static void Stamp(Span<byte> b, long h) { for (int i = 0; i < b.Length; i++) b[i] = (byte)(h + i); }
    private static bool Check(Span<byte> b, long h) { for (int i = 0; i < b.Length; i++) if (b[i] != (byte)(h + i)) return false; return true; }

    private static (SlabAllocator, MovableHandleTable, List<long>) Spread(int nodes, int perNode, int payload = 56)
    {
        var a = TestAllocator.Create(nodes: nodes, cpus: 4, mbPerNode: 64);
        var t = new MovableHandleTable(a, "numa_objs", payload);
        var live = new List<long>();
        var rng = new Random(5);
        for (int n = 0; n < nodes; n++)
            for (int i = 0; i < perNode * (n + 1); i++)   // uneven: node n holds (n+1) shares
            {
                long h = t.Allocate(n);
                using (var s = t.Access(h)) Stamp(s.Bytes, h);
                live.Add(h);
            }
        // Punch holes so partial and full slabs both exist.
        foreach (long h in live.Where(_ => rng.Next(4) == 0).ToList()) { t.Free(h); live.Remove(h); }
        return (a, t, live);
    }

    private static void VerifyAll(MovableHandleTable t, List<long> live)
    {
        foreach (long h in live) { using var s = t.Access(h); Assert.True(Check(s.Bytes, h)); }
    }

    [Fact]
    public void MoveToNodePutsEveryObjectInThatNodesArena()
    {
        var (a, t, live) = Spread(3, 3000);
        using var _ = a;
        a.Sysfs.Write("numa_objs/move", "N2");
        Assert.All(live, h => Assert.Equal(2, a.Pages.NodeOf(t.AddressOf(h))));
        var st = t.Cache.GetStatistics();
        Assert.Equal(live.Count, st.Nodes[2].Objects);
        Assert.Equal(0, st.Nodes[0].Objects + st.Nodes[1].Objects);
        VerifyAll(t, live);
        Assert.Empty(t.Cache.Validate());
    }

    [Fact]
    public void MoveFromOneNodeToAnotherLeavesTheThirdAlone()
    {
        var (a, t, live) = Spread(3, 2000);
        using var _ = a;
        var onNode1 = live.Where(h => a.Pages.NodeOf(t.AddressOf(h)) == 1).ToList();
        var onNode2 = live.Where(h => a.Pages.NodeOf(t.AddressOf(h)) == 2).Select(h => (h, t.AddressOf(h))).ToList();
        a.Sysfs.Write("numa_objs/move", "n0 N1\n");
        Assert.All(live.Where(h => !onNode2.Any(x => x.h == h)), h => Assert.Equal(1, a.Pages.NodeOf(t.AddressOf(h))));
        Assert.All(onNode2, x => Assert.Equal(x.Item2, t.AddressOf(x.h)));   // untouched
        Assert.Equal(0, t.Cache.GetStatistics().Nodes[0].Objects);
        VerifyAll(t, live);
    }

    [Fact]
    public void CompactingANodeReachesOptimalThere()
    {
        var (a, t, live) = Spread(2, 4000);
        using var _ = a;
        a.Sysfs.Write("numa_objs/move", "N1 N1");
        var n1 = t.Cache.GetStatistics().Nodes[1];
        Assert.True(n1.Slabs <= (n1.Objects + t.Cache.ObjectsPerSlab - 1) / t.Cache.ObjectsPerSlab + 1);
        VerifyAll(t, live);
    }

    [Fact]
    public void BalanceEvensOutNodesWithinOneSlabAndMovesOnlyTheSurplus()
    {
        var (a, t, live) = Spread(4, 1500);
        using var _ = a;
        t.Cache.FlushAll();
        var before = t.Cache.GetStatistics().Nodes.Select(n => n.Objects).ToArray();
        long mean = before.Sum() / before.Length;
        long surplus = before.Where(c => c > mean).Sum(c => c - mean);
        long moved0 = t.Cache.Defrag.ObjectsMoved;
        a.Sysfs.Write("numa_objs/balance", "1");
        var after = t.Cache.GetStatistics().Nodes.Select(n => n.Objects).ToArray();
        Assert.Equal(before.Sum(), after.Sum());
        Assert.True(after.Max() - after.Min() <= t.Cache.ObjectsPerSlab, string.Join(",", after));
        long moved = t.Cache.Defrag.ObjectsMoved - moved0;
        Assert.True(moved <= surplus + before.Length, $"moved {moved}, surplus {surplus}");   // no detour through node 0
        VerifyAll(t, live);
        // Validate also checks that no full slab sits on a partial list (and no free slot on the full list).
        Assert.Empty(t.Cache.Validate());
    }

    [Theory]
    [InlineData("N9")]
    [InlineData("N0 N9")]
    [InlineData("X1")]
    [InlineData(" N1")]
    [InlineData("N0  N1")]
    [InlineData("N0 N1 N2")]
    [InlineData("")]
    [InlineData("N-1")]
    public void BadMoveTextIsRefusedAndChangesNothing(string text)
    {
        var (a, t, live) = Spread(2, 500);
        using var _ = a;
        var addresses = live.Select(t.AddressOf).ToList();
        var e = Assert.Throws<SysfsException>(() => a.Sysfs.Write("numa_objs/move", text));
        Assert.Equal(Errno.EINVAL, e.Errno);
        Assert.Equal(addresses, live.Select(t.AddressOf).ToList());
    }

    [Fact]
    public void CachesWithoutMobilityRefuseMoveAndBalance()
    {
        using var a = TestAllocator.Create(nodes: 2);
        a.CreateCache("fixed", 64, flags: SlabFlags.NoMerge).AllocNode(1);
        Assert.Equal(Errno.EINVAL, Assert.Throws<SysfsException>(() => a.Sysfs.Write("fixed/move", "N0")).Errno);
        Assert.Equal(Errno.EINVAL, Assert.Throws<SysfsException>(() => a.Sysfs.Write("fixed/balance", "1")).Errno);
        Assert.Equal(Errno.EINVAL, Assert.Throws<SysfsException>(() => a.Sysfs.Write("fixed/balance", "10")).Errno);
    }

    [Fact]
    public void MoveAndBalanceUnderConcurrentAllocation()
    {
        var (a, t, live) = Spread(2, 3000);
        using var _ = a;
        using var stop = new CancellationTokenSource();
        long bad = 0;
        var churn = Task.Run(() =>
        {
            var mine = new List<long>();
            var rng = new Random(9);
            while (!stop.IsCancellationRequested)
            {
                long h = t.Allocate(rng.Next(-1, 2));
                using (var s = t.Access(h)) Stamp(s.Bytes, h);
                mine.Add(h);
                if (mine.Count > 2000)
                {
                    long g = mine[0]; mine.RemoveAt(0);
                    using (var s = t.Access(g)) if (!Check(s.Bytes, g)) Interlocked.Increment(ref bad);
                    t.Free(g);
                }
            }
            foreach (long h in mine) { using var s = t.Access(h); if (!Check(s.Bytes, h)) Interlocked.Increment(ref bad); }
        });
        for (int i = 0; i < 5; i++)
        {
            t.Cache.MoveToNode(i % 2);
            t.Cache.Balance();
        }
        stop.Cancel();
        churn.Wait();
        Assert.Equal(0, bad);
        VerifyAll(t, live);
        Assert.Empty(t.Cache.Validate());
    }
}
