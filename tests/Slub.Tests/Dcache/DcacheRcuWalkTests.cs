using System.Collections.Concurrent;
using Slub.Dcache;

namespace Slub.Tests.Dcache;

/// <summary>
/// The lock-free RCU-walk of cached lookups: deterministic races (a reader paused inside its read section,
/// just before it legitimises the dentry it ended on, or as it steps onto a dentry of a hash chain, while the tree
/// changes) and a stress run of readers against renames, deletes, invalidations, LRU pruning, shrink_dcache_sb and
/// SMO partial shrink. Unhashes and kills during a walk: DcacheRcuWalkUnhashTests.cs.
/// </summary>
public partial class DcacheRcuWalkTests
{
    /// <summary>Where <see cref="PauseReader{T}"/> stops the reader.</summary>
    public enum PausePoint
    {
        /// <summary><see cref="DentryCache.BeforeLegitimizeHook"/>: the walk ended on the dentry and is about to legitimise it.</summary>
        BeforeLegitimize,
        /// <summary><see cref="Slub.Dcache.DentryHashTable.StepHook"/>: the reader has stepped onto the dentry in a hash chain and not yet sampled its d_seq.</summary>
        SteppingOnto,
    }

    /// <summary>
    /// Runs <paramref name="lookup"/> on another thread, pausing it at <paramref name="at"/> the first time that thread
    /// reaches <paramref name="target"/>; runs <paramref name="meanwhile"/> while it is paused and
    /// <paramref name="inHook"/> on the reader just before it goes on. Returns the lookup's answer.
    /// </summary>
    private static T PauseReader<T>(DentryCache dc, PausePoint at, nint target, Func<T> lookup, Action meanwhile, Action? inHook = null)
    {
        using var reached = new ManualResetEventSlim();
        using var go = new ManualResetEventSlim();
        int fired = 0, readerId = 0;
        Action<nint> hook = p =>
        {
            if (p != target || Environment.CurrentManagedThreadId != Volatile.Read(ref readerId) || Interlocked.Exchange(ref fired, 1) != 0) return;
            reached.Set();
            go.Wait();
            inHook?.Invoke();
        };
        if (at == PausePoint.BeforeLegitimize) dc.BeforeLegitimizeHook = hook;
        else dc.HashTable.StepHook = hook;
        T answer = default!;
        Exception? failure = null;
        var reader = new GuardedThread(() =>
        {
            Volatile.Write(ref readerId, Environment.CurrentManagedThreadId);
            try { answer = lookup(); }
            catch (Exception e) { failure = e; }
        });
        reader.Start();
        Assert.True(reached.Wait(TimeSpan.FromMinutes(1)), "the reader never reached the dentry");
        try { meanwhile(); }
        finally
        {
            go.Set();
            reader.Join();
            dc.BeforeLegitimizeHook = null;
            dc.HashTable.StepHook = null;
        }
        if (failure is not null) throw new Xunit.Sdk.XunitException($"reader failed: {failure}");
        return answer;
    }

    private static T PauseReaderAt<T>(DentryCache dc, nint target, Func<T> lookup, Action meanwhile, Action? inHook = null) =>
        PauseReader(dc, PausePoint.BeforeLegitimize, target, lookup, meanwhile, inHook);

    private static nint AddressOf(DentryCache dc, string path)
    {
        var d = dc.Resolve(path, out _);
        dc.Put(d);
        return d.Address;
    }

