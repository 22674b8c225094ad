using System.Runtime.CompilerServices;
using Slub.Pages;

namespace Slub;

/// <summary>Runs once for each object when its slab is created (not on every allocation): the object keeps its constructed state while free.</summary>
public delegate void ObjectConstructor(nint obj);

/// <summary>
/// A cache of equal-sized objects in native memory: the kernel's <c>struct kmem_cache</c>.
/// </summary>
/// <remarks>
/// <para><b>Thread-safety.</b> <see cref="Alloc"/>, <see cref="Free"/>, the bulk and node variants,
/// <see cref="Shrink()"/>, <see cref="Validate"/>, statistics and defragmentation may all run concurrently
/// from any threads; any thread may free an object any other thread allocated. <see cref="SlabAllocator.DestroyCache"/> must
/// not race with other operations on the same cache.</para>
/// <para><b>Fast path.</b> An allocation takes the lock of the current CPU's <see cref="KmemCacheCpu"/> and
/// pops its private free list; a free onto the CPU slab pushes there. Everything else (refilling, remote
/// frees, list moves) is the slow path, modelled on SLUB's <c>___slab_alloc</c> and <c>__slab_free</c>.
/// Caches with debug flags take the slow path always, as under <c>slub_debug</c>.</para>
/// </remarks>
public sealed unsafe partial class KmemCache
{
    /// <summary>Bounds of min_partial (MIN_PARTIAL, MAX_PARTIAL).</summary>
    public const int MinPartialFloor = 5, MaxPartial = 10;

    private readonly SlabAllocator _allocator;
    private readonly PageAllocator _pages;
    private readonly KmemCacheCpu[] _cpus;
    private readonly KmemCacheNode[] _nodes;
    private readonly int _fpOffset;
    private readonly int _size;
    private readonly bool _debug;           // any slub_debug flag: no per-CPU fast path
    private readonly bool _poison;          // __OBJECT_POISON: poison flag and no ctor/RCU
    private readonly ulong _sizeReciprocal; // for exact object-boundary checks without a divide
    private bool _trackFull;                // keep full slabs on a list (store_user, or a debug cache with mobility)
    private bool _destroyed;

    /// <summary>The cache's name, as in /sys/kernel/slab. When the name it was created under is destroyed while
    /// other caches are merged into it, the first alias becomes the name.</summary>
    public string Name { get; internal set; }

    /// <summary>Flags in force (creation flags plus forced slub_debug flags).</summary>
    public SlabFlags Flags { get; }

    /// <summary>Slab layout: slot size, order, objects per slab, metadata offsets.</summary>
    public CacheGeometry Geometry { get; private set; }

    /// <summary>The object constructor, or null.</summary>
    public ObjectConstructor? Constructor { get; }

    /// <summary>The allocator this cache belongs to.</summary>
    public SlabAllocator Allocator => _allocator;

    /// <summary>Requested object size (sysfs <c>object_size</c>).</summary>
    public int ObjectSize => Geometry.ObjectSize;

    /// <summary>Bytes per slot including metadata (sysfs <c>slab_size</c>).</summary>
    public int SlabSize => _size;

    /// <summary>Objects per slab (sysfs <c>objs_per_slab</c>).</summary>
    public int ObjectsPerSlab => Geometry.ObjectsPerSlab;

    /// <summary>Slab order (sysfs <c>order</c>).</summary>
    public int Order => Geometry.Order;

    /// <summary>Empty slabs kept on a node's partial list before further empties are freed (sysfs <c>min_partial</c>).</summary>
    public int MinPartial { get; internal set; }

    /// <summary>
    /// Free objects a CPU may keep on its partial slabs before they go back to the node (sysfs <c>cpu_partial</c>):
    /// an unsigned int, as the kernel's <c>s-&gt;cpu_partial</c>, so any value <c>kstrtouint</c> accepts is kept as written.
    /// Read-only here: it changes through the attribute tree (<c>&lt;cache&gt;/cpu_partial</c>), whose write also flushes
    /// every CPU, as the kernel's <c>cpu_partial_store</c> does (see <see cref="SetCpuPartial"/>). No public setter, because
    /// a property assignment that walks every CPU's lock and drains every thread's magazine would hide a flush.
    /// </summary>
    public uint CpuPartial { get; private set; }

