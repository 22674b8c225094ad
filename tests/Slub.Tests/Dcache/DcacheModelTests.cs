using CsCheck;
using Slub.Dcache;

namespace Slub.Tests.Dcache;

/// <summary>
/// Model-based property test of the dentry cache with Slab Movable Objects shrinking interleaved: random path
/// lookups, creates, unlinks and renames on a synthetic disk (each followed by the notification a file system
/// would send), references taken and dropped, LRU pruning, <c>shrink_dcache_sb</c>, and SMO partial shrink of the
/// <c>dentry</c> slab cache (whose isolate/migrate frees unused dentries) in both partial-shrink modes. After every
/// step the whole cache is walked and checked against the model: every hashed dentry agrees with the disk (kind,
/// negative = absent), every dentry's count is exactly the references the test holds plus its children (plus one
/// for the root), held dentries are alive, an unused dentry is hashed and on the LRU, and the counters
/// (nr_dentry, nr_unused, nr_negative) match the walk; lookups answer what the disk says.
/// </summary>
public unsafe class DcacheModelTests
{
    internal enum Op { Lookup, Resolve, Put, Get, CreateFile, CreateDir, Unlink, Rename, Invalidate, Prune, ShrinkAll, SmoShrink, SmoShrinkSeries, SmoDefragNode, ShrinkParent, Noise, SmoWindow }

    private static readonly string[] Names = ["a", "b", "c", "x"];

    // An operation: kind, two path picks, an amount.
    private static readonly Gen<(Op Op, int P, int Q, int N)> GenOp =
        Gen.Select(Gen.Int[0, 99], Gen.Int[0, int.MaxValue], Gen.Int[0, int.MaxValue], Gen.Int[1, 30]).Select((p, a, b, n) =>
        {
            Op op = p switch
            {
                < 14 => Op.Lookup, < 24 => Op.Resolve, < 32 => Op.Put, < 36 => Op.Get, < 44 => Op.CreateFile, < 49 => Op.CreateDir,
                < 57 => Op.Unlink, < 66 => Op.Rename, < 69 => Op.Invalidate, < 74 => Op.Prune, < 76 => Op.ShrinkAll,
                < 84 => Op.SmoShrink, < 87 => Op.SmoShrinkSeries, < 91 => Op.SmoDefragNode, < 93 => Op.ShrinkParent, < 96 => Op.Noise, _ => Op.SmoWindow,
            };
            return (op, a, b, n);
        });

    private static readonly Gen<(bool EvictAll, (Op Op, int P, int Q, int N)[] Ops)> GenRun = Gen.Select(Gen.Bool, GenOp.Array[1, 120]);

    [Fact]
    public void RandomDcacheOperationsWithSmoShrinkAgreeWithTheModel()
    {
        GenRun.Sample(run => new Run(run.EvictAll).Execute(run.Ops), iter: 300, threads: 1,
            print: run => $"evictAll {run.EvictAll}: " + string.Join(", ", run.Ops.Select(o => o.ToString())));
        // The runs together must have had SMO shrink free dentries, or the interleaving tested nothing.
        Assert.True(Interlocked.Read(ref s_smoFreed) > 0, "SMO shrink never freed a dentry");
    }

    private static long s_smoFreed;

    /// <summary>
    /// The same sequences with a second thread shrinking (SMO shrink, node defrag, LRU prune) while each operation
    /// runs; it is paused (a handshake, not a sleep) for the checks between operations, which need a quiet cache.
    /// </summary>
    [Fact]
    public void RandomDcacheOperationsWithAConcurrentShrinkerAgreeWithTheModel()
    {
        GenRun.Sample(run => new Run(run.EvictAll, concurrentShrinker: true).Execute(run.Ops), iter: 100, threads: 1,
            print: run => $"evictAll {run.EvictAll}: " + string.Join(", ", run.Ops.Select(o => o.ToString())));
    }

    /// <summary>A thread that shrinks the cache in rounds while resumed; <see cref="Pause"/> returns once no round is running.</summary>
    private sealed class Shrinker : IDisposable
    {
        private readonly object _gate = new();
        private readonly Thread _thread;
        private bool _paused = true, _active, _stop;
        private Exception? _failure;

