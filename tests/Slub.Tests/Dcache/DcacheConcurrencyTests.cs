using Slub.Dcache;

namespace Slub.Tests.Dcache;

public class DcacheConcurrencyTests
{
    [Fact]
    public void LookupsStayCorrectWhileLruShrinkAndSlabShrinkRun()
    {
        using var a = TestAllocator.Create();
        var tree = new SyntheticTree(16, 120);
        var paths = tree.Files.Concat(tree.Dirs).Concat(tree.Dirs.Select(d => d + "/missing")).Concat(["nope", "nope/x"]).ToArray();
        foreach (var mode in new[] { PartialShrinkMode.EvictAllUnused, PartialShrinkMode.WholeSlabsOnly })
        {
            using var dc = tree.CreateCache(a, mode);
            int lookupsPerThread = 30_000, errors = 0, done = 0;
            var failures = new System.Collections.Concurrent.ConcurrentQueue<string>();
            var lookers = Enumerable.Range(0, 3).Select(t => new Thread(() =>
            {
                var rng = new Random(t);
                var held = new Queue<Dentry>();
                for (int i = 0; i < lookupsPerThread; i++)
                {
                    string p = paths[rng.Next(paths.Length)];
                    LookupResult r;
                    if (i % 7 == 0)
                    {
                        // Hold a few references for a while, as open files do.
                        held.Enqueue(dc.Resolve(p, out r));
                        if (held.Count > 8) dc.Put(held.Dequeue());
                    }
                    else r = dc.LookupPath(p);
                    if (r.Kind != tree.Expected(p))
                    {
                        Interlocked.Increment(ref errors);
                        failures.Enqueue($"{p}: {r.Kind}");
                    }
                }
                while (held.Count > 0) dc.Put(held.Dequeue());
                Interlocked.Increment(ref done);
            })).ToList();
            var shrinker = new Thread(() =>
            {
                var rng = new Random(42);
                for (int i = 0; Volatile.Read(ref done) < lookers.Count; i++)
                {
                    dc.Prune(rng.Next(1, 400));
                    if (i % 20 == 0) dc.ShrinkAll();
                    if (i % 5 == 0) dc.Cache.Shrink();
                    else dc.Cache.Shrink(DefragPolicy.EmptyAllCandidates);
                    Thread.Yield();
                }
            });
            lookers.ForEach(t => t.Start());
            shrinker.Start();
            lookers.ForEach(t => t.Join());
            shrinker.Join();
            Assert.True(errors == 0, string.Join("; ", failures.Take(10)));
            Assert.True(dc.Cache.Defrag.Runs > 0);
            if (mode == PartialShrinkMode.EvictAllUnused) Assert.True(dc.Cache.Defrag.ObjectsFreed > 0, "partial shrink freed nothing during the run");
            // Every reference was given back: everything but the root can be reclaimed.
            dc.ShrinkAll();
            Assert.Equal(1, dc.Count);
            Assert.Equal(0, dc.GetStatistics().Negative);
            foreach (var p in paths) Assert.Equal(tree.Expected(p), dc.LookupPath(p).Kind);
        }
        foreach (var c in a.Caches) Assert.DoesNotContain("dentry", c.Name);   // both caches destroyed by Dispose
    }
}