    /// <summary>
    /// The kernel's <c>cpu_partial_store</c> after parsing: sets <see cref="CpuPartial"/>, then flushes every CPU's slab
    /// and per-CPU partial chain (and every thread's magazine) back to the node lists, as its <c>flush_all(s)</c> does, so
    /// no CPU keeps more than the new limit allows. The flush is <see cref="FlushAll"/>: thread-safe, each CPU under its own
    /// lock, and threads that keep allocating meanwhile simply refill under the new limit. Throws
    /// <see cref="ObjectDisposedException"/> and changes nothing once the allocator is disposed.
    /// </summary>
    internal void SetCpuPartial(uint objects)
    {
        _allocator.ThrowIfDisposed(Name);
        CpuPartial = objects;
        FlushAll();
    }

    /// <summary>
    /// Per-CPU partial slabs allowed when <see cref="SlabOptions.CpuPartialCountsSlabs"/> is on: ceil(2 × <see cref="CpuPartial"/> /
    /// objects per slab), the kernel's <c>cpu_partial_slabs</c>, capped at <see cref="int.MaxValue"/>. Computed in 64 bits:
    /// the kernel's <c>DIV_ROUND_UP(nr_objects * 2, …)</c> is 32-bit unsigned arithmetic, which wraps from 2^31 on and turns
    /// a huge <c>cpu_partial</c> into a tiny slab limit; here a huge value means a practically unlimited chain.
    /// </summary>
    public int CpuPartialSlabs => (int)Math.Min((2L * CpuPartial + ObjectsPerSlab - 1) / ObjectsPerSlab, int.MaxValue);

    /// <summary>
    /// The kernel's <c>set_cpu_partial</c> default for a slot of <paramref name="size"/> bytes. The values go with the
    /// per-CPU partial rule: Linux 5.2 limits the free objects on a CPU's partial slabs (2, 6, 13 or 30 objects for
    /// slots of at least a page, 1 KiB, 256 bytes, or smaller); Linux 5.16, which limits the slabs instead
    /// (<see cref="CpuPartialSlabs"/>, assuming half-full slabs), raised them to 6, 24, 52 and 120 in the same series.
    /// Mixing the rule of one with the values of the other would let a CPU keep four times the free objects 5.2 did.
    /// Debug caches have no per-CPU partial slabs (0).
    /// </summary>
    internal static uint DefaultCpuPartial(int size, bool debug, bool countsSlabs)
    {
        if (debug) return 0;
        int tier = size >= OsMemory.PageSize ? 0 : size >= 1024 ? 1 : size >= 256 ? 2 : 3;
        return countsSlabs ? tier switch { 0 => 6u, 1 => 24u, 2 => 52u, _ => 120u }
                           : tier switch { 0 => 2u, 1 => 6u, 2 => 13u, _ => 30u };
    }

    /// <summary>Percent chance (0..100) to take partial slabs from other nodes before allocating a new slab (sysfs <c>remote_node_defrag_ratio</c>).</summary>
    public int RemoteNodeDefragRatio { get; internal set; } = 100;

    /// <summary>Names this cache answers to besides <see cref="Name"/> (caches merged into it).</summary>
    public IReadOnlyList<string> AliasNames => _aliasNames;
    internal readonly List<string> _aliasNames = new();

    /// <summary>Number of caches merged into this one (sysfs <c>aliases</c>).</summary>
    public int Aliases => _aliasNames.Count;

