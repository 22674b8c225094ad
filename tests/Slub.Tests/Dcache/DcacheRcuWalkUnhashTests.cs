using System.Text;
using Slub.Dcache;

namespace Slub.Tests.Dcache;

/// <summary>
/// Unhashes and kills during a lock-free walk. An unhash (drop, delete, kill — by invalidation, the LRU, shrinking or
/// SMO partial shrink) invalidates only the dying dentry's own d_seq; only a rename enters the cache-wide rename
/// sequence. Each test pauses a reader at the step where one case of docs/dcache.md ("Unhash and kill during a
/// walk") arises and checks its answer and whether it fell back.
/// </summary>
public partial class DcacheRcuWalkTests
{
    private static long Fallbacks(DentryCache dc) => dc.GetStatistics().RcuWalkFallbacks;

    private static unsafe uint BucketOf(DentryCache dc, nint parent, string name) =>
        DentryName.Hash(parent, Encoding.UTF8.GetBytes(name)) >> (32 - System.Numerics.BitOperations.Log2((uint)dc.HashTable.BucketCount));

    private static unsafe uint BucketOf(DentryCache dc, nint dentry) =>
        ((DentryData*)dentry)->Hash >> (32 - System.Numerics.BitOperations.Log2((uint)dc.HashTable.BucketCount));

    /// <summary>
    /// A cache with 16 buckets (long chains) where d0/<c>t</c> (the target, a file) and d1/<c>x</c> (another file)
    /// share a chain, x ahead of t (x was cached later: dentries are hashed at the head), and d0's own chain is a
    /// different one, so a reader walking "d0/t" steps onto x only while it looks up t.
    /// </summary>
    private static (DentryCache Dc, string T, string X) ChainWithXAheadOfT(SlabAllocator a, SyntheticTree tree)
    {
        var dc = new DentryCache(tree.Root, a, new DentryCacheOptions { Probe = tree.Probe, HashBits = 4 });
        nint d0 = AddressOf(dc, "d0"), d1 = AddressOf(dc, "d1");
        string t = Enumerable.Range(0, 1000).Select(i => $"t{i}").First(n => BucketOf(dc, d0, n) != BucketOf(dc, d0));
        string x = Enumerable.Range(0, 1000).Select(i => $"x{i}").First(n => BucketOf(dc, d1, n) == BucketOf(dc, d0, t));
        tree.Set("d0/" + t, InodeKind.File);
        tree.Set("d1/" + x, InodeKind.File);
        Assert.Equal(InodeKind.File, dc.LookupPath("d0/" + t).Kind);
        Assert.Equal(InodeKind.File, dc.LookupPath("d1/" + x).Kind);
        return (dc, "d0/" + t, "d1/" + x);
    }

    [Fact]
    public void UnhashesAndKillsElsewhereDoNotSendAWalkerBackButARenameDoes()
    {
        using var a = TestAllocator.Create();
        var tree = new SyntheticTree(3, 4);
        using var dc = tree.CreateCache(a);
        foreach (var f in tree.Files) dc.LookupPath(f);
        nint target = AddressOf(dc, "d0/f1");
        ulong inode = new Dentry(target).Inode;
        long fallbacks = Fallbacks(dc), retries = dc.RcuWalkRetries, count = dc.Count;
        var answer = PauseReaderAt(dc, target, () => dc.LookupPath("d0/f1"), meanwhile: () =>
        {
            // None of these waits for a grace period (the reader is inside its read section): leaves only.
            dc.Invalidate("d1/f2");                        // d_drop, killed at its dput
            var held = dc.Resolve("d2/f0", out _);
            dc.Drop(held);                                 // d_drop of a held dentry, killed at the dput below
            dc.Put(held);
            tree.Set("d2/f3", InodeKind.Negative);
            var shared = dc.Resolve("d2/f3", out _);
            dc.NotifyDeleted("d2/f3");                     // d_delete of a shared dentry: unhashed, not negative in place
            dc.Put(shared);
            Assert.Equal(count - 3, dc.Count);
        });
        Assert.Equal(new LookupResult(InodeKind.File, inode, 0), answer);
        Assert.Equal(fallbacks, Fallbacks(dc));            // answered lock-free, with three dentries dying meanwhile
        Assert.Equal(retries, dc.RcuWalkRetries);

        // A rename anywhere still sends every walker that overlaps it back (the cache-wide rename sequence).
        tree.Set("d1/g0", InodeKind.File);
        tree.Set("d1/f0", InodeKind.Negative);
        answer = PauseReaderAt(dc, target, () => dc.LookupPath("d0/f1"), meanwhile: () => dc.NotifyRenamed("d1/f0", "d1/g0"));
        Assert.Equal(new LookupResult(InodeKind.File, inode, 0), answer);   // the locked walk found the same dentry
        Assert.Equal(fallbacks + 1, Fallbacks(dc));
        Assert.Equal(retries + 1, dc.RcuWalkRetries);
    }

