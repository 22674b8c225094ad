using CsCheck;
using Slub.Pages;

namespace Slub.Tests.Mobility;

/// <summary>
/// Model-based property test of NUMA moves: random operations on a <see cref="MovableHandleTable"/> and a plain
/// cache of a 2- or 3-node allocator (allocations on a node or anywhere, frees, rewrites, moves, balance, shrink,
/// per-node defrag, flushes, a node's pages taken whole and given back, min_partial, cpu_partial and
/// defrag_used_ratio changed through sysfs), checked after each step against a model of live handles and their stamps.
/// </summary>
public unsafe class NumaModelTests
{
    private enum Op { Allocate, Free, Thin, Rewrite, PlainAlloc, PlainFree, MoveNode, MoveToNode, Balance, Shrink, Defragment, Flush, Reserve, Release, MinPartial, CpuPartial, DefragRatio }

    private sealed class Reserve : PageBlock;

    // An operation: kind, two node picks (taken modulo the node count; A - 1 can ask for any node), an amount and
    // a pick among live objects.
    private static readonly Gen<(Op Op, int A, int B, int Amount, int Pick)> GenOp =
        Gen.Select(Gen.Int[0, 99], Gen.Int[0, 3], Gen.Int[0, 2], Gen.Int[1, 40], Gen.Int[0, int.MaxValue]).Select((p, a, b, amount, pick) =>
        {
            Op op = p switch
            {
                < 20 => Op.Allocate, < 30 => Op.Free, < 33 => Op.Thin, < 36 => Op.Rewrite, < 44 => Op.PlainAlloc, < 50 => Op.PlainFree,
                < 58 => Op.MoveNode, < 62 => Op.MoveToNode, < 66 => Op.Balance, < 71 => Op.Shrink, < 76 => Op.Defragment,
                < 80 => Op.Flush, < 86 => Op.Reserve, < 91 => Op.Release, < 94 => Op.MinPartial, < 97 => Op.CpuPartial, _ => Op.DefragRatio,
            };
            return (op, a, b, amount, pick);
        });

    private static readonly Gen<(int Nodes, (Op Op, int A, int B, int Amount, int Pick)[] Ops)> GenRun =
        Gen.Select(Gen.Int[2, 3], GenOp.Array[1, 80]);

    [Fact]
    public void RandomNumaOperationsKeepEveryObjectAndCount()
    {
        GenRun.Sample(run => new Run(run.Nodes).Execute(run.Ops), iter: 150, threads: 1,
            print: run => $"nodes {run.Nodes}: " + string.Join(", ", run.Ops.Select(o => o.ToString())));
    }

    private sealed class Run(int nodes)
    {
        private readonly int _nodes = nodes;
        private SlabAllocator _a = null!;
        private MovableHandleTable _table = null!;
        private KmemCache _plain = null!;
        private readonly List<long> _live = new();
        private readonly Dictionary<long, int> _gen = new();        // the model: live handle → stamp generation
        private readonly List<long> _freed = new();                 // handles freed, never to be live again
        private readonly List<nint> _plainLive = new();
        private readonly Dictionary<nint, long> _plainStamp = new();
        private readonly List<Reserve>?[] _reserved = new List<Reserve>?[nodes];
        private int _nextGen;
        private long _nextStamp;

        private int NodeOf(long h) => _a.Pages.NodeOf(_table.AddressOf(h));
        private bool AnyReserved => _reserved.Any(r => r is not null);
        private int PerSlab => _table.Cache.ObjectsPerSlab;

        public void Execute((Op Op, int A, int B, int Amount, int Pick)[] ops)
        {
            using var a = _a = TestAllocator.Create(nodes: _nodes, cpus: 2, mbPerNode: 4);
            _table = new MovableHandleTable(a, "numa_model", 184);   // 192-byte slots, 21 per slab: a few hundred objects fill many slabs
            _plain = a.CreateCache("numa_plain", 200, flags: SlabFlags.NoMerge);
            foreach (var (op, pa, pb, amount, pick) in ops)
            {
                Apply(op, pa, pb, amount, pick);
                CheckContents();
            }
            foreach (var r in _reserved) if (r is not null) foreach (var b in r) a.Pages.Free(b);
            _table.Cache.FlushAll();
            _plain.FlushAll();
            CheckCounts();
            CheckPlainCounts();
            _table.Cache.Shrink();
            CheckShrunk();
        }