        public Shrinker(DentryCache dc)
        {
            _thread = new Thread(() =>
            {
                for (int round = 0; ; round++)
                {
                    lock (_gate)
                    {
                        while (_paused && !_stop) Monitor.Wait(_gate);
                        if (_stop) return;
                        _active = true;
                    }
                    try
                    {
                        switch (round % 4)
                        {
                            case 0: dc.Cache.Shrink(); break;
                            case 1: dc.Cache.DefragmentNode(0); break;
                            case 2: dc.Prune(3); break;
                            default: dc.Cache.Shrink(DefragPolicy.EmptyAllCandidates); break;
                        }
                    }
                    catch (Exception e) { _failure ??= e; }
                    lock (_gate)
                    {
                        _active = false;
                        Monitor.PulseAll(_gate);
                    }
                }
            }) { IsBackground = true };
            _thread.Start();
        }

        public void Resume()
        {
            lock (_gate) { _paused = false; Monitor.PulseAll(_gate); }
        }

        public void Pause()
        {
            lock (_gate)
            {
                _paused = true;
                while (_active) Monitor.Wait(_gate);
            }
            if (_failure is not null) throw new InvalidOperationException("the shrinker thread failed", _failure);
        }

        public void Dispose()
        {
            lock (_gate) { _stop = true; Monitor.PulseAll(_gate); }
            _thread.Join();
        }
    }

    internal sealed class Run(bool evictAll, bool concurrentShrinker = false)
    {
        private readonly string _root = Path.GetTempPath().TrimEnd('/');
        private readonly Dictionary<string, InodeKind> _disk = new()   // relative path → kind; the root is implied
        {
            ["a"] = InodeKind.Directory, ["b"] = InodeKind.Directory, ["a/x"] = InodeKind.File,
            ["a/c"] = InodeKind.Directory, ["a/c/x"] = InodeKind.File, ["b/b"] = InodeKind.Directory,
        };
        private readonly List<Dentry> _held = new();                     // one entry per reference the test holds
        private DentryCache _dc = null!;
        private int _noise;

        /// <summary>Paths of one to three components over a small alphabet, so operations keep meeting each other.</summary>
        private static string PathOf(int pick)
        {
            int depth = pick % 3 + 1;
            pick /= 3;
            var parts = new string[depth];
            for (int i = 0; i < depth; i++) { parts[i] = Names[pick % Names.Length]; pick /= Names.Length; }
            return string.Join('/', parts);
        }

        private static string ParentOf(string rel) => rel.LastIndexOf('/') is var k && k < 0 ? "" : rel[..k];

        private InodeKind Disk(string rel) => rel.Length == 0 ? InodeKind.Directory : _disk.GetValueOrDefault(rel, InodeKind.Negative);

        private InodeKind Probe(string full)
        {
            Assert.StartsWith(_root + "/", full);
            return Disk(full[(_root.Length + 1)..]);
        }

        public void Execute((Op Op, int P, int Q, int N)[] ops)
        {
            using var a = TestAllocator.Create();
            _dc = new DentryCache(_root, a, new DentryCacheOptions
            {
                Probe = Probe, HashBits = 8, PartialShrink = evictAll ? PartialShrinkMode.EvictAllUnused : PartialShrinkMode.WholeSlabsOnly,
            });
            _dc.Cache.DefragUsedRatio = 100;   // every partial slab is a candidate of a node defrag
            using (var shrinker = concurrentShrinker ? new Shrinker(_dc) : null)
            {
                foreach (var (op, p, q, n) in ops)
                {
                    shrinker?.Resume();
                    Apply(op, p, q, n);
                    shrinker?.Pause();
                    Check();
                }
            }
            foreach (var d in _held) _dc.Put(d);
            _held.Clear();
            Check();
            foreach (var rel in _disk.Keys.ToList()) Assert.Equal(_disk[rel], _dc.LookupPath(rel).Kind);
            Check();
            _dc.ShrinkAll();
            Check();
            Assert.Equal(1, _dc.Count);   // the root only: nothing leaked a reference
            var st = _dc.GetStatistics();
            Assert.Equal(0, st.Unused);
            Assert.Equal(0, st.Negative);
            Interlocked.Add(ref s_smoFreed, _dc.Cache.Defrag.ObjectsFreed);
            _dc.Cache.Shrink();
            Assert.Equal(1, _dc.Cache.GetStatistics().Objects);
            Assert.Empty(_dc.Cache.Validate());
            _dc.Dispose();
        }