    [Theory]
    [InlineData("invalidate")]
    [InlineData("delete")]
    public void AWalkerAboutToLegitimiseADentryUnhashedMeanwhileFallsBack(string how)
    {
        // The dentry stays alive (the test holds it), so only its d_seq tells the walker: the unhash invalidated it.
        using var a = TestAllocator.Create();
        var tree = new SyntheticTree(2, 4);
        using var dc = tree.CreateCache(a);
        var held = dc.Resolve("d0/f1", out var before);
        long fallbacks = Fallbacks(dc), retries = dc.RcuWalkRetries;
        var answer = PauseReaderAt(dc, held.Address, () => dc.LookupPath("d0/f1"), meanwhile: () =>
        {
            if (how == "invalidate")
            {
                tree.Set("d0/f1", InodeKind.Directory);   // replaced on disk by a directory
                dc.Invalidate("d0/f1");
            }
            else
            {
                tree.Set("d0/f1", InodeKind.Negative);
                dc.NotifyDeleted("d0/f1");                // held by us too: unhashed, not negative in place
            }
            Assert.False(held.IsHashed);
            Assert.Equal(InodeKind.File, held.Kind);      // a walker that took this dentry would answer File
        });
        Assert.Equal(how == "invalidate" ? InodeKind.Directory : InodeKind.Negative, answer.Kind);
        Assert.Equal(1, answer.FileSystemQueries);
        Assert.NotEqual(before.Inode, answer.Inode);
        Assert.Equal(fallbacks + 1, Fallbacks(dc));
        Assert.Equal(retries + 1, dc.RcuWalkRetries);     // a failed validation
        dc.Put(held);                                     // unhashed: killed now
        Assert.True((held.Flags & DentryFlags.Killed) != 0);
    }

    [Fact]
    public void AWalkerSteppingOntoADentryUnhashedBeforeItLooksSkipsIt()
    {
        // The reader holds a pointer to the dentry from the chain, but samples its d_seq only after the unhash ended:
        // the sample validates, so the dentry must be read as unhashed and skipped (__d_lookup_rcu's d_unhashed).
        using var a = TestAllocator.Create();
        var tree = new SyntheticTree(2, 4);
        using var dc = tree.CreateCache(a);
        var held = dc.Resolve("d0/f1", out var before);
        long fallbacks = Fallbacks(dc), retries = dc.RcuWalkRetries;
        var answer = PauseReader(dc, PausePoint.SteppingOnto, held.Address, () => dc.LookupPath("d0/f1"), meanwhile: () =>
        {
            tree.Set("d0/f1", InodeKind.Directory);
            dc.Invalidate("d0/f1");
            Assert.False(held.IsHashed);
        });
        Assert.Equal(InodeKind.Directory, answer.Kind);
        Assert.Equal(1, answer.FileSystemQueries);
        Assert.NotEqual(before.Inode, answer.Inode);
        Assert.Equal(fallbacks + 1, Fallbacks(dc));
        Assert.Equal(retries, dc.RcuWalkRetries);         // a miss, not a failed validation
        dc.Put(held);
    }

    [Fact]
    public void ADirectoryOnThePathUnhashedWhileItsChildIsLookedUpSendsTheWalkerBack()
    {
        // The reader found d0 and is stepping onto f1 in d0's child's chain when d0 is dropped (held by the test, so
        // alive, and f1 stays hashed under it). The parent's d_seq check after the child's lookup
        // (read_seqcount_retry) catches it: each step is exact, as in the kernel. A parent unhashed after that check
        // is not noticed — as a walk holding references would not notice it.
        using var a = TestAllocator.Create();
        var tree = new SyntheticTree(2, 4);
        using var dc = tree.CreateCache(a);
        var dir = dc.Resolve("d0", out _);
        nint target = AddressOf(dc, "d0/f1");
        ulong inode = new Dentry(target).Inode;
        long fallbacks = Fallbacks(dc), retries = dc.RcuWalkRetries, probes = tree.Probes;
        var answer = PauseReader(dc, PausePoint.SteppingOnto, target, () => dc.LookupPath("d0/f1"), meanwhile: () =>
        {
            dc.Drop(dir);
            Assert.False(dir.IsHashed);
            Assert.True(new Dentry(target).IsHashed);
        });
        Assert.Equal(InodeKind.File, answer.Kind);
        Assert.Equal(2, answer.FileSystemQueries);        // d0 and f1 asked again, under a new d0
        Assert.NotEqual(inode, answer.Inode);
        Assert.Equal(probes + 2, tree.Probes);
        Assert.Equal(fallbacks + 1, Fallbacks(dc));
        Assert.Equal(retries + 1, dc.RcuWalkRetries);
        dc.Put(dir);
    }