        private void Apply(Op op, int pa, int pb, int amount, int pick)
        {
            int a = pa % _nodes, b = pb % _nodes;
            switch (op)
            {
                case Op.Allocate:
                {
                    int node = pa % (_nodes + 1) - 1;
                    long slabsMade = _table.Cache.Events.AllocSlab;
                    amount *= 3;   // enough objects for many slabs (21 per slab), so frees leave sparse ones
                    for (int i = 0; i < amount; i++)
                    {
                        long h = _table.Allocate(node);
                        Assert.False(_gen.ContainsKey(h), $"handle {h} handed out twice");
                        Assert.DoesNotContain(h, _freed);
                        int g = ++_nextGen;
                        using (var s = _table.Access(h)) HandleTableChurn.Stamp(s.Bytes, h, g);
                        _gen[h] = g;
                        _live.Add(h);
                        if (node >= 0 && _reserved[node] is null) Assert.Equal(node, NodeOf(h));   // a node with pages is honoured
                    }
                    if (node >= 0) CheckFullNodeSlabs(_table.Cache, node, amount, slabsMade);
                    break;
                }
                case Op.Free:
                    for (int i = 0; i < amount && _live.Count > 0; i++) FreeAt((int)((pick + (long)i * 7919) % _live.Count));
                    break;
                case Op.Thin:
                    // Frees all but every fifth object of node a: sparse slabs for defragmentation to empty.
                    for (int k = _live.Count - 1, seen = 0; k >= 0; k--)
                        if (NodeOf(_live[k]) == a && seen++ % 5 != pick % 5) FreeAt(k);   // the last one, swapped in at k, was seen
                    break;
                case Op.Rewrite:
                    for (int i = 0; i < amount && _live.Count > 0; i++)
                    {
                        long h = _live[(int)((pick + (long)i * 31) % _live.Count)];
                        int g = ++_nextGen;
                        using var s = _table.Access(h);
                        Assert.True(HandleTableChurn.Check(s.Bytes, h, _gen[h]), $"handle {h} damaged");
                        HandleTableChurn.Stamp(s.Bytes, h, g);
                        _gen[h] = g;
                    }
                    break;
                case Op.PlainAlloc:
                {
                    long slabsMade = _plain.Events.AllocSlab;
                    for (int i = 0; i < amount; i++)
                    {
                        // B picks the path: this thread's CPU, or CPU 0 or 1 named (their CPU slabs on different nodes).
                        nint p = pb == 2 ? _plain.AllocNode(a) : _plain.TryAllocOnCpu(pb, a);
                        Assert.NotEqual(0, p);
                        Assert.False(_plainStamp.ContainsKey(p), "object handed out twice");
                        if (_reserved[a] is null) Assert.Equal(a, _a.Pages.NodeOf(p));
                        *(long*)p = ++_nextStamp;
                        _plainStamp[p] = _nextStamp;
                        _plainLive.Add(p);
                    }
                    CheckFullNodeSlabs(_plain, a, amount, slabsMade);
                    break;
                }
                case Op.PlainFree:
                    for (int i = 0; i < amount && _plainLive.Count > 0; i++)
                    {
                        int k = (int)((pick + (long)i * 7919) % _plainLive.Count);
                        nint p = _plainLive[k];
                        Assert.Equal(_plainStamp[p], *(long*)p);
                        if (pb == 2) _plain.Free(p);
                        else _plain.FreeOnCpu(pb, p);
                        _plainLive[k] = _plainLive[^1];
                        _plainLive.RemoveAt(_plainLive.Count - 1);
                        _plainStamp.Remove(p);
                    }
                    break;
                case Op.MoveNode:
                {
                    var before = BeginMove(flush: true);
                    long left = _table.Cache.MoveNode(a, b);
                    EndMove(before, a == b ? 0 : 1);
                    foreach (var (h, (addr, node)) in before.Where)
                    {
                        nint now = _table.AddressOf(h);
                        if (node != a) Assert.Equal(addr, now);                  // other nodes are left alone
                        else if (now != addr) Assert.Equal(b, NodeOf(h));        // moved: to the target (a compaction stays on a)
                        if (node == a && a != b && _reserved[b] is null) Assert.Equal(b, NodeOf(h));   // the target had room for all
                    }
                    Assert.Equal(_live.Count(h => NodeOf(h) == a), left);
                    CheckCounts();
                    break;
                }
                case Op.MoveToNode:
                {
                    var before = BeginMove(flush: true);
                    long elsewhere = _table.Cache.MoveToNode(a);
                    EndMove(before, _nodes - 1);
                    foreach (var (h, (addr, node)) in before.Where)
                    {
                        nint now = _table.AddressOf(h);
                        if (node == a) Assert.Equal(addr, now);
                        else if (now != addr) Assert.Equal(a, NodeOf(h));
                        if (_reserved[a] is null) Assert.Equal(a, NodeOf(h));
                    }
                    Assert.Equal(_live.Count(h => NodeOf(h) != a), elsewhere);
                    CheckCounts();
                    break;
                }
                case Op.Balance:
                {
                    var before = BeginMove(flush: true);
                    _table.Cache.Balance();
                    EndMove(before, _nodes * _nodes);   // a run per surplus and deficit pair
                    foreach (var (h, (addr, node)) in before.Where)
                        if (_table.AddressOf(h) != addr) Assert.NotEqual(node, NodeOf(h));   // a balance move crosses nodes
                    var counts = CheckCounts();
                    if (!AnyReserved) Assert.True(counts.Max() - counts.Min() <= PerSlab, $"unbalanced: {string.Join(",", counts)}");
                    break;
                }
                case Op.Shrink:
                {
                    var before = BeginMove(flush: true);
                    _table.Cache.Shrink();
                    EndMove(before, 0);
                    _plain.Shrink();
                    foreach (var (h, (_, node)) in before.Where) Assert.Equal(node, NodeOf(h));   // shrink compacts each node in place
                    CheckCounts();
                    CheckPlainCounts();
                    // kmem_cache_shrink frees every empty slab, min_partial notwithstanding.
                    Assert.All(_plain.SlabOccupancy().Concat(_table.Cache.SlabOccupancy()), s => Assert.True(s.Inuse > 0, $"empty slab on node {s.Node} after shrink"));
                    CheckShrunk();
                    break;
                }
                case Op.Defragment:
                {
                    var before = BeginMove(flush: false);   // it flushes no CPU: neither may the test
                    _table.Cache.DefragmentNode(a);
                    EndMove(before, 0);
                    foreach (var (h, (addr, node)) in before.Where)
                    {
                        if (node != a) Assert.Equal(addr, _table.AddressOf(h));
                        else Assert.Equal(a, NodeOf(h));
                    }
                    break;
                }
                case Op.Flush:
                    _table.Cache.FlushAll();
                    _plain.FlushAll();
                    CheckCounts();
                    CheckPlainCounts();
                    break;
                case Op.Reserve:
                    // At most all nodes but one: allocations always find memory somewhere.
                    if (_reserved[a] is not null || _reserved.Count(r => r is not null) == _nodes - 1) break;
                    _reserved[a] = ExhaustNode(a);
                    Assert.False(_a.Pages.CanAllocate(0, a));
                    break;
                case Op.Release:
                {
                    int n = _reserved[a] is not null ? a : Array.FindIndex(_reserved, r => r is not null);
                    if (n < 0) break;
                    foreach (var r in _reserved[n]!) _a.Pages.Free(r);
                    _reserved[n] = null;
                    break;
                }
                case Op.MinPartial:
                {
                    var cache = pb % 2 == 0 ? _table.Cache : _plain;
                    int v = amount % 13;
                    _a.Sysfs.Write($"{_a.Sysfs.DirectoryName(cache)}/min_partial", v.ToString());
                    Assert.Equal(Math.Clamp(v, KmemCache.MinPartialFloor, KmemCache.MaxPartial), cache.MinPartial);
                    break;
                }
                case Op.DefragRatio:
                {
                    int v = amount * 5 % 101;   // up to 100: every partial slab a candidate
                    _a.Sysfs.Write("numa_model/defrag_used_ratio", v.ToString());
                    Assert.Equal(v, _table.Cache.DefragUsedRatio);
                    break;
                }
                case Op.CpuPartial:
                {
                    var cache = pb % 2 == 0 ? _table.Cache : _plain;
                    int v = (amount - 1) * 3;   // 0 included: no per-CPU partial slabs at all
                    _a.Sysfs.Write($"{_a.Sysfs.DirectoryName(cache)}/cpu_partial", v + "\n");
                    Assert.Equal((uint)v, cache.CpuPartial);
                    break;
                }
            }
        }