    [Fact]
    public unsafe void AReaderInsideALookupNeverSeesItsDentryFreed()
    {
        // Poisoning on: a dentry given back to the slab would be overwritten with POISON_FREE at once.
        using var a = TestAllocator.Create(slubDebug: "FZP");
        var tree = new SyntheticTree(2, 4);
        using var dc = tree.CreateCache(a);
        Assert.Equal(InodeKind.File, dc.LookupPath("d0/f1").Kind);
        var dir = dc.Resolve("d0", out _);   // keeps d0 cached whatever ShrinkAll does: the fallback asks only for f1
        nint target = AddressOf(dc, "d0/f1");
        nint sb = dc.Root.D->Sb;
        long retriesBefore = dc.RcuWalkRetries, freedBefore = dc.Rcu.FreedCount;
        int shrinkDone = 0;
        GuardedThread? shrinker = null;
        var seen = new ConcurrentQueue<string>();
        var answer = PauseReaderAt(dc, target, () => dc.LookupPath("d0/f1"),
            meanwhile: () =>
            {
                // Killed while the reader stands on it: unhashed, dead, retired — not freed.
                dc.Invalidate("d0/f1");
                Assert.True((new Dentry(target).Flags & DentryFlags.Killed) != 0);
                // A grace period cannot end while the reader is inside its section: ShrinkAll waits for it.
                shrinker = new GuardedThread(() => { dc.ShrinkAll(); Volatile.Write(ref shrinkDone, 1); });
                shrinker.Start();
                Thread.Sleep(50);   // a chance to reach the wait (no timing is asserted)
            },
            inHook: () =>
            {
                var d = (DentryData*)target;
                seen.Enqueue($"sb={(d->Sb == sb)} count={d->Count} length={d->Length} name={DentryName.ToString(d)} shrinkDone={Volatile.Read(ref shrinkDone)}");
            });
        shrinker!.Join();
        Assert.Equal("sb=True count=-128 length=2 name=f1 shrinkDone=0", Assert.Single(seen));
        // Legitimising failed (the dentry died), so the walk fell back and asked the disk again.
        Assert.Equal(InodeKind.File, answer.Kind);
        Assert.NotEqual(0UL, answer.Inode);
        Assert.Equal(1, answer.FileSystemQueries);
        Assert.Equal(retriesBefore + 1, dc.RcuWalkRetries);
        Assert.True(dc.Rcu.FreedCount > freedBefore);   // freed after the reader left
        Assert.Equal(0, dc.Rcu.PendingCount);
        dc.Put(dir);
    }

    [Fact]
    public void ARenameOfTheLastDentryDuringTheWalkIsCaught()
    {
        using var a = TestAllocator.Create();
        var tree = new SyntheticTree(2, 4);
        using var dc = tree.CreateCache(a);
        Assert.Equal(InodeKind.File, dc.LookupPath("d0/f1").Kind);
        nint target = AddressOf(dc, "d0/f1");
        var answer = PauseReaderAt(dc, target, () => dc.LookupPath("d0/f1"), meanwhile: () =>
        {
            tree.Set("d0/g1", InodeKind.File);
            tree.Set("d0/f1", InodeKind.Negative);
            dc.NotifyRenamed("d0/f1", "d0/g1");   // d_move: the same dentry, now named g1
        });
        Assert.Equal(InodeKind.Negative, answer.Kind);   // not the dentry that is now g1
        Assert.Equal(1, dc.RcuWalkRetries);
        Assert.Equal(target, AddressOf(dc, "d0/g1"));
    }

    [Fact]
    public void ARenameOfADirectoryOnThePathIsCaught()
    {
        // The last dentry itself does not change (its d_seq stays): only the rename sequence tells.
        using var a = TestAllocator.Create();
        var tree = new SyntheticTree(2, 4);
        using var dc = tree.CreateCache(a);
        Assert.Equal(InodeKind.File, dc.LookupPath("d0/f1").Kind);
        nint target = AddressOf(dc, "d0/f1");
        var answer = PauseReaderAt(dc, target, () => dc.LookupPath("d0/f1"), meanwhile: () =>
        {
            tree.Set("e0", InodeKind.Directory);
            for (int f = 0; f < 4; f++) { tree.Set($"e0/f{f}", InodeKind.File); tree.Set($"d0/f{f}", InodeKind.Negative); }
            tree.Set("d0", InodeKind.Negative);
            dc.NotifyRenamed("d0", "e0");
        });
        Assert.Equal(InodeKind.Negative, answer.Kind);
        Assert.Equal(1, dc.RcuWalkRetries);
        Assert.Equal(target, AddressOf(dc, "e0/f1"));   // moved with its directory
    }

