using System.Runtime.CompilerServices;
using Slub.Rcu;

namespace Slub.XArray;

/// <summary>
/// The <c>xa_node</c> slab cache of one <see cref="SlabAllocator"/> (the series' patch 9), made movable with a
/// migrate callback (patch 10), and the deferred-reclamation domain its nodes are freed through.
/// </summary>
/// <remarks>
/// <para><b>Migration</b>, per object of the slab being emptied: read the node's <c>array</c> id; retired nodes
/// are reported <see cref="MigrateResult.Freed"/> (the batch's grace period frees them), unowned ones (just
/// allocated, not yet linked) <see cref="MigrateResult.Later"/>. Otherwise allocate the replacement on the
/// requested NUMA node first (no lock held), resolve the id through <see cref="XArrayRegistry"/> (a strong
/// reference: the array cannot go away), take the array's lock, and re-validate everything under it: the array is
/// not disposed, the node still names it, and the node is linked (its parent's slot or the head points at it —
/// preallocated nodes are not). Then <see cref="XArray.MoveNode"/> copies it, redirects the parent slot or head
/// and every child's parent, turns the old slots into retry entries and retires the old node. After the whole
/// batch, one <see cref="EpochReclaimer.Synchronize"/> (not one per object) makes every retired node go back to
/// the slab before the callback returns, so the slab can be freed.</para>
/// <para>Defragmenting this cache (<see cref="KmemCache.Shrink()"/>) from inside a read section of
/// <see cref="Reclaimer"/> fails (the grace period would wait for the caller).</para>
/// </remarks>
public sealed unsafe class XaNodeCache
{
    /// <summary>The cache's name.</summary>
    public const string CacheName = "xa_node";

    private static readonly ConditionalWeakTable<SlabAllocator, XaNodeCache> s_caches = new();
    private static readonly Lock s_create = new();

    private readonly Action<nint> _free;

    /// <summary>The slab cache.</summary>
    public KmemCache Cache { get; }

    /// <summary>Grace-period domain of every array using this cache.</summary>
    public EpochReclaimer Reclaimer { get; } = new();

    /// <summary>The leaf-directory blocks of every array using this cache, kept type-stable (see <see cref="XaDirectoryPool"/>).</summary>
    internal XaDirectoryPool Directories { get; } = new();

    /// <summary>Test hook: runs after migration resolved a node's array and before it takes the array's lock.</summary>
    internal static Action<XArray>? BeforeLockHook;

    private XaNodeCache(SlabAllocator allocator)
    {
        Cache = allocator.CreateCache(CacheName, XaNode.Size, 8, SlabFlags.ReclaimAccount, static p => XaNode.Clear((XaNode*)p));
        Cache.SetupMobility(null, Migrate);
        var cache = Cache;
        _free = p =>
        {
            if (cache.Allocator.IsDisposed) return;   // a node retired before the memory went: nothing left to free
            var n = (XaNode*)p;
            // Back to the constructor's state (null slots), which NewNode relies on: nodes retired with entries
            // (retry entries, Count kept) are cleared now, after their grace period; empty ones already are.
            if (n->Count != 0) XaNode.Clear(n);
            Volatile.Write(ref n->Array, XaNode.NoArray);
            cache.Free(p);
        };
    }

    /// <summary>The <c>xa_node</c> cache of <paramref name="allocator"/>, created on first use.</summary>
    public static XaNodeCache For(SlabAllocator allocator)
    {
        ArgumentNullException.ThrowIfNull(allocator);
        if (s_caches.TryGetValue(allocator, out var c)) return c;
        lock (s_create)
        {
            if (!s_caches.TryGetValue(allocator, out c))
            {
                c = new XaNodeCache(allocator);
                s_caches.Add(allocator, c);
                var pool = c.Directories;
                allocator.OnDispose(() =>
                {
                    XArray.DetachAll(allocator);   // its arrays' nodes go with the memory
                    pool.Dispose();                // and the directory blocks no reader can reach any more
                });
            }
            return c;
        }
    }

    internal void Retire(XaNode* n) => Reclaimer.Retire((nint)n, _free);

    /// <summary>Nodes allocated from the cache by array operations (cursor preallocation included), since creation.</summary>
    public long NodesAllocated => Volatile.Read(ref _allocated);
    private long _allocated;
    internal void CountAllocation() => Interlocked.Increment(ref _allocated);

    /// <summary>Nodes moved by migration, since creation.</summary>
    public long NodesMoved => Volatile.Read(ref _moved);
    private long _moved;

    /// <summary>The migrate callback (also callable directly, e.g. by tests, for any set of node addresses).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // runs in defrag bursts: see MigrateCallback
    internal void Migrate(KmemCache cache, ReadOnlySpan<nint> objects, int node, object? state, Span<MigrateResult> results)
    {
        nint spare = 0;
        bool retired = false;
        try
        {
            for (int i = 0; i < objects.Length; i++)
            {
                nint obj = objects[i];
                results[i] = obj == 0 ? MigrateResult.Skipped : MoveOne((XaNode*)obj, node, ref spare, ref retired);
            }
        }
        finally
        {
            if (spare != 0) cache.Free(spare);
            // One grace period for the whole batch: afterwards every node retired so far is back in its slab.
            if (retired) Reclaimer.SynchronizeQuietly();   // a user's callback failing is not this migration's failure
        }
    }

    private MigrateResult MoveOne(XaNode* old, int numaNode, ref nint spare, ref bool retired)
    {
        long id = Volatile.Read(ref old->Array);
        if (id == XaNode.RetiredArray) { retired = true; return MigrateResult.Freed; }
        if (id == XaNode.NoArray) return MigrateResult.Later;
        if (spare == 0)
        {
            spare = Cache.TryAllocNode(numaNode);
            if (spare == 0) return MigrateResult.Later;
        }
        var xa = XArrayRegistry.Resolve(id);
        if (xa is null) return Gone(old, ref retired);
        BeforeLockHook?.Invoke(xa);
        lock (xa.WriterLock)
        {
            if (xa.IsDisposed || Volatile.Read(ref old->Array) != id) return Gone(old, ref retired);
            if (!xa.IsLinked(old)) return MigrateResult.Later;   // preallocated by a cursor: its owner holds it
            XaNode* replacement = (XaNode*)spare;
            spare = 0;
            xa.MoveNode(old, replacement);
            retired = true;
            Interlocked.Increment(ref _moved);
            return MigrateResult.Moved;
        }
    }

    private static MigrateResult Gone(XaNode* old, ref bool retired)
    {
        if (Volatile.Read(ref old->Array) != XaNode.RetiredArray) return MigrateResult.Later;
        retired = true;
        return MigrateResult.Freed;
    }
}
