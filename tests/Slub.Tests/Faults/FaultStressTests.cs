using Xunit.Abstractions;

namespace Slub.Tests.Faults;

/// <summary>
/// The SMO stress workload (threads allocating, freeing and verifying checksummed movable objects while
/// another thread shrinks, defragments and moves) under slab- and page-allocation faults. Allocations that
/// fail are expected and counted; what must never happen is a lost or damaged object, a wrong count, a
/// failed validate, or a cache that no longer works once the faults stop.
/// </summary>
[Collection("smo-stress")]   // the stress classes take turns: two cores, each runs a defragger thread
public class FaultStressTests(ITestOutputHelper output)
{
    public enum Fault { SlabEveryNth, SlabRandom, PageEveryNth, PageRandom, SlabAndPageFiltered }

    private static void Arm(SlabAllocator a, Fault f, KmemCache cache)
    {
        switch (f)
        {
            case Fault.SlabEveryNth: a.Faults.Slab.EveryNth = 3; break;
            case Fault.SlabRandom: a.Faults.Slab.Seed(7); a.Faults.Slab.Probability = 0.4; break;
            case Fault.PageEveryNth: a.Faults.Page.EveryNth = 2; break;
            case Fault.PageRandom: a.Faults.Page.Seed(7); a.Faults.Page.Probability = 0.5; break;
            case Fault.SlabAndPageFiltered:
                // cache-filter through the attribute, both rules at once.
                a.Sysfs.Write($"{cache.Name}/failslab", "1");
                a.Faults.Slab.CacheFilter = a.Faults.Page.CacheFilter = true;
                a.Faults.Slab.EveryNth = 4;
                a.Faults.Page.Probability = 0.3;
                break;
        }
    }

    [Theory]
    [InlineData(Fault.SlabEveryNth, 1, "-")]
    [InlineData(Fault.SlabRandom, 2, "-")]
    [InlineData(Fault.PageEveryNth, 2, "-")]
    [InlineData(Fault.PageRandom, 1, "-")]
    [InlineData(Fault.SlabAndPageFiltered, 2, "-")]
    [InlineData(Fault.SlabEveryNth, 1, "FZU")]
    [InlineData(Fault.PageRandom, 2, "FZPU")]
    public void SmoStressUnderAllocationFaults(Fault fault, int nodes, string debug)
    {
        using var a = TestAllocator.Create(nodes: nodes, cpus: 2, mbPerNode: 64, slubDebug: debug);
        var table = new MovableHandleTable(a, "smo_faults", 72);
        var cache = table.Cache;
        // A bystander cache the filtered rule must leave alone.
        var bystander = a.CreateCache("bystander", 64, flags: SlabFlags.NoMerge);
        Arm(a, fault, cache);

        const int MinRounds = 25;
        int ops = debug == "-" ? 12_000 : 2_500;   // debug caches check every object: slower per operation
        long bad = 0;
        var problems = new List<string>();
        long seen = 0;
        var churn = new HandleTableChurn(table, workers: 2)
        {
            Nodes = nodes, Seed = 100 * (int)fault, SoftCap = 2000, TolerateAllocFailures = true,   // the live set levels off near 2000
            AfterAllocate = () =>
            {
                if (bystander.TryAlloc() is var b and not 0) bystander.Free(b);
                else if (fault == Fault.SlabAndPageFiltered) Interlocked.Increment(ref bad);   // the filter leaked
            },
        };
        int rounds;
        using (var defragger = new BackgroundLoop(r =>
               {
                   switch (r % 5)
                   {
                       case 0: cache.Shrink(); break;
                       case 1: cache.Shrink(DefragPolicy.EmptyAllCandidates); break;   // needs new slabs: migrate's allocations meet the faults
                       case 2: a.DefragSlabs(-1); break;
                       case 3: if (nodes > 1) cache.MoveNode(r % 2, 1 - r % 2); else cache.DefragmentNode(0); break;
                       case 4: if (nodes > 1) cache.Balance(); else cache.Shrink(); break;
                   }
                   cache.DefragUsedRatio = 20 + r % 60;
                   long now = a.Faults.Failures;
                   if (now != seen)
                   {
                       // Validate after every round in which a fault was injected.
                       seen = now;
                       var found = cache.Validate();
                       if (found.Count > 0) lock (problems) problems.AddRange(found);
                       if (debug != "-") a.Sysfs.Write($"{cache.Name}/validate", "1");
                   }
               }))
        {
            // Run at least ops operations, and on until the defragger has done MinRounds rounds (bounded).
            churn.Run(ops, moreWanted: () => defragger.Rounds < MinRounds, startGate: defragger.Started);
            rounds = defragger.Rounds;
        }

        long injected = a.Faults.Failures;
        var d = cache.Defrag;
        output.WriteLine($"{fault} nodes={nodes} debug={debug}: {churn.Operations} operations, {injected} faults injected " +
                         $"(slab {a.Faults.Slab.Failures}/{a.Faults.Slab.Calls}, page {a.Faults.Page.Failures}/{a.Faults.Page.Calls}), " +
                         $"{churn.AllocFailures} allocations failed, {rounds} defrag rounds, moved {d.ObjectsMoved}, busy {d.ObjectsBusy}, skipped {d.ObjectsSkipped}");
        Assert.Equal(0, bad + churn.Bad);
        Assert.Empty(problems);
        Assert.True(rounds >= 1);   // the defragger ran while the workers did (it starts first)
        // The validate attribute reports into the allocator log: nothing there either.
        Assert.DoesNotContain(a.Log.Lines(), l => l.Contains("BUG ") || l.StartsWith("validate "));
        Assert.True(injected > 0, "no fault was injected");
        if (fault is Fault.SlabEveryNth or Fault.SlabRandom)
            Assert.True(churn.AllocFailures > 0 || d.ObjectsBusy > 0, "no injected fault reached an allocation");
        // Page faults are mostly absorbed by the order and node fallbacks; what counts is that nothing broke.
        Assert.Equal(0, d.CallbackFailures);
        for (int n = 0; n < nodes; n++) Assert.Equal(0, cache.IsolatedSlabs(n));

        // Every reference is still valid, every object intact, the counts exact.
        long total = churn.VerifyAll();
        Assert.Equal(total, table.Count);
        cache.FlushAll();
        Assert.Equal(total, cache.CountObjects());
        Assert.Empty(cache.Validate());

        // Faults off: the cache works as before.
        a.Faults.Reset();
        var more = Enumerable.Range(0, 2000).Select(_ => table.Allocate()).ToList();
        foreach (long h in more) using (var s = table.Access(h)) HandleTableChurn.Stamp(s.Bytes, h, 99);
        cache.Shrink();
        foreach (long h in more) using (var s = table.Access(h)) Assert.True(HandleTableChurn.Check(s.Bytes, h, 99));
        cache.FlushAll();
        Assert.Equal(total + more.Count, cache.CountObjects());
        var st = cache.GetStatistics();
        // Slabs made at the fallback order hold fewer objects; allow for them, otherwise shrink reached optimal.
        long slack = cache.Events.OrderFallback > 0 ? st.Slabs / 2 + nodes : nodes;
        Assert.True(st.Slabs <= st.OptimalSlabs + slack, $"{st.Slabs} slabs, optimal {st.OptimalSlabs}");
        Assert.Empty(cache.Validate());
    }
}
