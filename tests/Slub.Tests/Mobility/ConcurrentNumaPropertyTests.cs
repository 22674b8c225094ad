using System.Collections.Concurrent;
using CsCheck;
using Slub.Pages;

namespace Slub.Tests.Mobility;

/// <summary>
/// Concurrent property test of NUMA moves: a generated schedule on a 2- or 3-node allocator, with workers that
/// allocate (on a named node or anywhere), rewrite, verify and free checksummed objects of a
/// <see cref="MovableHandleTable"/> (whose migrate callback updates the handle's table entry) while two maintenance
/// threads each repeat a generated list of NUMA moves (<c>MoveNode</c>, <c>MoveToNode</c>, <c>Balance</c>, the
/// sysfs <c>move</c>/<c>balance</c> writes), shrinks, per-node and whole-allocator defragmentation and flushes.
/// </summary>
/// <remarks>
/// What the other tests leave out: <see cref="NumaModelTests"/> checks NUMA moves step by step on one thread;
/// <see cref="ConcurrentDefragRunsTests"/> races defrag runs on a fixed schedule and two nodes and checks totals and
/// the partial-list counters; <see cref="NumaMoveTests.MoveAndBalanceUnderConcurrentAllocation"/> has one churning
/// thread and one mover. Here the schedules are generated, two movers race each other on up to three nodes, a
/// handle is checked never to be live twice at any moment, and at the end the statistics' per-node object
/// counts must equal a recount of where the live objects' addresses are, and no two live handles share an object.
/// </remarks>
[Collection("smo-stress")]
public class ConcurrentNumaPropertyTests
{
    private enum Maint { MoveNode, MoveToNode, Balance, SysfsMove, SysfsBalance, Shrink, DefragmentNode, DefragSlabs, Flush }

    private static readonly Gen<(Maint Op, int A, int B)> GenMaint =
        Gen.Select(Gen.Enum<Maint>(), Gen.Int[0, 2], Gen.Int[0, 2]);

    private static readonly Gen<(int Nodes, bool Debug, int Seed, (Maint Op, int A, int B)[] First, (Maint Op, int A, int B)[] Second)> GenRun =
        Gen.Select(Gen.Int[2, 3], Gen.Int[0, 3], Gen.Int[0, 1 << 20], GenMaint.Array[1, 8], GenMaint.Array[1, 8])
            .Select((nodes, debug, seed, first, second) => (nodes, debug == 0, seed, first, second));   // a quarter under slub_debug=FZ

    private const int Workers = 2, OpsPerWorker = 3000, Payload = 56;
    private static long s_movedInAllRuns;

    [Fact]
    public void WorkersAndRacingNumaMovesKeepEveryObjectAndTheCounts()
    {
        GenRun.Sample(run => Execute(run.Nodes, run.Debug, run.Seed, run.First, run.Second), iter: 40, threads: 1,
            print: run => $"nodes {run.Nodes}, debug {run.Debug}, seed {run.Seed}: [{string.Join(", ", run.First)}] / [{string.Join(", ", run.Second)}]");
        // A schedule may move nothing (e.g. only flushes); all of them together must have.
        Assert.True(Interlocked.Read(ref s_movedInAllRuns) > 0, "no run moved anything");
    }

    private static void Stamp(Span<byte> b, long h, long gen)
    {
        for (int i = 0; i < b.Length; i++) b[i] = (byte)(h * 31 + i * 7 + gen * 13);
    }

    private static bool Check(Span<byte> b, long h, long gen)
    {
        for (int i = 0; i < b.Length; i++) if (b[i] != (byte)(h * 31 + i * 7 + gen * 13)) return false;
        return true;
    }