        private void Apply(Op op, int p, int q, int n)
        {
            string path = PathOf(p), other = PathOf(q);
            switch (op)
            {
                case Op.Lookup:
                    Assert.Equal(Disk(path), _dc.LookupPath(path).Kind);
                    break;
                case Op.Resolve:
                {
                    var d = _dc.Resolve(path, out var r);
                    Assert.Equal(Disk(path), r.Kind);
                    _held.Add(d);
                    break;
                }
                case Op.Put:
                    if (_held.Count == 0) break;
                    {
                        int k = q % _held.Count;
                        _dc.Put(_held[k]);
                        _held.RemoveAt(k);
                    }
                    break;
                case Op.Get:
                    if (_held.Count > 0) _held.Add(_dc.Get(_held[q % _held.Count]));
                    break;
                case Op.CreateFile:
                case Op.CreateDir:
                    if (Disk(path) != InodeKind.Negative || Disk(ParentOf(path)) != InodeKind.Directory) break;
                    _disk[path] = op == Op.CreateDir ? InodeKind.Directory : InodeKind.File;
                    _dc.NotifyCreated(path);
                    break;
                case Op.Unlink:
                    if (Disk(path) == InodeKind.Negative || _disk.Keys.Any(k => k.StartsWith(path + "/", StringComparison.Ordinal))) break;
                    _disk.Remove(path);
                    _dc.NotifyDeleted(path);
                    break;
                case Op.Rename:
                {
                    // rename(2): the source exists, the target's parent is a directory, the target is absent or a
                    // file replaced by a file, and a directory does not move into itself.
                    var kind = Disk(path);
                    var target = Disk(other);
                    if (kind == InodeKind.Negative || path == other || Disk(ParentOf(other)) != InodeKind.Directory) break;
                    if (other.StartsWith(path + "/", StringComparison.Ordinal)) break;
                    if (target == InodeKind.Directory || (target == InodeKind.File && kind != InodeKind.File)) break;
                    var moved = _disk.Where(e => e.Key == path || e.Key.StartsWith(path + "/", StringComparison.Ordinal)).ToList();
                    foreach (var e in moved) _disk.Remove(e.Key);
                    foreach (var e in moved) _disk[other + e.Key[path.Length..]] = e.Value;
                    _dc.NotifyRenamed(path, other);
                    break;
                }
                case Op.Invalidate:
                    _dc.Invalidate(path);
                    break;
                case Op.Prune:
                    _dc.Prune(n);
                    break;
                case Op.ShrinkAll:
                    _dc.ShrinkAll();
                    break;
                case Op.SmoShrink:
                    _dc.Cache.Shrink();
                    break;
                case Op.SmoShrinkSeries:
                    _dc.Cache.Shrink(DefragPolicy.EmptyAllCandidates);
                    break;
                case Op.SmoDefragNode:
                    _dc.Cache.DefragmentNode(0);
                    break;
                case Op.ShrinkParent:
                    if (_held.Count > 0) _dc.ShrinkParent(_held[q % _held.Count]);
                    break;
                case Op.SmoWindow:
                {
                    // The SMO callbacks called directly on one slab's dentries, with another operation between
                    // isolate and migrate (in the core that window is open too: the slab is frozen, the dentry
                    // cache is not): a dentry isolated as unused may gain a reference, be unlinked, renamed or
                    // killed by someone else before migrate shrinks the list.
                    var slabs = LiveDentries().GroupBy(x => x & ~(nint)((4096 << _dc.Cache.Order) - 1)).ToList();
                    var vector = slabs[p % slabs.Count].ToArray();
                    var m = _dc.Cache.Mobility!;
                    var state = m.Isolate!(_dc.Cache, vector);
                    Op inner = WindowOps[n % WindowOps.Length];
                    Apply(inner, q, p, n);
                    m.Migrate(_dc.Cache, vector, 0, state, new MigrateResult[vector.Length]);
                    break;
                }
                case Op.Noise:
                    // Misses under the root or a: negative dentries that fill slabs for the shrinkers to thin out.
                    for (int i = 0; i < n * 2; i++)
                    {
                        string name = (i % 2 == 0 ? "" : "a/") + "z" + _noise++ % 97;
                        Assert.Equal(Disk(name), _dc.LookupPath(name).Kind);
                    }
                    break;
            }
        }

