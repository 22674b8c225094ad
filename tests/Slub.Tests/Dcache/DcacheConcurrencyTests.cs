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
            int shrinking = 0;
            var lookers = Enumerable.Range(0, 3).Select(t => new GuardedThread(() =>
            {
                // Start once the shrinker runs: on a loaded machine it might otherwise get its first time slice
                // only after the lookups are over, and nothing would race.
                while (Volatile.Read(ref shrinking) == 0) Thread.Yield();
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
            var shrinker = new GuardedThread(() =>
            {
                var rng = new Random(42);
                Volatile.Write(ref shrinking, 1);
                for (int i = 0; i < 10 || Volatile.Read(ref done) < lookers.Count; i++)
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

    [Fact]
    public void NotificationsRacingWithLookupsLeaveNoStaleAnswer()
    {
        using var a = TestAllocator.Create();
        var tree = new SyntheticTree(4, 10);
        using var dc = tree.CreateCache(a);
        string[] toggled = ["d0/t", "d1/t", "d2/new/deeper"];
        int stop = 0;
        var lookers = Enumerable.Range(0, 2).Select(t => new GuardedThread(() =>
        {
            var rng = new Random(t);
            while (Volatile.Read(ref stop) == 0)
            {
                dc.LookupPath(toggled[rng.Next(toggled.Length)]);
                dc.LookupPath(tree.Files[rng.Next(tree.Files.Count)]);
            }
        })).ToList();
        lookers.ForEach(t => t.Start());
        var rng = new Random(9);
        for (int i = 0; i < 3000; i++)
        {
            string p = toggled[rng.Next(toggled.Length)];
            bool create = rng.Next(2) == 0;
            // Change the "disk" first, then tell the cache, as a file-system watcher would.
            if (p == "d2/new/deeper")
            {
                tree.Set("d2/new", create ? InodeKind.Directory : InodeKind.Negative);
                tree.Set(p, create ? InodeKind.File : InodeKind.Negative);
                if (create) dc.NotifyCreated(p); else dc.Invalidate("d2/new");
            }
            else
            {
                tree.Set(p, create ? InodeKind.File : InodeKind.Negative);
                if (create) dc.NotifyCreated(p); else dc.NotifyDeleted(p);
            }
            if (i % 500 == 0) dc.Cache.Shrink();
        }
        Volatile.Write(ref stop, 1);
        lookers.ForEach(t => t.Join());
        foreach (var p in toggled.Append("d2/new")) Assert.Equal(tree.Expected(p), dc.LookupPath(p).Kind);
        foreach (var f in tree.Files) Assert.Equal(InodeKind.File, dc.LookupPath(f).Kind);
    }

    [Fact]
    public void AChangeBetweenTheDiskAnswerAndItsCachingIsNotCached()
    {
        // Deterministic version of the race: the "disk" changes (and the cache is told) after the probe has
        // answered but before the lookup caches the answer. lookup_slow must notice and ask again.
        using var a = TestAllocator.Create();
        var tree = new SyntheticTree(1, 0);
        DentryCache? dc = null;
        int interfered = 0;
        InodeKind Probe(string full)
        {
            var answer = tree.Probe(full);
            if (full.EndsWith("/d0/late", StringComparison.Ordinal) && Interlocked.Exchange(ref interfered, 1) == 0)
            {
                tree.Set("d0/late", InodeKind.File);   // created right after we looked...
                dc!.NotifyCreated("d0/late");           // ...and the watcher tells the cache (nothing cached yet)
            }
            return answer;                              // the stale "does not exist"
        }
        using (dc = new DentryCache(tree.Root, a, new DentryCacheOptions { Probe = Probe, HashBits = 8 }))
        {
            var first = dc.LookupPath("d0/late");
            Assert.Equal(InodeKind.File, first.Kind);   // asked again after the generation moved
            Assert.Equal(2, first.FileSystemQueries);   // two components missed...
            Assert.Equal(3, tree.Probes);               // ...and the second was asked twice
            Assert.Equal(InodeKind.File, dc.LookupPath("d0/late").Kind);
            Assert.True(dc.IsCached("d0/late"));
        }
    }

    [Fact]
    public void ADirectoryRenamedWhileAChildIsProbedDoesNotCacheItsOldAnswerUnderTheNewName()
    {
        // The walk holds d0 and asks the disk about d0/f3; meanwhile d0 becomes e0 (disk, then d_move). The
        // generation moved, so lookup_slow asks again — it must ask about e0/f3, where the dentry now is, not
        // about the old path string (which says "missing" and would be cached as e0/f3).
        using var a = TestAllocator.Create();
        var tree = new SyntheticTree(1, 4);
        DentryCache? dc = null;
        int interfered = 0;
        var asked = new List<string>();
        InodeKind Probe(string full)
        {
            var answer = tree.Probe(full);
            lock (asked) asked.Add(full[(tree.Root.Length + 1)..]);
            if (full.EndsWith("/d0/f3", StringComparison.Ordinal) && Interlocked.Exchange(ref interfered, 1) == 0)
            {
                tree.Set("e0", InodeKind.Directory);
                for (int f = 0; f < 4; f++) { tree.Set($"e0/f{f}", InodeKind.File); tree.Set($"d0/f{f}", InodeKind.Negative); }
                tree.Set("d0", InodeKind.Negative);
                dc!.NotifyRenamed("d0", "e0");
            }
            return answer;
        }
        using (dc = new DentryCache(tree.Root, a, new DentryCacheOptions { Probe = Probe, HashBits = 8 }))
        {
            Assert.Equal(InodeKind.Directory, dc.LookupPath("d0").Kind);
            Assert.Equal(InodeKind.File, dc.LookupPath("d0/f3").Kind);   // the walk had d0: its child, wherever it is now
            Assert.Equal(["d0", "d0/f3", "e0/f3"], asked);
            Assert.Equal(InodeKind.File, dc.LookupPath("e0/f3").Kind);
            Assert.Equal(InodeKind.Negative, dc.LookupPath("d0/f3").Kind);
        }
    }
}