    private static void Execute(int nodes, bool debug, int seed, (Maint Op, int A, int B)[] first, (Maint Op, int A, int B)[] second)
    {
        // Under FZ the cache tracks its full slabs on a list and checks every object on free; plain ones scan for them.
        using var a = TestAllocator.Create(nodes: nodes, cpus: 3, mbPerNode: 16, slubDebug: debug ? "FZ" : "-");
        var table = new MovableHandleTable(a, "numa_race", Payload);
        var cache = table.Cache;
        var liveNow = new ConcurrentDictionary<long, int>();   // every handle live at this moment, with its worker
        var live = new Dictionary<long, long>[Workers];        // each worker's handles and their stamp generations
        long bad = 0, twice = 0;
        Exception? failure = null;

        void Maintain((Maint Op, int A, int B) m)
        {
            int x = m.A % nodes, y = m.B % nodes;
            string dir = cache.Name + "/";
            switch (m.Op)
            {
                case Maint.MoveNode: cache.MoveNode(x, y); break;
                case Maint.MoveToNode: cache.MoveToNode(x); break;
                case Maint.Balance: cache.Balance(); break;
                case Maint.SysfsMove: a.Sysfs.Write(dir + "move", x == y && m.A % 2 == 0 ? $"N{x}" : $"N{x} N{y}"); break;
                case Maint.SysfsBalance: a.Sysfs.Write(dir + "balance", "1"); break;
                case Maint.Shrink: cache.Shrink(); break;
                case Maint.DefragmentNode: cache.DefragmentNode(x); break;
                case Maint.DefragSlabs: a.DefragSlabs(-1); break;
                case Maint.Flush: cache.FlushAll(); break;
            }
        }

        BackgroundLoop Loop((Maint Op, int A, int B)[] schedule) => new(round =>
        {
            try { Maintain(schedule[round % schedule.Length]); }
            catch (Exception e) { Interlocked.CompareExchange(ref failure, e, null); }
        });

        // Workers go on (up to 4× their operations) until each maintenance thread has run its whole schedule once
        // after they started: on a loaded machine they could otherwise finish before the movers ran at all.
        void Work(int w, Func<bool> moreWanted)
        {
            var rng = new Random(seed * Workers + w);
            var mine = live[w] = new Dictionary<long, long>();
            var order = new List<long>();
            long gen = 0;
            for (int i = 0; (i < OpsPerWorker || (moreWanted() && i < 4 * OpsPerWorker)) && Volatile.Read(ref failure) is null; i++)
            {
                int op = rng.Next(10);
                if (op < 5 || order.Count < 100)
                {
                    long h = table.Allocate(rng.Next(-1, nodes));
                    if (!liveNow.TryAdd(h, w)) Interlocked.Increment(ref twice);   // someone else holds it too
                    using (var s = table.Access(h))
                    {
                        if (!s.Bytes.ToArray().All(v => v == 0)) Interlocked.Increment(ref bad);   // the payload comes zeroed
                        Stamp(s.Bytes, h, ++gen);
                    }
                    mine[h] = gen;
                    order.Add(h);
                }
                else if (op < 8)
                {
                    int k = rng.Next(order.Count);
                    long h = order[k];
                    using (var s = table.Access(h)) if (!Check(s.Bytes, h, mine[h])) Interlocked.Increment(ref bad);
                    order[k] = order[^1];
                    order.RemoveAt(order.Count - 1);
                    mine.Remove(h);
                    liveNow.TryRemove(h, out _);   // before the free: the handle may be handed out again at once
                    table.Free(h);
                }
                else
                {
                    long h = order[rng.Next(order.Count)];
                    using var s = table.Access(h);
                    if (!Check(s.Bytes, h, mine[h])) Interlocked.Increment(ref bad);
                    Stamp(s.Bytes, h, ++gen);   // a rewrite: a move racing it must copy the new contents
                    mine[h] = gen;
                }
            }
        }

        using (var m1 = Loop(first))
        using (var m2 = Loop(second))
        {
            m1.Started.Wait();
            m2.Started.Wait();
            int want1 = m1.Rounds + first.Length + 1, want2 = m2.Rounds + second.Length + 1;
            var workers = Enumerable.Range(0, Workers)
                .Select(w => Task.Factory.StartNew(() => Work(w, () => m1.Rounds < want1 || m2.Rounds < want2), TaskCreationOptions.LongRunning))
                .ToArray();
            Task.WaitAll(workers);
        }
        Assert.Null(failure);
        Assert.Equal(0, twice);
        Assert.Equal(0, bad);
        Interlocked.Add(ref s_movedInAllRuns, cache.Defrag.ObjectsMoved);

        // Every live object intact, no two handles on one object, and nothing else live.
        var addresses = new HashSet<nint>();
        var perNode = new long[nodes];
        long total = 0;
        for (int w = 0; w < Workers; w++)
            foreach (var (h, gen) in live[w])
            {
                using (var s = table.Access(h)) Assert.True(Check(s.Bytes, h, gen), $"handle {h} of worker {w} damaged");
                nint p = table.AddressOf(h);
                Assert.True(addresses.Add(p), $"handle {h} shares its object at {p:x}");
                perNode[a.Pages.NodeOf(p)]++;
                total++;
            }
        Assert.Equal(total, table.Count);
        Assert.Equal(total, liveNow.Count);

        // The statistics' per-node counts are a recount of where the objects are.
        cache.FlushAll();
        var st = cache.GetStatistics();
        Assert.Equal(perNode, st.Nodes.Select(n => n.Objects).ToArray());
        Assert.Equal(total, st.Objects);
        for (int n = 0; n < nodes; n++) Assert.Equal(0, cache.IsolatedSlabs(n));
        int bucketed = 0;
        Core.PartialListCounterTests.AssertCountersMatchRecount(cache, ref bucketed);
        Assert.Empty(cache.Validate());

        // Everything freed: nothing left behind.
        for (int w = 0; w < Workers; w++) foreach (long h in live[w].Keys) table.Free(h);
        cache.Shrink();
        st = cache.GetStatistics();
        Assert.Equal(0, st.Objects);
        Assert.Equal(0, st.Slabs);
        foreach (BuddyArena arena in a.Pages.Arenas) arena.CheckConsistency();
    }
}