    internal KmemCache(SlabAllocator allocator, string name, CacheGeometry geometry, SlabFlags flags, ObjectConstructor? ctor)
    {
        _allocator = allocator;
        _pages = allocator.Pages;
        Name = name;
        Flags = flags;
        Geometry = geometry;
        Constructor = ctor;
        _size = geometry.Size;
        _fpOffset = geometry.FreePointerOffset;
        _debug = (flags & (SlabFlags.DebugFlags | SlabFlags.Trace)) != 0;
        _poison = (flags & SlabFlags.Poison) != 0 && ctor is null && (flags & SlabFlags.TypesafeByRcu) == 0;
        _trackFull = (flags & SlabFlags.StoreUser) != 0;
        _failSlab = (flags & SlabFlags.FailSlab) != 0;
        _sizeReciprocal = ulong.MaxValue / (ulong)_size + 1;
        MinPartial = Math.Clamp(System.Numerics.BitOperations.Log2((uint)_size) / 2, MinPartialFloor, MaxPartial);
        CpuPartial = DefaultCpuPartial(_size, _debug, allocator.Options.CpuPartialCountsSlabs);
        var topo = allocator.Topology;
        _nodes = new KmemCacheNode[topo.NodeCount];
        for (int n = 0; n < _nodes.Length; n++) _nodes[n] = new KmemCacheNode(n);
        _cpus = new KmemCacheCpu[topo.CpuCount];
        for (int c = 0; c < _cpus.Length; c++) _cpus[c] = new KmemCacheCpu(c, topo.NodeOfCpu(c));
    }

    /// <summary>
    /// This cache's fault-injection switch (the kernel's <c>SLAB_FAILSLAB</c>, sysfs <c>failslab</c>): with a
    /// rule's <see cref="FaultRule.CacheFilter"/> on, only caches whose switch is on have allocations failed.
    /// </summary>
    public bool FailSlab
    {
        get => Volatile.Read(ref _failSlab);
        set => Volatile.Write(ref _failSlab, value);
    }
    private bool _failSlab;

    /// <summary>True if any debug flag is on (every operation takes the slow, checked path).</summary>
    public bool IsDebug => _debug;

    internal bool TracksFullSlabs => _trackFull;
    internal KmemCacheNode[] Nodes => _nodes;
    internal KmemCacheCpu[] Cpus => _cpus;

    // ---------------------------------------------------------------- public allocation API

    /// <summary>Allocates an object. Throws <see cref="SlabOutOfMemoryException"/> when no memory is left, and
    /// <see cref="ObjectDisposedException"/> once the cache is destroyed or its allocator disposed (so do all
    /// allocation and free variants).</summary>
    /// <remarks>Thread-safe. Returns memory that is either constructed (ctor caches) or holds whatever the previous user left.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public nint Alloc()
    {
        nint obj = TryAlloc();
        if (obj == 0) ThrowOutOfMemory(-1);
        return obj;
    }

    /// <summary>Allocates an object, or returns 0 when no memory is left. Thread-safe.</summary>
    /// <remarks>The fast path pops this thread's magazine with no atomic instruction (see <see cref="ThreadMagazine"/>).</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public nint TryAlloc()
    {
        var m = CurrentMagazine();
        if (m is not null)
        {
            Volatile.Write(ref m.Busy, 1);
            if (Volatile.Read(ref m.FlushRequest) == 0 && m.Count > 0)
            {
                nint obj = m.Slots[--m.Count];
                Volatile.Write(ref m.Busy, 0);
                return obj;
            }
            Volatile.Write(ref m.Busy, 0);
        }
        return _debug ? AllocFrom(_cpus[_allocator.CurrentCpu()], -1) : AllocMagazineSlow();
    }

    /// <summary>The fast path: pop the CPU free list under the CPU lock (node -1: any node).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private nint AllocFrom(KmemCacheCpu c, int node)
    {
        SpinLockWord.Enter(ref c.LockWord);
        nint obj = c.Freelist;
        if (obj != 0 && (node < 0 || c.Slab!.Node == node))
        {
            c.Freelist = *(nint*)(obj + _fpOffset);
            SpinLockWord.Exit(ref c.LockWord);
            return obj;
        }
        return AllocSlow(c, node);
    }

    /// <summary>Allocates an object on NUMA node <paramref name="node"/> (-1: any), as <c>kmem_cache_alloc_node</c>. Falls back to other nodes only when the node has no memory left. Thread-safe.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="node"/> is not -1 or a node of the allocator (so do <see cref="TryAllocNode"/>, <see cref="AllocBulk"/> and <see cref="TryAllocOnCpu"/>).</exception>
    public nint AllocNode(int node)
    {
        nint obj = TryAllocNode(node);
        if (obj == 0) ThrowOutOfMemory(node);
        return obj;
    }