        private void FreeAt(int k)
        {
            long h = _live[k];
            using (var s = _table.Access(h)) Assert.True(HandleTableChurn.Check(s.Bytes, h, _gen[h]), $"handle {h} damaged before its free");
            _table.Free(h);
            _live[k] = _live[^1];
            _live.RemoveAt(_live.Count - 1);
            _gen.Remove(h);
            _freed.Add(h);
        }

        private sealed record Before(Dictionary<long, (nint Address, int Node)> Where, long Slabs, long Moved);

        /// <summary>Where every object is before a move, and the cache's slabs (after the flush the move starts with, if it does).</summary>
        private Before BeginMove(bool flush)
        {
            if (flush) _table.Cache.FlushAll();
            return new(_live.ToDictionary(h => h, h => (_table.AddressOf(h), NodeOf(h))), _table.Cache.GetStatistics().Slabs,
                _table.Cache.Defrag.ObjectsMoved);
        }

        /// <summary>
        /// The objects whose address changed are the ones the counters say moved, and the move made no more slabs than
        /// those objects fill plus one partly used target per migration run (a compaction, with no run to another
        /// node, only fills slabs it has).
        /// </summary>
        private void EndMove(Before before, int runs)
        {
            long moved = before.Where.Count(x => _table.AddressOf(x.Key) != x.Value.Address);
            Assert.Equal(before.Moved + moved, _table.Cache.Defrag.ObjectsMoved);
            long slabs = _table.Cache.GetStatistics().Slabs;
            long allowed = before.Slabs + (runs == 0 ? 0 : (moved + PerSlab - 1) / PerSlab + runs);
            Assert.True(slabs <= allowed, $"{slabs} slabs after moving {moved} objects, {before.Slabs} before ({PerSlab} per slab, {runs} runs)");
        }

