namespace Slub.Tests.Mobility;

/// <summary>
/// Defrag runs of every kind racing each other on the same nodes while workers churn checksummed objects:
/// sysfs writes (shrink, move between nodes, compaction of one node, balance) on one thread, conditional
/// defragmentation, shrink with the series' policy, kmem_defrag_slabs and knob changes (cpu_partial,
/// min_partial) on another, and the background defragmenter on a third. The other stress tests run one
/// defragmenting thread at a time; here two runs may pick sources and reserve targets on one node at once, a
/// move's full-slab scan meets slabs another run isolated or reserved, and balance reads counts that other runs
/// are changing. Afterwards every object must be intact, the counts exact, the partial-list counters equal to a
/// recount, no slab left isolated, and validate clean.
/// </summary>
[Collection("smo-stress")]
public class ConcurrentDefragRunsTests
{
    [Theory]
    [InlineData("-")]
    [InlineData("FZ")]
    public void EveryKindOfDefragRunRacesOnTheSameNodes(string debug)
    {
        using var a = TestAllocator.Create(nodes: 2, cpus: 4, mbPerNode: 128, slubDebug: debug);
        var table = new MovableHandleTable(a, "defrag_race", 72);
        var cache = table.Cache;
        string dir = cache.Name + "/";
        cache.ActiveDefrag = cache.ActiveDefrag with
        {
            IgnorePages = 0, ThresholdLower = 1, ThresholdStop = 0, CycleMin = 50, CycleMax = 100, IntervalMs = 1, MaxSlabsPerStep = 4,
        };
        var churn = new HandleTableChurn(table, workers: 3) { Nodes = 2, MinLive = 200 };
        string[] writes = ["shrink", "move N0 N1", "move N1 N0", "move N1 N1", "balance", "move N0", "move N0 N0"];
        using var bg = a.StartBackgroundDefrag();
        using (var sysfsLoop = new BackgroundLoop(round =>
               {
                   string w = writes[round % writes.Length];
                   int space = w.IndexOf(' ');
                   if (space < 0) a.Sysfs.Write(dir + w, "1");
                   else a.Sysfs.Write(dir + w[..space], w[(space + 1)..]);
                   a.Sysfs.Read(dir + "slabs_cpu_partial");   // walks every CPU's partial chain under its lock
               }))
        using (var apiLoop = new BackgroundLoop(round =>
               {
                   switch (round % 6)
                   {
                       case 0: cache.DefragmentNode(round / 6 % 2); break;
                       case 1: cache.Shrink(DefragPolicy.EmptyAllCandidates); break;
                       case 2: a.DefragSlabs(-1); break;
                       case 3: a.Sysfs.Write(dir + "cpu_partial", round / 6 % 2 == 0 || cache.IsDebug ? "0" : "30"); break;
                       case 4: a.Sysfs.Write(dir + "min_partial", round / 6 % 2 == 0 ? "5" : "10"); cache.FlushAll(); break;
                       // Validate is thread-safe: while everything else runs it must find nothing either.
                       default: Assert.Empty(cache.Validate()); break;
                   }
               }))
        {
            sysfsLoop.Started.Wait();
            churn.Run(ops: 40_000, moreWanted: () => sysfsLoop.Rounds < 8 * writes.Length || apiLoop.Rounds < 60, startGate: apiLoop.Started);
        }
        bg.Dispose();
        Assert.Null(bg.LastError);

        Assert.Equal(0, churn.Bad);
        Assert.True(cache.Defrag.ObjectsMoved > 0, "no run moved anything");
        long total = churn.VerifyAll();
        Assert.Equal(total, table.Count);
        for (int node = 0; node < 2; node++) Assert.Equal(0, cache.IsolatedSlabs(node));
        cache.FlushAll();
        Assert.Equal(total, cache.GetStatistics().Objects);
        int bucketed = 0;
        Core.PartialListCounterTests.AssertCountersMatchRecount(cache, ref bucketed);
        Assert.Empty(cache.Validate());

        foreach (var live in churn.Live) foreach (long h in live) table.Free(h);
        cache.Shrink();
        var st = cache.GetStatistics();
        Assert.Equal(0, st.Objects);
        Assert.Equal(0, st.Slabs);
        foreach (var arena in a.Pages.Arenas) arena.CheckConsistency();
    }
}