    [Fact]
    public unsafe void AWalkerPassingOverADyingDentryInItsChainGoesOnToTheOneItWants()
    {
        // Poisoning on: the dying dentry's memory must still be a dentry (with its next pointer) when the reader
        // leaves it, because its free waits for the reader's read section.
        using var a = TestAllocator.Create(slubDebug: "FZP");
        var tree = new SyntheticTree(2, 4);
        var (dc, t, x) = ChainWithXAheadOfT(a, tree);
        using (dc)
        {
            nint xp = AddressOf(dc, x), tp = AddressOf(dc, t);
            ulong inode = new Dentry(tp).Inode;
            long fallbacks = Fallbacks(dc), retries = dc.RcuWalkRetries;
            string seen = "";
            var answer = PauseReader(dc, PausePoint.SteppingOnto, xp, () => dc.LookupPath(t),
                meanwhile: () =>
                {
                    dc.Invalidate(x);                     // unhashed and killed (retired, not freed)
                    Assert.True((new Dentry(xp).Flags & DentryFlags.Killed) != 0);
                },
                inHook: () => seen = $"count={((DentryData*)xp)->Count} next={((DentryData*)xp)->HashNext != 0}");
            Assert.Equal("count=-128 next=True", seen);
            Assert.Equal(new LookupResult(InodeKind.File, inode, 0), answer);
            Assert.Equal(fallbacks, Fallbacks(dc));       // lock-free all the way
            Assert.Equal(retries, dc.RcuWalkRetries);
            dc.ShrinkAll();
            Assert.Equal(0, dc.Rcu.PendingCount);
        }
    }

    [Fact]
    public void AMissCausedByAnUnhashIsNeverTheAnswer()
    {
        // The reader stands on x when t is unhashed and cached again (a new dentry, at the head of the chain, behind
        // the reader): the reader misses t. A miss is not "does not exist": it falls back, and the locked walk finds
        // the new dentry.
        using var a = TestAllocator.Create();
        var tree = new SyntheticTree(2, 4);
        var (dc, t, x) = ChainWithXAheadOfT(a, tree);
        using (dc)
        {
            nint xp = AddressOf(dc, x), old = AddressOf(dc, t);
            long fallbacks = Fallbacks(dc), retries = dc.RcuWalkRetries;
            nint fresh = 0;
            var answer = PauseReader(dc, PausePoint.SteppingOnto, xp, () => dc.LookupPath(t), meanwhile: () =>
            {
                dc.Invalidate(t);
                Assert.Equal(InodeKind.File, dc.LookupPath(t).Kind);   // asks the disk, hashes a new dentry
                fresh = AddressOf(dc, t);
            });
            Assert.NotEqual(old, fresh);
            Assert.Equal(new LookupResult(InodeKind.File, new Dentry(fresh).Inode, 0), answer);
            Assert.Equal(fallbacks + 2, Fallbacks(dc));   // the reader's, and the cold lookup's meanwhile
            Assert.Equal(retries, dc.RcuWalkRetries);     // misses, not failed validations
            Assert.True(dc.IsCached(t));
        }
    }