    [Fact]
    public void AResolveRacingWithADeleteInPlaceIsValidated()
    {
        using var a = TestAllocator.Create();
        var tree = new SyntheticTree(2, 4);
        using var dc = tree.CreateCache(a);
        Assert.Equal(InodeKind.File, dc.LookupPath("d0/f2").Kind);
        nint target = AddressOf(dc, "d0/f2");
        LookupResult result = default;
        var held = PauseReaderAt(dc, target, () => dc.Resolve("d0/f2", out result), meanwhile: () =>
        {
            tree.Set("d0/f2", InodeKind.Negative);
            dc.NotifyDeleted("d0/f2");   // nobody holds it: negative in place (its d_seq moves)
        });
        try
        {
            Assert.Equal(InodeKind.Negative, result.Kind);
            Assert.Equal(1, held.Count);
            Assert.True(held.IsNegative);
            Assert.Equal(1, dc.RcuWalkRetries);
        }
        finally { dc.Put(held); }
        dc.ShrinkAll();
        Assert.Equal(1, dc.Count);
    }

    [Fact]
    public void CachedWalksCountLookupsAndHitsPerComponentAndMarkTheAnswerReferenced()
    {
        using var a = TestAllocator.Create();
        var tree = new SyntheticTree(3, 5);
        using var dc = tree.CreateCache(a);
        foreach (var f in tree.Files) dc.LookupPath(f);
        dc.LookupPath("d1/none");
        var before = dc.GetStatistics();
        Assert.Equal(InodeKind.File, dc.LookupPath("d2/f4").Kind);            // 2 components
        Assert.Equal(InodeKind.Negative, dc.LookupPath("d1/none").Kind);      // 2, negative
        Assert.Equal(InodeKind.Negative, dc.LookupPath("d0/f0/below").Kind);  // 2: stops under a file
        Assert.True(dc.IsCached("d0//f3/"));                                  // a peek: counts nothing
        var r = dc.Resolve(tree.Root + "/d1/f1", out var rr);                 // 2, with a reference
        Assert.Equal(1, r.Count);
        Assert.Equal(InodeKind.File, rr.Kind);
        dc.Put(r);
        var after = dc.GetStatistics();
        Assert.Equal(8, after.Lookups - before.Lookups);
        Assert.Equal(8, after.Hits - before.Hits);
        Assert.Equal(before.Misses, after.Misses);
        Assert.Equal(0, dc.RcuWalkRetries);
        var d24 = dc.Resolve("d2/f4", out _);
        Assert.True((d24.Flags & DentryFlags.Referenced) != 0);   // the lookup marked it, as a get/put pair would
        dc.Put(d24);
    }

    [Fact]
    public void RcuWalkFallbacksCountsEveryWalkThatDidNotAnswerAndNoOther()
    {
        using var a = TestAllocator.Create();
        var tree = new SyntheticTree(2, 4);
        using var dc = tree.CreateCache(a);
        long Fallbacks() => dc.GetStatistics().RcuWalkFallbacks;
        Assert.Equal(0, Fallbacks());
        dc.LookupPath("d0/f1");                     // cold: the walk misses at d0 and falls back
        Assert.Equal(1, Fallbacks());
        Assert.False(dc.IsCached("d1/f0"));         // a peek falls back too, but counts nothing (as it counts no lookups)
        Assert.Equal(1, Fallbacks());
        Assert.False(dc.Exists("d1/f9"));            // cold again (d1): counted
        Assert.Equal(2, Fallbacks());
        for (int i = 0; i < 3; i++) dc.LookupPath("d0/f1");   // answered lock-free: nothing counted
        Assert.True(dc.IsCached("d0/f1"));
        dc.Put(dc.Resolve("d0/f1", out _));
        Assert.Equal(2, Fallbacks());
        Assert.Equal(0, dc.RcuWalkRetries);         // misses are not validation failures
        // A failed validation is a fallback as well.
        nint target = AddressOf(dc, "d0/f1");
        PauseReaderAt(dc, target, () => dc.LookupPath("d0/f1"), meanwhile: () => dc.Invalidate("d0/f1"));
        Assert.Equal(1, dc.RcuWalkRetries);
        Assert.Equal(3, Fallbacks());
    }