    /// <summary>Like <see cref="AllocNode"/> but returns 0 on failure. Thread-safe.</summary>
    /// <remarks>Inside a migrate callback, on the defragmenting thread, replacements for this cache on the
    /// run's target node come from a target slab the core reserved (see <see cref="MigrateCallback"/>).</remarks>
    public nint TryAllocNode(int node)
    {
        if ((uint)(node + 1) > (uint)_nodes.Length) ThrowNoNode(node);
        if (Volatile.Read(ref _migrationRuns) != 0 && MigrationContext.Current is { } ctx && ctx.Cache == this && (node < 0 || node == ctx.Node) && TakeReserved(ctx) is var obj && obj != 0)
            return obj;
        return AllocFrom(_cpus[_allocator.CurrentCpu()], node);
    }

    /// <summary>Allocates as if running on CPU <paramref name="cpu"/> (for simulations such as trace replay). Thread-safe.</summary>
    public nint TryAllocOnCpu(int cpu, int node = -1)
    {
        if ((uint)cpu >= (uint)_cpus.Length) throw new ArgumentOutOfRangeException(nameof(cpu), cpu, $"CPUs: 0..{_cpus.Length - 1}");
        if ((uint)(node + 1) > (uint)_nodes.Length) ThrowNoNode(node);
        return AllocFrom(_cpus[cpu], node);
    }

    /// <summary>
    /// Fills <paramref name="objects"/> with new objects (<c>kmem_cache_alloc_bulk</c>), on NUMA node
    /// <paramref name="node"/> (-1: any; another node only when that one has no memory left). Returns how many
    /// were allocated: all, or fewer only when memory ran out. Thread-safe.
    /// </summary>
    /// <remarks>Inside a migrate callback, on the defragmenting thread, for this cache and the run's target node
    /// (or -1), the objects are the reserved target slab's free slots taken in one pass — the cheap way to get a
    /// batch's replacements: one look-up of the run for the batch instead of one per <see cref="TryAllocNode"/>
    /// (see <see cref="MigrateCallback"/>).</remarks>
    public int AllocBulk(Span<nint> objects, int node = -1) => AllocBulkCore(objects, node, pace: false, out _);

    /// <summary>
    /// <see cref="AllocBulk"/>; with <paramref name="pace"/> (<see cref="MigrationReplacements"/>) on a
    /// defrag run's thread the slots come from the reserved target without their prefetches, and
    /// <paramref name="paced"/> is the run's context, whose prefetches the replacements then issue one by one as they
    /// are handed out (see <see cref="PaceMigration"/>). Otherwise <paramref name="paced"/> is null.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // once per migrate call: see DefragNode
    internal int AllocBulkCore(Span<nint> objects, int node, bool pace, out MigrationContext? paced)
    {
        paced = null;
        if ((uint)(node + 1) > (uint)_nodes.Length) ThrowNoNode(node);
        int i = 0;
        if (Volatile.Read(ref _migrationRuns) != 0 && MigrationContext.Current is { } ctx && ctx.Cache == this && (node < 0 || node == ctx.Node))
        {
            if (pace && ctx.Paced) paced = ctx;
            i = TakeReservedBulk(ctx, objects, prefetch: paced is null);
            if (i == objects.Length) return i;
        }
        return AllocBulkRest(objects, i, node);
    }

    /// <summary>
    /// <see cref="AllocBulk"/> past the reserved target's slots (<paramref name="done"/> objects are in already).
    /// When a constructor throws, every object of the call goes back before the exception leaves: the caller
    /// cannot free objects it never learnt about.
    /// </summary>
    private int AllocBulkRest(Span<nint> objects, int done, int node)
    {
        int i = done;
        try
        {
            if (node < 0) return i + AllocBulkFromCpus(objects[i..]);   // gives its own objects back when it throws
            for (; i < objects.Length; i++)
            {
                nint obj = AllocFrom(_cpus[_allocator.CurrentCpu()], node);
                if (obj == 0) break;
                objects[i] = obj;
            }
            return i;
        }
        catch
        {
            FreeBulkToCpus(objects[..i]);
            throw;
        }
    }