    [Theory]
    [InlineData(PausePoint.BeforeLegitimize)]
    [InlineData(PausePoint.SteppingOnto)]
    public void AncestorsKilledDuringAWalkAreCaughtAtTheLastDentry(PausePoint at)
    {
        // d0 removed from the disk, then every unused dentry shrunk: the file first, then d0 (shrink_kill kills the
        // ancestors whose count drops to zero). A directory dies only after everything below it, so the reader's last
        // dentry is dead before its ancestor is: that is what the reader sees.
        using var a = TestAllocator.Create();
        var tree = new SyntheticTree(2, 4);
        using var dc = tree.CreateCache(a);
        Assert.Equal(InodeKind.File, dc.LookupPath("d0/f1").Kind);
        nint target = AddressOf(dc, "d0/f1"), d0 = AddressOf(dc, "d0");
        long fallbacks = Fallbacks(dc), retries = dc.RcuWalkRetries;
        GuardedThread? shrinker = null;
        int shrinkDone = 0;
        LookupResult answer;
        try
        {
            answer = PauseReader(dc, at, target, () => dc.LookupPath("d0/f1"), meanwhile: () =>
            {
                for (int f = 0; f < 4; f++) tree.Set($"d0/f{f}", InodeKind.Negative);
                tree.Set("d0", InodeKind.Negative);
                // ShrinkAll waits for a grace period, which the paused reader holds up: on another thread.
                shrinker = new GuardedThread(() => { dc.ShrinkAll(); Volatile.Write(ref shrinkDone, 1); });
                shrinker.Start();
                var deadline = DateTime.UtcNow.AddMinutes(1);
                while ((new Dentry(d0).Flags & DentryFlags.Killed) == 0 && DateTime.UtcNow < deadline) Thread.Sleep(1);
                Assert.True((new Dentry(d0).Flags & DentryFlags.Killed) != 0, "d0 was not killed");
                Assert.True((new Dentry(target).Flags & DentryFlags.Killed) != 0);
                Assert.Equal(0, Volatile.Read(ref shrinkDone));   // its grace period waits for the reader
            });
        }
        finally { shrinker?.Join(); }
        Assert.Equal(InodeKind.Negative, answer.Kind);
        Assert.Equal(1, answer.FileSystemQueries);        // d0 asked again
        Assert.Equal(fallbacks + 1, Fallbacks(dc));
        Assert.Equal(retries + (at == PausePoint.BeforeLegitimize ? 1 : 0), dc.RcuWalkRetries);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SmoPartialShrinkKillsDuringAWalk(bool targetIsAVictim)
    {
        // The SMO callbacks on two dentries of the directory (EvictAllUnused: every unused dentry given is freed):
        // isolate puts the unused ones on its shrink list, migrate kills them and then waits for a grace period,
        // which the paused reader holds up — so they run on another thread (as the core would run them, on the
        // shrinking thread). A reader whose dentry survives (held) answers lock-free while the companion dies; one
        // whose dentry is killed falls back and asks the disk.
        using var a = TestAllocator.Create();
        var tree = new SyntheticTree(1, 8);
        using var dc = tree.CreateCache(a, PartialShrinkMode.EvictAllUnused);
        foreach (var f in tree.Files) dc.LookupPath(f);
        var held = targetIsAVictim ? default : dc.Resolve("d0/f1", out _);
        nint target = AddressOf(dc, "d0/f1"), companion = AddressOf(dc, "d0/f2");
        ulong inode = new Dentry(target).Inode;
        long fallbacks = Fallbacks(dc), retries = dc.RcuWalkRetries;
        var results = new MigrateResult[2];
        GuardedThread? shrinker = null;
        LookupResult answer;
        try
        {
            answer = PauseReaderAt(dc, target, () => dc.LookupPath("d0/f1"), meanwhile: () =>
            {
                shrinker = new GuardedThread(() =>
                {
                    var vector = new[] { target, companion };
                    var m = dc.Cache.Mobility!;
                    m.Migrate(dc.Cache, vector, 0, m.Isolate!(dc.Cache, vector), results);
                });
                shrinker.Start();
                var deadline = DateTime.UtcNow.AddMinutes(1);
                bool Killed(nint p) => (new Dentry(p).Flags & DentryFlags.Killed) != 0;
                while (!(Killed(companion) && (Killed(target) || !targetIsAVictim)) && DateTime.UtcNow < deadline) Thread.Sleep(1);
                Assert.True(Killed(companion), "partial shrink did not kill the companion");
                Assert.Equal(targetIsAVictim, Killed(target));
            });
        }
        finally { shrinker?.Join(); }
        Assert.Equal(MigrateResult.Freed, results[1]);
        Assert.Equal(targetIsAVictim ? MigrateResult.Freed : MigrateResult.Later, results[0]);
        Assert.Equal(InodeKind.File, answer.Kind);
        if (targetIsAVictim)
        {
            Assert.Equal(1, answer.FileSystemQueries);
            Assert.NotEqual(inode, answer.Inode);
            Assert.Equal(fallbacks + 1, Fallbacks(dc));
            Assert.Equal(retries + 1, dc.RcuWalkRetries);
        }
        else
        {
            Assert.Equal(new LookupResult(InodeKind.File, inode, 0), answer);
            Assert.Equal(fallbacks, Fallbacks(dc));              // the companion died beside it: no fallback
            Assert.Equal(retries, dc.RcuWalkRetries);
            dc.Put(held);
        }
    }
}