    [Fact]
    public void SmoShrinkFreesSlabsWhoseDentriesStillWaitForAGracePeriod()
    {
        // Half of every slab freed (Prune waits for its grace period), the other half killed one dentry at a
        // time and only retired: partial slabs holding nothing but dead dentries whose frees wait. Partial shrink
        // must wait for them within the same run, or it cannot free those slabs.
        using var a = TestAllocator.Create();
        var tree = new SyntheticTree(1, 120);
        using var dc = tree.CreateCache(a);
        foreach (var f in tree.Files) dc.LookupPath(f);
        for (int i = 1; i < tree.Files.Count; i += 2) dc.LookupPath(tree.Files[i]);   // referenced: survive the prune
        dc.Prune(dc.GetStatistics().Unused);
        Assert.Equal(62, dc.Count);                                                   // root, d0, 60 odd files
        long retired = dc.Rcu.RetiredCount;
        for (int i = 1; i < tree.Files.Count; i += 2) dc.Invalidate(tree.Files[i]);  // each killed at its dput
        Assert.Equal(2, dc.Count);
        Assert.Equal(retired + 60, dc.Rcu.RetiredCount);
        Assert.Equal(60, dc.Rcu.PendingCount);                                        // fewer than a pass needs
        dc.Cache.FlushAll();
        long slabsBefore = dc.GetStatistics().Slabs;
        Assert.True(slabsBefore >= 6, $"{slabsBefore} slabs");
        dc.Cache.Shrink(DefragPolicy.EmptyAllCandidates);
        Assert.True(dc.GetStatistics().Slabs <= 2, $"{slabsBefore} -> {dc.GetStatistics().Slabs} slabs");
        Assert.Equal(0, dc.Rcu.PendingCount);
        foreach (var f in tree.Files.Take(10)) Assert.Equal(InodeKind.File, dc.LookupPath(f).Kind);
    }