    /// <summary>Bulk allocation from the per-CPU layer (the magazine refill uses it too).</summary>
    private int AllocBulkFromCpus(Span<nint> objects)
    {
        int i = 0;
        while (i < objects.Length)
        {
            var c = _cpus[_allocator.CurrentCpu()];
            SpinLockWord.Enter(ref c.LockWord);
            nint obj = c.Freelist;
            int fp = _fpOffset;
            while (obj != 0 && i < objects.Length)
            {
                objects[i++] = obj;
                obj = *(nint*)(obj + fp);
            }
            c.Freelist = obj;
            if (i == objects.Length) { SpinLockWord.Exit(ref c.LockWord); break; }
            nint one = AllocSlowInBulk(c, objects[..i]);  // refills and releases the lock
            if (one == 0) break;
            objects[i++] = one;
        }
        return i;
    }

    /// <summary>
    /// The refill of a bulk allocation (CPU lock held; released on return). When a constructor throws, the objects
    /// the batch already took (<paramref name="taken"/>) go back first: a magazine refill would otherwise lose them
    /// for good, counted in use with no owner.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private nint AllocSlowInBulk(KmemCacheCpu c, ReadOnlySpan<nint> taken)
    {
        try { return AllocSlow(c, -1); }
        catch
        {
            FreeBulkToCpus(taken);
            throw;
        }
    }

    /// <summary>Frees an object allocated from this cache. Thread-safe; any thread may free any object.</summary>
    /// <exception cref="InvalidFreeException">The pointer is not an allocated object of this cache (and, on debug caches, double frees and red-zone damage).</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Free(nint obj)
    {
        if (_debug) { FreeTo(_cpus[_allocator.CurrentCpu()], obj, SlabOf(obj)); return; }
        // The pointer must be an object boundary of this cache before it is parked anywhere. Objects of a
        // slab being emptied by defragmentation (a migrate callback freeing the old copy) go straight back
        // to their slab, or the slab could not be freed.
        var slab = SlabOf(obj);
        var m = CurrentMagazine();
        if (m is not null && slab.List != SlabList.Isolated)
        {
            Volatile.Write(ref m.Busy, 1);
            // Read the magazine only after the request: a flush may have drained it between our Busy store
            // and this check, and then only the acquiring read of FlushRequest makes its Count = 0 visible.
            if (Volatile.Read(ref m.FlushRequest) == 0 && m.Count is var n && n < m.Slots.Length)
            {
                if (n > 0 && m.Slots[n - 1] == obj)
                {
                    Volatile.Write(ref m.Busy, 0);
                    throw new InvalidFreeException(Name, obj, $"kmem_cache_free({Name}): double free of object 0x{obj:x} (it is the last object freed on this thread)");
                }
                m.Slots[n] = obj;
                m.Count = n + 1;
                Volatile.Write(ref m.Busy, 0);
                return;
            }
            Volatile.Write(ref m.Busy, 0);
        }
        if (slab.List == SlabList.Isolated) FreeIsolated(slab, obj);
        else FreeMagazineSlow(obj, slab);
    }

    /// <summary>Frees as if running on CPU <paramref name="cpu"/> (for simulations). Thread-safe.</summary>
    public void FreeOnCpu(int cpu, nint obj)
    {
        if ((uint)cpu >= (uint)_cpus.Length) throw new ArgumentOutOfRangeException(nameof(cpu), cpu, $"CPUs: 0..{_cpus.Length - 1}");
        FreeTo(_cpus[cpu], obj, SlabOf(obj));
    }

    /// <summary>
    /// A free into a slab the defragmenter has isolated (typically migrate freeing the old copy): while the
    /// slab stays frozen and isolated, the slot just goes back onto its free list under the slab lock — no
    /// CPU lock, no list work. Returns false if the slab was put back meanwhile (the caller takes the CPU path).
    /// </summary>
    private bool FreeToIsolated(Slab slab, nint obj)
    {
        SpinLockWord.Enter(ref slab.LockWord);
        if (!slab.Frozen || slab.List != SlabList.Isolated)
        {
            SpinLockWord.Exit(ref slab.LockWord);
            return false;
        }
        nint prior = slab.Freelist;
        // The map is checked too: an isolated slab may be an emptied source (every slot free, free list
        // empty, see EmptyWholeSource), where the head check alone would let a double free through.
        if (prior == obj || (slab.FreeMap is not null && slab.IsMarkedFree(slab.SlotOf(obj))))
        {
            SpinLockWord.Exit(ref slab.LockWord);
            throw new InvalidFreeException(Name, obj, $"kmem_cache_free({Name}): double free of object 0x{obj:x} (already free in {slab})");
        }
        *(nint*)(obj + _fpOffset) = prior;
        slab.Freelist = obj;
        slab.Inuse--;
        slab.MarkFree(obj);
        SpinLockWord.Exit(ref slab.LockWord);
        return true;
    }

