using Xunit.Abstractions;

namespace Slub.Tests.Faults;

/// <summary>
/// A reference table whose isolate and migrate callbacks throw on command: before touching anything, or in
/// the middle of a migrate after some objects were already moved. Object layout: an 8-byte id (0 in a free,
/// constructed slot) followed by a checksummed payload.
/// </summary>
internal sealed unsafe class ThrowingRefTable
{
    public const int Size = 64, Payload = Size - 8;
    private readonly nint[] _slots;
    private readonly object[] _stripes = Enumerable.Range(0, 64).Select(_ => new object()).ToArray();
    private long _nextId;
    private long _live;
    private long _isolateCalls, _migrateCalls;

    public readonly KmemCache Cache;

    /// <summary>Throw from isolate on every N-th call (0 = never).</summary>
    public int IsolateEveryNth;
    /// <summary>Throw from migrate on every N-th call (0 = never), after (call / N) % objects objects were processed.</summary>
    public int MigrateEveryNth;
    public long Thrown;

    public long Count => Interlocked.Read(ref _live);

    public ThrowingRefTable(SlabAllocator a, string name, int capacity)
    {
        _slots = new nint[capacity];
        Cache = a.CreateCache(name, Size, ctor: p => new Span<byte>((void*)p, Size).Clear());
        Cache.SetupMobility(Isolate, Migrate);
    }

    private object Stripe(long id) => _stripes[id & 63];

    /// <summary>A new object with a stamped payload; 0 when memory ran out.</summary>
    public long Add(int gen)
    {
        nint p = Cache.TryAlloc();
        if (p == 0) return 0;
        long id = Interlocked.Increment(ref _nextId);
        if (id >= _slots.Length) { Cache.Free(p); throw new InvalidOperationException("table full"); }
        HandleTableChurn.Stamp(new Span<byte>((void*)(p + 8), Payload), id, gen);
        lock (Stripe(id))
        {
            *(long*)p = id;
            Volatile.Write(ref _slots[id], p);
        }
        Interlocked.Increment(ref _live);
        return id;
    }

    public bool Verify(long id, int gen)
    {
        lock (Stripe(id))
        {
            nint p = _slots[id];
            return p != 0 && *(long*)p == id && HandleTableChurn.Check(new Span<byte>((void*)(p + 8), Payload), id, gen);
        }
    }

    public nint AddressOf(long id) => Volatile.Read(ref _slots[id]);

    public void Remove(long id)
    {
        lock (Stripe(id))
        {
            nint p = _slots[id];
            _slots[id] = 0;
            *(long*)p = 0;   // back to the constructed state: migrate can tell the slot is free
            Cache.Free(p);
        }
        Interlocked.Decrement(ref _live);
    }

    private object? Isolate(KmemCache cache, Span<nint> objects)
    {
        long call = Interlocked.Increment(ref _isolateCalls);
        if (IsolateEveryNth > 0 && call % IsolateEveryNth == 0)
        {
            Interlocked.Increment(ref Thrown);
            throw new InjectedCallbackException($"isolate call {call}");
        }
        return null;
    }

    private void Migrate(KmemCache cache, ReadOnlySpan<nint> objects, int node, object? state, Span<MigrateResult> results)
    {
        long call = Interlocked.Increment(ref _migrateCalls);
        int throwAt = MigrateEveryNth > 0 && call % MigrateEveryNth == 0 ? (int)(call / MigrateEveryNth % objects.Length) : -1;
        for (int i = 0; i < objects.Length; i++)
        {
            if (i == throwAt)
            {
                Interlocked.Increment(ref Thrown);
                throw new InjectedCallbackException($"migrate call {call} after {i} objects");
            }
            nint old = objects[i];
            if (old == 0) { results[i] = MigrateResult.Skipped; continue; }
            long id = *(long*)old;
            if (id <= 0 || id >= _slots.Length) { results[i] = MigrateResult.Skipped; continue; }
            lock (Stripe(id))
            {
                if (_slots[id] != old) { results[i] = MigrateResult.Skipped; continue; }
                nint fresh = cache.TryAllocNode(node);
                if (fresh == 0) { results[i] = MigrateResult.Later; continue; }
                Buffer.MemoryCopy((void*)old, (void*)fresh, Size, Size);
                Volatile.Write(ref _slots[id], fresh);
                *(long*)old = 0;
                cache.Free(old);
                results[i] = MigrateResult.Moved;
            }
        }
    }
}