    [Theory]
    [InlineData("-", PartialShrinkMode.WholeSlabsOnly)]
    [InlineData("FZP", PartialShrinkMode.EvictAllUnused)]
    public void CachedLookupsStayRightWhileTheTreeChangesUnderThem(string slubDebug, PartialShrinkMode mode)
    {
        using var a = TestAllocator.Create(slubDebug: slubDebug);
        var tree = new SyntheticTree(8, 30);
        string longA = "d6/" + new string('a', 50), longB = "d6/" + new string('b', 60);   // external names
        tree.Set("d4/ra", InodeKind.File);
        tree.Set(longA, InodeKind.File);
        tree.Set("d7/t", InodeKind.File);
        // Sixteen buckets: long chains shared by every directory, and renames move dentries between them.
        using (var dc = new DentryCache(tree.Root, a, new DentryCacheOptions { Probe = tree.Probe, HashBits = 4, PartialShrink = mode }))
        {
            var stable = tree.Files.Where(f => f[1] < '4').ToArray();   // d0..d3: never renamed or deleted
            string[] fileOrMissing = ["d4/ra", "d4/rb", longA, longB, "d7/t", "d5/f3", "d5x/f3", "d5x/f29"];
            string[] dirOrMissing = ["d5", "d5x"];
            var failures = new ConcurrentQueue<string>();
            int stop = 0;
            void Check(string p, LookupResult r, bool ok)
            {
                if (!ok || r.Exists != (r.Inode != 0)) failures.Enqueue($"{p}: {r}");
            }
            var readers = Enumerable.Range(0, 3).Select(t => new GuardedThread(() =>
            {
                var rng = new Random(t);
                try
                {
                    while (Volatile.Read(ref stop) == 0)
                    {
                        string s = stable[rng.Next(stable.Length)];
                        var rs0 = dc.LookupPath(s);
                        Check(s, rs0, rs0.Kind == InodeKind.File);
                        string f = fileOrMissing[rng.Next(fileOrMissing.Length)];
                        var rf = dc.LookupPath(f);
                        Check(f, rf, rf.Kind is InodeKind.File or InodeKind.Negative);
                        string d = dirOrMissing[rng.Next(dirOrMissing.Length)];
                        var rd = dc.LookupPath(d);
                        Check(d, rd, rd.Kind is InodeKind.Directory or InodeKind.Negative);
                        if (rng.Next(4) == 0)
                        {
                            var held = dc.Resolve(tree.Root + "/" + s, out var rs);
                            Check(s, rs, rs.Kind == InodeKind.File && held.Count > 0 && held.Name == s[(s.IndexOf('/') + 1)..]);
                            dc.Put(held);
                        }
                        if (rng.Next(4) == 0) dc.IsCached(f);
                    }
                }
                catch (Exception e) { failures.Enqueue(e.ToString()); }
            })).ToList();
            readers.ForEach(t => t.Start());
            var rng = new Random(7);
            bool fileAtA = true, longAtA = true, dirAtD5 = true, toggled = true;
            // Run until the readers were caught by a concurrent change a few times (bounded: on a loaded machine
            // the readers may get little time; one catch is required).
            for (int i = 0; i < 1500 || dc.RcuWalkRetries < 20 && i < 20_000; i++)
            {
                switch (i % 9)
                {
                    case 0:
                        tree.Set(fileAtA ? "d4/rb" : "d4/ra", InodeKind.File);
                        tree.Set(fileAtA ? "d4/ra" : "d4/rb", InodeKind.Negative);
                        dc.NotifyRenamed(fileAtA ? "d4/ra" : "d4/rb", fileAtA ? "d4/rb" : "d4/ra");
                        fileAtA = !fileAtA;
                        break;
                    case 1:
                        tree.Set(longAtA ? longB : longA, InodeKind.File);
                        tree.Set(longAtA ? longA : longB, InodeKind.Negative);
                        dc.NotifyRenamed(longAtA ? longA : longB, longAtA ? longB : longA);
                        longAtA = !longAtA;
                        break;
                    case 2:
                        RenameDir(tree, dirAtD5 ? "d5" : "d5x", dirAtD5 ? "d5x" : "d5");
                        dc.NotifyRenamed(dirAtD5 ? "d5" : "d5x", dirAtD5 ? "d5x" : "d5");
                        dirAtD5 = !dirAtD5;
                        break;
                    case 3:
                        tree.Set("d7/t", toggled ? InodeKind.Negative : InodeKind.File);
                        if (toggled) dc.NotifyDeleted("d7/t"); else dc.NotifyCreated("d7/t");
                        toggled = !toggled;
                        break;
                    case 4: dc.Invalidate(stable[rng.Next(stable.Length)]); break;
                    case 5: dc.Prune(rng.Next(1, 200)); break;
                    case 6: if (i % 45 == 6) dc.ShrinkAll(); else dc.Invalidate(rng.Next(2) == 0 ? "d1" : "d2/f7"); break;
                    case 7: dc.Cache.Shrink(); break;
                    case 8: dc.Cache.Shrink(DefragPolicy.EmptyAllCandidates); break;
                }
            }
            Volatile.Write(ref stop, 1);
            readers.ForEach(t => t.Join());
            Assert.True(failures.IsEmpty, string.Join("\n", failures.Take(10)));
            Assert.True(dc.RcuWalkRetries > 0, "no walk was caught by a change");
            Assert.True(dc.Cache.Defrag.Runs > 0);
            // Quiet now: every answer agrees with the disk, and everything but the root can be reclaimed. A lookup
            // under the renamed directory between the disk's rename and the notification learned the new disk's
            // answer under the old name, and d_move carried it along (docs/dcache.md, "Coherence"): re-sync those
            // two directories first, as a watcher that lost events would.
            dc.Invalidate("d5");
            dc.Invalidate("d5x");
            foreach (var p in stable.Concat(fileOrMissing).Concat(dirOrMissing))
                Assert.True(tree.Expected(p) == dc.LookupPath(p).Kind, $"{p}: disk {tree.Expected(p)}, cache {dc.LookupPath(p).Kind}");
            dc.ShrinkAll();
            Assert.Equal(1, dc.Count);
            var st = dc.GetStatistics();
            Assert.Equal(0, st.Negative);
            Assert.Equal(0, st.Unused);
            Assert.Equal(0, dc.Rcu.PendingCount);
            Assert.Equal(dc.Rcu.RetiredCount, dc.Rcu.FreedCount);   // every retired dentry and name was freed
            Assert.True(dc.Rcu.RetiredCount > 0);
        }
        foreach (var c in a.Caches) Assert.DoesNotContain("dentry", c.Name);   // Dispose destroyed the slab cache
    }

    private static void RenameDir(SyntheticTree tree, string from, string to)
    {
        tree.Set(to, InodeKind.Directory);
        for (int f = 0; f < 30; f++) tree.Set($"{to}/f{f}", InodeKind.File);
        for (int f = 0; f < 30; f++) tree.Set($"{from}/f{f}", InodeKind.Negative);
        tree.Set(from, InodeKind.Negative);
    }
}