    /// <summary>The CPU path: push onto the CPU free list when the object belongs to the CPU slab. <paramref name="slab"/> is <c>SlabOf(obj)</c>, already checked.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void FreeTo(KmemCacheCpu c, nint obj, Slab slab)
    {
        SpinLockWord.Enter(ref c.LockWord);
        if (slab == c.Slab && obj != c.Freelist)
        {
            *(nint*)(obj + _fpOffset) = c.Freelist;
            c.Freelist = obj;
            SpinLockWord.Exit(ref c.LockWord);
            return;
        }
        FreeSlow(c, slab, obj);
    }

    /// <summary>
    /// Frees every object in <paramref name="objects"/> (<c>kmem_cache_free_bulk</c>): objects of the CPU slab
    /// go onto the CPU free list; each run of objects from one other slab is chained and handed over under a
    /// single slab lock. Thread-safe. Every pointer is checked to be an object of this cache before anything is
    /// freed; a double free is caught only where the loop meets it (the CPU slab's free-list head, or a repeat
    /// inside a run of one slab), after the objects before it were freed, and other repeats only by slub_debug.
    /// </summary>
    public void FreeBulk(ReadOnlySpan<nint> objects)
    {
        _allocator.ThrowIfDisposed(Name);   // the chaining below writes into the objects
        // Checked up front: the free loop chains a run of one slab through the objects' free pointers before
        // it hands the run over, so a bad pointer found there would leave earlier objects freed and a live
        // object's word overwritten. (Magazine flushes skip this: their objects were checked by Free.)
        // Neighbours in a batch mostly share a slab: the page-owner lookup only when the slab changes.
        Slab? last = null;
        foreach (nint obj in objects)
            if (last is null || !IsObjectOf(last, obj)) last = SlabOf(obj);
        FreeBulkToCpus(objects);
    }

    /// <summary>Bulk free into the per-CPU layer (magazine trims and flushes use it too).</summary>
    private void FreeBulkToCpus(ReadOnlySpan<nint> objects)
    {
        if (_debug)
        {
            foreach (nint o in objects) Free(o);
            return;
        }
        int i = 0;
        while (i < objects.Length)
        {
            var c = _cpus[_allocator.CurrentCpu()];
            SpinLockWord.Enter(ref c.LockWord);
            try
            {
                int fp = _fpOffset;
                for (; i < objects.Length; i++)
                {
                    nint obj = objects[i];
                    // An object boundary inside the CPU slab (or, below, inside the run's slab) is proof enough
                    // of membership: the page-owner lookup of SlabOf is paid only where a run starts.
                    var slab = c.Slab is { } cpuSlab && IsObjectOf(cpuSlab, obj) ? cpuSlab : SlabOf(obj);
                    if (slab == c.Slab && obj != c.Freelist)
                    {
                        *(nint*)(obj + fp) = c.Freelist;
                        c.Freelist = obj;
                        continue;
                    }
                    if (slab == c.Slab) throw new InvalidFreeException(Name, obj, $"kmem_cache_free_bulk({Name}): double free of object 0x{obj:x}");
                    // Chain the run of objects that belong to this slab (a detached free list).
                    nint head = obj, tail = obj;
                    int start = i;
                    while (i + 1 < objects.Length && objects[i + 1] != tail && IsObjectOf(slab, objects[i + 1]))
                    {
                        nint next = objects[++i];
                        *(nint*)(tail + fp) = next;
                        tail = next;
                    }
                    i++;
                    Slab? discard = SlabFree(c, slab, head, tail, objects[start..i]);
                    if (discard is not null) DiscardSlab(discard);
                    break;   // re-read the CPU: the thread may have moved
                }
            }
            finally
            {
                SpinLockWord.Exit(ref c.LockWord);
            }
        }
    }