        private static readonly Op[] WindowOps =
            [Op.Lookup, Op.Resolve, Op.Put, Op.Get, Op.CreateFile, Op.Unlink, Op.Rename, Op.Invalidate, Op.Prune, Op.ShrinkParent, Op.Noise, Op.SmoShrink];

        private List<nint> LiveDentries()
        {
            var all = new List<nint>();
            var stack = new Stack<nint>();
            stack.Push(_dc.Root.Address);
            while (stack.Count > 0)
            {
                nint p = stack.Pop();
                all.Add(p);
                for (nint c = ((DentryData*)p)->Children; c != 0; c = ((DentryData*)c)->SibNext) stack.Push(c);
            }
            return all;
        }

        /// <summary>Walks every dentry of the cache (all are linked under the root) and checks it against the model.</summary>
        private void Check()
        {
            var refs = new Dictionary<nint, int>();
            foreach (var d in _held) refs[d.Address] = refs.GetValueOrDefault(d.Address) + 1;
            var seen = new HashSet<nint>();
            long negative = 0, unused = 0;
            var stack = new Stack<nint>();
            stack.Push(_dc.Root.Address);
            while (stack.Count > 0)
            {
                nint p = stack.Pop();
                Assert.True(seen.Add(p), $"dentry 0x{p:x} reached twice");
                var d = (DentryData*)p;
                var flags = (DentryFlags)d->Flags;
                int children = 0;
                for (nint c = d->Children; c != 0; c = ((DentryData*)c)->SibNext)
                {
                    Assert.Equal(p, ((DentryData*)c)->Parent);
                    children++;
                    stack.Push(c);
                }
                bool root = p == _dc.Root.Address;
                int expected = refs.GetValueOrDefault(p) + children + (root ? 1 : 0);
                var dentry = new Dentry(p);
                Assert.True(expected == d->Count, $"{dentry}: count {d->Count}, expected {expected} ({refs.GetValueOrDefault(p)} held, {children} children)");
                Assert.Equal(DentryFlags.None, flags & (DentryFlags.Killed | DentryFlags.ShrinkList));
                Assert.NotEqual(InodeKind.Unknown, d->Kind);
                if (d->Kind == InodeKind.Negative) negative++;
                if ((flags & DentryFlags.LruList) != 0) unused++;
                if (d->Count == 0)
                {
                    // Unused: cached (an unhashed unused dentry would be unreachable and never freed) and on the LRU.
                    Assert.True(dentry.IsHashed, $"{dentry}: unused but unhashed");
                    Assert.True((flags & DentryFlags.LruList) != 0, $"{dentry}: unused but not on the LRU");
                }
                if (!root && dentry.IsHashed && PathIfHashed(p) is { } rel)
                    Assert.True(Disk(rel) == d->Kind, $"{dentry} at '{rel}': the disk says {Disk(rel)}");
            }
            foreach (var h in refs.Keys) Assert.True(seen.Contains(h), $"held dentry 0x{h:x} is no longer in the tree");
            Assert.Equal(seen.Count, _dc.Count);
            var st = _dc.GetStatistics();
            Assert.Equal(negative, st.Negative);
            Assert.Equal(unused, st.Unused);
            Assert.Equal(unused, _dc.LruSnapshot().Count);
        }

        /// <summary>The path of a dentry whose ancestors are all hashed (reachable by a walk), else null.</summary>
        private string? PathIfHashed(nint p)
        {
            var parts = new List<string>();
            for (nint a = p; a != _dc.Root.Address; a = ((DentryData*)a)->Parent)
            {
                var d = new Dentry(a);
                if (!d.IsHashed) return null;
                if (a != p && d.Kind != InodeKind.Directory) return null;
                parts.Add(d.Name);
            }
            parts.Reverse();
            return string.Join('/', parts);
        }
    }
}