        /// <summary>Takes every free block of one node's arena, largest first (as ArenaExhaustionTests does).</summary>
        private List<Reserve> ExhaustNode(int node)
        {
            var taken = new List<Reserve>();
            for (int o = BuddyArena.MaxOrder; o >= 0; o--)
                while (true)
                {
                    var r = new Reserve();
                    if (!_a.Pages.TryAllocate(o, node, r, exactNode: true)) break;
                    taken.Add(r);
                }
            return taken;
        }

        /// <summary>
        /// Allocations asked for on a node without pages reuse the remote slabs they were given: besides the slabs
        /// the objects need, at most min_partial (remote partial slabs are taken only above it, as in the kernel)
        /// plus a generous margin for remote_node_defrag_ratio's misses (see AllocNodeOnAFullNodeReusesTheRemoteSlabItWasGiven).
        /// </summary>
        private void CheckFullNodeSlabs(KmemCache cache, int node, int amount, long slabsMadeBefore)
        {
            if (_reserved[node] is null) return;
            long made = cache.Events.AllocSlab - slabsMadeBefore;
            int needed = (amount + cache.ObjectsPerSlab - 1) / cache.ObjectsPerSlab;
            Assert.True(made <= needed + cache.MinPartial + 10,
                $"{made} slabs made for {amount} objects asked for on full node {node} ({cache.ObjectsPerSlab} per slab, min_partial {cache.MinPartial})");
        }

        /// <summary>Cheap checks after every step: handle count, every live object's contents, freed handles refused.</summary>
        private void CheckContents()
        {
            Assert.Equal(_live.Count, _table.Count);
            var seen = new HashSet<nint>();
            foreach (long h in _live)
            {
                using (var s = _table.Access(h)) Assert.True(HandleTableChurn.Check(s.Bytes, h, _gen[h]), $"handle {h} damaged");
                Assert.True(seen.Add(_table.AddressOf(h)), $"handle {h} shares its object");
            }
            foreach (nint p in _plainLive) Assert.Equal(_plainStamp[p], *(long*)p);
            if (_freed.Count > 0)
            {
                long stale = _freed[_freed.Count - 1 - (int)(_nextGen % Math.Min(_freed.Count, 8))];
                Assert.Throws<ArgumentException>(() => _table.Free(stale));
                Assert.Throws<ArgumentException>(() => { using var s = _table.Access(stale); });
                Assert.Equal(0, _table.AddressOf(stale));
            }
        }

        /// <summary>After a flush: the statistics' per-node objects are where the model's handles are; the slabs are sound.</summary>
        private long[] CheckCounts()
        {
            var cache = _table.Cache;
            var st = cache.GetStatistics();
            Assert.Equal(0, st.CpuSlabs);
            var counts = new long[_nodes];
            foreach (long h in _live) counts[NodeOf(h)]++;
            Assert.Equal(counts, st.Nodes.Select(n => n.Objects).ToArray());
            Assert.Equal(_live.Count, st.Objects);
            Assert.Equal(st.Slabs * cache.ObjectsPerSlab, st.TotalObjects);
            Assert.All(Enumerable.Range(0, _nodes), n => Assert.Equal(0, cache.IsolatedSlabs(n)));   // every moved-from slab put back
            Assert.Empty(cache.Validate());
            return counts;
        }

        private void CheckPlainCounts()
        {
            var st = _plain.GetStatistics();
            var counts = new long[_nodes];
            foreach (nint p in _plainLive) counts[_a.Pages.NodeOf(p)]++;
            Assert.Equal(counts, st.Nodes.Select(n => n.Objects).ToArray());
            Assert.Empty(_plain.Validate());
        }

        /// <summary>After a shrink: each node's objects fill their slabs but for one partial, even on a node without free
        /// pages (compaction needs none: it moves objects only while the slabs staying have room for them).</summary>
        private void CheckShrunk()
        {
            foreach (var n in _table.Cache.GetStatistics().Nodes)
            {
                long optimal = (n.Objects + PerSlab - 1) / PerSlab;
                Assert.True(n.Slabs <= optimal + 1, $"node {n.Node}: {n.Slabs} slabs for {n.Objects} objects ({PerSlab} per slab)");
            }
        }
    }
}
