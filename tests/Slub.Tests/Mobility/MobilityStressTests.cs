namespace Slub.Tests.Mobility;

[Collection("smo-stress")]
public class MobilityStressTests
{
    [Theory]
    [InlineData(1, "-")]
    [InlineData(2, "-")]
    [InlineData(1, "FZU")]
    public void AllocFreeVerifyWhileDefragAndShrinkLoop(int nodes, string debug)
    {
        using var a = TestAllocator.Create(nodes: nodes, cpus: 3, mbPerNode: 128, slubDebug: debug);
        var table = new MovableHandleTable(a, "smo_stress", 100);
        var churn = new HandleTableChurn(table, workers: 3) { Nodes = nodes, MinLive = 100 };
        using (var defragger = new BackgroundLoop(round =>
               {
                   if (round % 2 == 0) table.Cache.Shrink(); else a.DefragSlabs(-1);
                   table.Cache.DefragUsedRatio = 10 + (round + 1) % 60;
               }))
            // On a loaded machine the workers could finish before the defragger ever ran: go on until it moved something.
            churn.Run(ops: 40_000, moreWanted: () => table.Cache.Defrag.ObjectsMoved == 0, startGate: defragger.Started);

        Assert.Equal(0, churn.Bad);
        Assert.True(table.Cache.Defrag.ObjectsMoved > 0, "the defragmenter never moved anything");
        long total = churn.VerifyAll();
        Assert.Equal(total, table.Count);
        table.Cache.Shrink();
        table.Cache.FlushAll();
        var st = table.Cache.GetStatistics();
        Assert.Equal(total, st.Objects);
        Assert.True(st.Slabs <= st.OptimalSlabs + nodes, $"{st.Slabs} slabs, optimal {st.OptimalSlabs}");
        Assert.Empty(table.Cache.Validate());
    }

    [Fact]
    public void HandleTableRejectsDeadHandles()
    {
        using var a = TestAllocator.Create();
        var t = new MovableHandleTable(a, "handles", 16);
        long h = t.Allocate();
        t.Free(h);
        Assert.Throws<ArgumentException>(() => t.Free(h));
        Assert.Throws<ArgumentException>(() => t.Access(h));
        Assert.Throws<ArgumentException>(() => t.Access(999_999));
        Assert.Equal(0, t.Count);
    }

    [Fact]
    public void DefaultScopeDisposesAsNothing()
    {
        using var a = TestAllocator.Create();
        var t = new MovableHandleTable(a, "scopes", 16);
        long h = t.Allocate();
        using (var s = t.Access(h)) s.Bytes.Fill(7);
        default(MovableHandleTable.Scope).Dispose();   // no table, no lock: must not throw
        using (var s = t.Access(h)) Assert.Equal(7, s.Bytes[15]);   // the stripe lock was released once, not left held
        t.Free(h);
    }
}