    /// <summary>The slab holding <paramref name="obj"/>; throws <see cref="InvalidFreeException"/> when it is not an object boundary of this cache.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal Slab SlabOf(nint obj)
    {
        // Written out rather than through IsObjectOf: the free fast path inlines this, and the nested helper
        // pushed it past the JIT's inlining budget (measured: 4.5 ns more per alloc+free pair).
        if (_pages.OwnerOf(obj) is Slab slab && slab.Cache == this)
        {
            ulong offset = (ulong)(obj - slab.FirstObject);
            ulong index = DivideBySize(offset);
            if (offset < (ulong)slab.Objects * (ulong)_size && index * (ulong)_size == offset)
                return slab;
        }
        ThrowInvalidPointer(obj);
        return null!;
    }

    /// <summary>True if <paramref name="obj"/> is an object boundary inside <paramref name="slab"/> (a slab of this cache that cannot go away meanwhile).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool IsObjectOf(Slab slab, nint obj)
    {
        ulong offset = (ulong)(obj - slab.FirstObject);
        return offset < (ulong)slab.Objects * (ulong)_size && DivideBySize(offset) * (ulong)_size == offset;
    }

    /// <summary>offset / slab_size for offsets below 2^32, by multiplying with a precomputed reciprocal (Lemire's fastmod): exact, no divide.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ulong DivideBySize(ulong offset) => Math.BigMul(_sizeReciprocal, offset, out _);

    /// <summary>True if <paramref name="obj"/> lies inside one of this cache's slabs at an object boundary (allocated or not). Thread-safe (a snapshot: slabs come and go).</summary>
    public bool Owns(nint obj)
    {
        if (_pages.OwnerOf(obj) is not Slab slab || slab.Cache != this) return false;
        return slab.IndexOf(obj) >= 0;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowInvalidPointer(nint obj)
    {
        var owner = _pages.OwnerOf(obj);
        string why = owner switch
        {
            null => "not inside any slab",
            Slab s when s.Cache != this => $"object is from cache {s.Cache.Name}",
            Slab s => $"not at an object boundary of {s}",
            _ => "inside a page block that is not a slab",
        };
        throw new InvalidFreeException(Name, obj, $"kmem_cache_free({Name}): invalid object pointer 0x{obj:x}: {why}");
    }

    /// <summary>A node argument outside -1 (any node, the kernel's <c>NUMA_NO_NODE</c>) .. nodes - 1.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal void ThrowNoNode(int node) =>
        throw new ArgumentOutOfRangeException(nameof(node), node, $"{Name}: no node {node} (nodes 0..{_nodes.Length - 1}, or -1 for any)");

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowOutOfMemory(int node) =>
        throw new SlabOutOfMemoryException(Name, node, $"{Name}: out of memory allocating a slab of order {Order}" + (node >= 0 ? $" on node {node}" : ""));

    /// <summary>
    /// A cache of <paramref name="objectSize"/> bytes was merged into this one: the object size becomes the
    /// largest of the names (the kernel's <c>__kmem_cache_alias</c>), so the new name's users see the size they
    /// asked for. Slot and free pointer are unchanged (merging guaranteed the slot fits). Caller holds SlabMutex.
    /// </summary>
    internal void RaiseObjectSize(int objectSize)
    {
        var g = Geometry;
        if (objectSize <= g.ObjectSize) return;
        Geometry = g with { ObjectSize = objectSize, Inuse = Math.Max(g.Inuse, CacheGeometry.AlignUp(objectSize, CacheGeometry.WordSize)) };
    }

    /// <summary>Marks the cache destroyed; called by <see cref="SlabAllocator.DestroyCache"/>.</summary>
    internal void MarkDestroyed() => Volatile.Write(ref _destroyed, true);   // before EndDestroy: a waiting run must see it
    internal bool IsDestroyed => Volatile.Read(ref _destroyed);

    /// <summary>The name and geometry, e.g. <c>dentry (object_size=192, slab_size=192, objs_per_slab=21, order=0)</c>.</summary>
    public override string ToString() => $"{Name} (object_size={ObjectSize}, slab_size={SlabSize}, objs_per_slab={ObjectsPerSlab}, order={Order})";
}