public sealed class InjectedCallbackException(string message) : Exception(message);

/// <summary>Isolate/migrate callbacks that throw, under the SMO stress workload and one at a time.</summary>
[Collection("smo-stress")]
public class CallbackFaultTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(5, 0, 1, "-")]    // isolate throws
    [InlineData(0, 4, 1, "-")]    // migrate throws, often after moving part of the slab
    [InlineData(7, 3, 2, "-")]    // both, with NUMA moves and balance
    [InlineData(6, 5, 1, "FZU")]  // both, on a debug cache
    [InlineData(9, 4, 2, "-", true)]   // everything at once: throwing callbacks and slab and page faults
    public void SmoStressWithThrowingCallbacks(int isolateEvery, int migrateEvery, int nodes, string debug, bool allocationFaults = false)
    {
        using var a = TestAllocator.Create(nodes: nodes, cpus: 2, mbPerNode: 64, slubDebug: debug);
        if (allocationFaults)
        {
            a.Faults.Slab.EveryNth = 3;
            a.Faults.Page.Seed(3);
            a.Faults.Page.Probability = 0.3;
        }
        var t = new ThrowingRefTable(a, "smo_throwing", 1 << 16);
        t.IsolateEveryNth = isolateEvery;
        t.MigrateEveryNth = migrateEvery;
        var cache = t.Cache;
        const int Workers = 2, MinRounds = 25;
        int Ops = debug == "-" ? 12_000 : 2_500;   // debug caches check every object: slower per operation
        long bad = 0, ops = 0, caught = 0;
        var problems = new List<string>();
        int rounds = 0;
        using var stop = new CancellationTokenSource();
        // Dedicated threads, not the pool: with two cores the pool can leave the defragger queued until the
        // workers are done, and then nothing runs concurrently at all.
        using var started = new ManualResetEventSlim();
        var defragger = Task.Factory.StartNew(() =>
        {
            started.Set();
            while (!stop.IsCancellationRequested)
            {
                int r = Interlocked.Increment(ref rounds) - 1;
                try
                {
                    switch (r % 5)
                    {
                        case 0: cache.Shrink(); break;
                        case 1: cache.Shrink(DefragPolicy.EmptyAllCandidates); break;
                        case 2: a.DefragSlabs(-1); break;
                        case 3: if (nodes > 1) cache.MoveNode(r % 2, 1 - r % 2); else cache.DefragmentNode(0); break;
                        case 4: if (nodes > 1) cache.Balance(); else cache.Shrink(); break;
                    }
                }
                catch (DefragmentationException e)
                {
                    caught++;
                    // Named and wrapped, and the core already restored its state: nothing is left isolated.
                    string? wrong = e.CacheName != cache.Name ? $"cache {e.CacheName}"
                        : e.SlabAddress == 0 || a.Pages.NodeOf(e.SlabAddress) < 0 ? $"slab 0x{e.SlabAddress:x}"
                        : e.InnerException is not InjectedCallbackException ? $"inner {e.InnerException?.GetType().Name}"
                        : !e.Message.StartsWith($"{cache.Name}: ") || !e.Message.Contains($"callback failed on slab 0x{e.SlabAddress:x}") ? $"message '{e.Message}'"
                        : Enumerable.Range(0, nodes).Any(n => cache.IsolatedSlabs(n) != 0) ? "slabs left isolated"
                        : null;
                    if (wrong is not null) lock (problems) problems.Add($"bad DefragmentationException: {wrong}");
                    // Validate after every fault.
                    var found = cache.Validate();
                    if (found.Count > 0) lock (problems) problems.AddRange(found);
                }
            }
        }, TaskCreationOptions.LongRunning);
        var liveSets = new List<long>[Workers];
        var workers = Enumerable.Range(0, Workers).Select(w => Task.Factory.StartNew(() =>
        {
            started.Wait();
            var rng = new Random(w + 17 * isolateEvery + migrateEvery);
            var live = liveSets[w] = new List<long>();
            // Run at least Ops operations, and on until the defragger has done MinRounds rounds (bounded).
            for (int i = 0; i < Ops || (Volatile.Read(ref rounds) < MinRounds && i < 4 * Ops); i++)
            {
                Interlocked.Increment(ref ops);
                int op = rng.Next(10);
                if (op < (live.Count > 2000 ? 4 : 5) || live.Count < 50)   // the live set levels off near 2000
                {
                    long id = t.Add(w);
                    if (id != 0) live.Add(id);
                }
                else if (op < 9)
                {
                    int k = rng.Next(live.Count);
                    long id = live[k];
                    if (!t.Verify(id, w)) Interlocked.Increment(ref bad);
                    live[k] = live[^1]; live.RemoveAt(live.Count - 1);
                    t.Remove(id);
                }
                else if (!t.Verify(live[rng.Next(live.Count)], w)) Interlocked.Increment(ref bad);
            }
        }, TaskCreationOptions.LongRunning)).ToArray();
        Task.WaitAll(workers);
        stop.Cancel();
        defragger.Wait();

        // A deterministic tail, so the assertions below do not hang on how the threads interleaved (on a fast
        // machine the workers may leave too little fragmentation for a callback to reach its throw): fragment
        // hard and shrink until a callback has thrown, a bounded number of times.
        for (int round = 0; round < 20 && t.Thrown == 0; round++)
        {
            var fresh = Enumerable.Range(0, 40 * cache.ObjectsPerSlab).Select(_ => t.Add(0)).Where(id => id != 0).ToList();
            for (int i = 0; i < fresh.Count; i++)
            {
                if (i % 5 == 0) liveSets[0].Add(fresh[i]);
                else t.Remove(fresh[i]);
            }
            try { cache.Shrink(); }
            catch (DefragmentationException) { caught++; }
        }

        var d = cache.Defrag;
        output.WriteLine($"isolate/{isolateEvery} migrate/{migrateEvery} nodes={nodes} debug={debug} allocation faults {a.Faults.Failures}: {ops} operations, {rounds} defrag rounds, " +
                         $"{t.Thrown} callback exceptions thrown, {caught} caught, moved {d.ObjectsMoved}, busy {d.ObjectsBusy}, unreported {d.ObjectsUnreported}");
        Assert.Equal(0, bad);
        Assert.Empty(problems);
        Assert.True(rounds >= 1);   // the defragger ran while the workers did (it starts first)
        Assert.True(t.Thrown > 0, "no callback threw");
        Assert.Equal(t.Thrown, caught);                  // every exception reached the caller
        Assert.Equal(t.Thrown, d.CallbackFailures);      // and was counted
        Assert.True(d.ObjectsMoved > 0);

        long total = 0;
        for (int w = 0; w < Workers; w++)
            foreach (long id in liveSets[w]) { Assert.True(t.Verify(id, w)); total++; }
        Assert.Equal(total, t.Count);
        cache.FlushAll();
        Assert.Equal(total, cache.CountObjects());
        Assert.Empty(cache.Validate());

        // Callbacks healthy again, memory too: the cache works and shrink compacts it.
        t.IsolateEveryNth = t.MigrateEveryNth = 0;
        a.Faults.Reset();
        cache.Shrink();
        for (int w = 0; w < Workers; w++) foreach (long id in liveSets[w]) Assert.True(t.Verify(id, w));
        var st = cache.GetStatistics();
        long slack = cache.Events.OrderFallback > 0 ? st.Slabs / 2 + nodes : nodes;   // fallback-order slabs hold fewer
        Assert.True(st.Slabs <= st.OptimalSlabs + slack, $"{st.Slabs} slabs, optimal {st.OptimalSlabs}");
        Assert.Empty(cache.Validate());
    }

    [Fact]
    public void AMigrateThatThrowsMidwayKeepsWhatItMovedAndLeavesTheRest()
    {
        using var a = TestAllocator.Create(cpus: 1);
        var t = new ThrowingRefTable(a, "midway", 1 << 14);
        int per = t.Cache.ObjectsPerSlab;
        var ids = Enumerable.Range(0, 30 * per).Select(_ => t.Add(1)).ToList();
        for (int i = 0; i < ids.Count; i++) if (i % 5 != 0) t.Remove(ids[i]);
        var kept = ids.Where((_, i) => i % 5 == 0).ToList();
        t.Cache.FlushAll();
        var before = kept.ToDictionary(id => id, t.AddressOf);
        var statsBefore = t.Cache.GetStatistics();
        t.MigrateEveryNth = 1;   // the first migrate call throws after (1 % objects) = 1 object
        var e = Assert.Throws<DefragmentationException>(() => t.Cache.Shrink());
        Assert.IsType<InjectedCallbackException>(e.InnerException);
        var moved = kept.Where(id => t.AddressOf(id) != before[id]).ToList();
        Assert.Single(moved);                                   // exactly the one processed before the throw
        Assert.Equal(e.SlabAddress, a.Pages.OwnerOf(before[moved[0]])!.Address);   // from the slab named
        Assert.All(kept, id => Assert.True(t.Verify(id, 1)));
        Assert.Equal(kept.Count, kept.Select(t.AddressOf).Distinct().Count());
        Assert.Equal(1, t.Cache.Defrag.ObjectsMoved);
        Assert.Equal(1, t.Cache.Defrag.CallbackFailures);
        // The objects the throwing call never reached are failed moves: counted busy, not "unreported".
        int offered = kept.Count(id => a.Pages.OwnerOf(before[id])!.Address == e.SlabAddress);
        Assert.Equal(offered - 1, t.Cache.Defrag.ObjectsBusy);
        Assert.Equal(0, t.Cache.Defrag.ObjectsUnreported);
        Assert.Equal((offered - 1).ToString() + "\n", a.Sysfs.Read("midway/defrag_objects_busy"));
        t.Cache.FlushAll();
        Assert.Equal(statsBefore.Objects, t.Cache.GetStatistics().Objects);
        Assert.Equal(0, t.Cache.IsolatedSlabs(0));
        Assert.Empty(t.Cache.Validate());
    }

    [Fact]
    public void AnIsolateThatThrowsReleasesTheSlabLockAndMovesNothing()
    {
        using var a = TestAllocator.Create(cpus: 1);
        var t = new ThrowingRefTable(a, "isolate_throws", 1 << 14);
        int per = t.Cache.ObjectsPerSlab;
        var ids = Enumerable.Range(0, 20 * per).Select(_ => t.Add(2)).ToList();
        for (int i = 0; i < ids.Count; i++) if (i % 4 != 0) t.Remove(ids[i]);
        var kept = ids.Where((_, i) => i % 4 == 0).ToList();
        var before = kept.ToDictionary(id => id, t.AddressOf);
        t.IsolateEveryNth = 1;
        var e = Assert.Throws<DefragmentationException>(() => t.Cache.Shrink());
        Assert.Contains("isolate callback failed", e.Message);
        int offered = kept.Count(id => a.Pages.OwnerOf(before[id])!.Address == e.SlabAddress);
        Assert.All(kept, id => Assert.Equal(before[id], t.AddressOf(id)));
        // The slab lock was released: freeing into every slab works (a leaked lock would hang here).
        foreach (long id in kept.Take(kept.Count / 2)) t.Remove(id);
        Assert.Equal(0, t.Cache.Defrag.ObjectsMoved);
        Assert.Equal(offered, t.Cache.Defrag.ObjectsBusy);   // offered to isolate, left in place
        Assert.Empty(t.Cache.Validate());
        t.IsolateEveryNth = 0;
        t.Cache.Shrink();
        Assert.All(kept.Skip(kept.Count / 2), id => Assert.True(t.Verify(id, 2)));
        Assert.Empty(t.Cache.Validate());
    }
}
