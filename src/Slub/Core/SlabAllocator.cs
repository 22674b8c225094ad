using Slub.Pages;

namespace Slub;

/// <summary>
/// One instance of the allocator: the page allocator, the cache list (<c>slab_caches</c>), the kmalloc
/// caches, the debug settings and the SMO entry points. Tests and tools create their own; applications
/// usually use <see cref="Shared"/>.
/// </summary>
/// <remarks>
/// <para><b>Locking order</b> (written once here and in docs/architecture.md; every path takes a subset in
/// this order): <c>SlabMutex</c> (cache list) → CPU lock (<see cref="KmemCacheCpu"/>) → node list lock →
/// slab lock → buddy arena lock → a cache's spare-descriptor lock (a leaf). Mobility callbacks run with none of them held, except isolate, which runs
/// under one slab lock. Free page reporting gives memory back to the OS with none of them held. Between <c>SlabMutex</c> and
/// the CPU lock sits a wait: <see cref="DestroyCache"/> holds <c>SlabMutex</c> while it waits for the cache's user-started
/// defrag runs (the handshake is in KmemCache.DefragRuns.cs), so a migrate callback must not wait for <c>SlabMutex</c> held
/// by another thread.</para>
/// <para><b>Thread-safety.</b> Creating, finding and destroying caches, and all defrag entry points, are
/// safe from any thread.</para>
/// </remarks>
public sealed partial class SlabAllocator : IDisposable
{
    private static readonly Lazy<SlabAllocator> s_shared = new(() => new SlabAllocator(new SlabOptions { Name = "shared" }));
    private static int s_unnamed;   // allocators created without a name so far, for "slab", "slab-2", ...

    private readonly List<KmemCache> _caches = new();
    private readonly int[] _cpuOfProcessor;
    private readonly int _cpuMask;
    private readonly SlubDebugOption _slubDebug;
    private int _disposed;   // 1 once Dispose has started
    private readonly List<Action> _disposeHooks = new();

    /// <summary>The process-wide allocator with default options (1 GiB of address space per node).</summary>
    public static SlabAllocator Shared => s_shared.Value;

    /// <summary>The allocator's name: <see cref="SlabOptions.Name"/>, or when that is null <c>slab</c>, <c>slab-2</c>,
    /// <c>slab-3</c>… in creation order (see there). Labels this allocator's metrics.</summary>
    public string Name { get; }

    /// <summary>The options this allocator was created with.</summary>
    public SlabOptions Options { get; }
    /// <summary>The CPUs and NUMA nodes it models, built from <see cref="Options"/>.</summary>
    public NumaTopology Topology { get; }
    /// <summary>The page allocator slabs come from (one buddy arena per node).</summary>
    public PageAllocator Pages { get; }
    /// <summary>This allocator's kmalloc size-class caches (<c>kmalloc</c>/<c>kfree</c>).</summary>
    public Kmalloc Kmalloc { get; }

    /// <summary>The allocator's log (the kernel log of this user-space kernel): debug reports, traces.</summary>
    public AllocatorLog Log { get; } = new();

    /// <summary>Failure injection for slab and page allocations (the kernel's failslab).</summary>
    public FaultInjection Faults { get; } = new();

    internal CallSiteTable CallSites { get; } = new();

    /// <summary>The slab attribute tree of this allocator (its /sys/kernel/slab).</summary>
    public Sysfs.SlabSysfs Sysfs { get; }

    private Sysfs.LiveEndpoint? _endpoint;

    /// <summary>
    /// Opens the live endpoint (a Unix socket named by process id) so another process, e.g.
    /// <c>slub slabinfo --pid</c>, can read the attribute tree and, if <paramref name="allowWrites"/>, write it.
    /// Idempotent. Thread-safe.
    /// </summary>
    public Sysfs.LiveEndpoint OpenLiveEndpoint(bool allowWrites = false, string? socketPath = null)
    {
        lock (SlabMutex)
        {
            ThrowIfDisposed("OpenLiveEndpoint");
            _endpoint ??= new Sysfs.LiveEndpoint(Sysfs, allowWrites, socketPath);
            _endpoint.AllowWrites = allowWrites;
            return _endpoint;
        }
    }

    /// <summary>The kernel's <c>slab_mutex</c>: guards the cache list and mobility setup.</summary>
    internal readonly Lock SlabMutex = new();

    /// <summary>Creates an allocator: page arenas, kmalloc caches and attribute tree. <paramref name="options"/> null means defaults;
    /// slub_debug comes from <see cref="SlabOptions.SlubDebug"/>, else the <c>SLUB_DEBUG</c> environment variable.</summary>
    public SlabAllocator(SlabOptions? options = null)
    {
        Options = options ?? new SlabOptions();
        if (Options.Name is { } name && string.IsNullOrWhiteSpace(name))
            throw new ArgumentException("Name must be null (a default name) or a non-empty name", nameof(options));
        if ((uint)Options.MinOrder > BuddyArena.MaxOrder || (uint)Options.MaxOrder > BuddyArena.MaxOrder)
            throw new ArgumentOutOfRangeException(nameof(options), $"slab orders must be 0..{BuddyArena.MaxOrder} (MinOrder {Options.MinOrder}, MaxOrder {Options.MaxOrder})");
        if (Options.MinObjects < 0)
            throw new ArgumentOutOfRangeException(nameof(options), $"MinObjects must be 0 (derived from the CPU count) or positive, not {Options.MinObjects}");
        Topology = Options.BuildTopology();
        _slubDebug = SlubDebugOption.Parse(Options.SlubDebug ?? Environment.GetEnvironmentVariable("SLUB_DEBUG"));
        Pages = new PageAllocator(Topology, Options.BytesPerNode, Options.FreePageReportingDelay);
        Pages.FaultHook = (owner, _, _) => Faults.Page.ShouldFail((owner as Slab)?.Cache);
        int table = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(64, Environment.ProcessorCount));
        _cpuOfProcessor = new int[table];
        for (int i = 0; i < table; i++) _cpuOfProcessor[i] = i % Topology.CpuCount;
        _cpuMask = table - 1;
        Kmalloc = new Kmalloc(this);
        Sysfs = new Sysfs.SlabSysfs(this);
        Name = Options.Name ?? (Interlocked.Increment(ref s_unnamed) is var n && n == 1 ? "slab" : $"slab-{n}");
    }

    /// <summary>The CPU whose per-CPU state the calling thread uses.</summary>
    internal int CurrentCpu() => _cpuOfProcessor[Thread.GetCurrentProcessorId() & _cpuMask];

    /// <summary>The cache list in <c>slab_caches</c> order: movable caches first (the series' patch 03).</summary>
    public IReadOnlyList<KmemCache> Caches
    {
        get { lock (SlabMutex) return _caches.ToArray(); }
    }

    /// <summary>
    /// <c>kmem_cache_create</c>. Creates a cache, or returns an existing compatible one under a new alias
    /// name when merging applies (no constructor, no debug flags, close enough size; as SLUB does). Thread-safe.
    /// </summary>
    /// <param name="name">Cache name; must be unique among caches and aliases.</param>
    /// <param name="objectSize">Object size in bytes.</param>
    /// <param name="align">Alignment (0 = word).</param>
    /// <param name="flags">Creation flags; debug flags add to those forced by slub_debug.</param>
    /// <param name="ctor">Constructor run once per object when its slab is created.</param>
    public KmemCache CreateCache(string name, int objectSize, int align = 0, SlabFlags flags = SlabFlags.None, ObjectConstructor? ctor = null)
    {
        ValidateName(name);
        var geometry = ComputeGeometry(name, objectSize, align, ref flags, ctor is not null, -1);
        return AddCache(name, geometry, flags, ctor);
    }

    /// <summary>
    /// <see cref="CreateCache(string,int,int,SlabFlags,ObjectConstructor)"/> with the slab order fixed to
    /// <paramref name="order"/> (see <see cref="CacheGeometry.WithOrder"/>) instead of the one SLUB's order
    /// calculation picks; for reproducing a real kernel's caches, whose order depends on its CPU count and
    /// boot options. Merging still applies. Thread-safe.
    /// </summary>
    public KmemCache CreateCache(string name, int objectSize, int align, SlabFlags flags, ObjectConstructor? ctor, int order)
    {
        ValidateName(name);
        var geometry = ComputeGeometry(name, objectSize, align, ref flags, ctor is not null, -1).WithOrder(order);
        return AddCache(name, geometry, flags, ctor);
    }

    /// <summary>
    /// <see cref="CreateCache(string,int,int,SlabFlags,ObjectConstructor)"/> with the less common arguments of
    /// <paramref name="args"/> (the kernel's <c>kmem_cache_args</c>). Thread-safe.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">An argument is out of range (e.g. a free pointer offset outside the object).</exception>
    public KmemCache CreateCache(string name, int objectSize, int align, SlabFlags flags, ObjectConstructor? ctor, KmemCacheArgs args)
    {
        ArgumentNullException.ThrowIfNull(args);
        ValidateName(name);
        var geometry = ComputeGeometry(name, objectSize, align, ref flags, ctor is not null, args.FreePointerOffset ?? -1);
        return AddCache(name, geometry, flags, ctor);
    }

    /// <summary>
    /// Adds the slub_debug flags for <paramref name="name"/> and computes the geometry. With the <c>O</c> letter,
    /// a cache whose debug metadata would need a higher order than one bare object does loses that metadata
    /// (red zone, poison, store user), as the kernel's <c>kmem_cache_open</c> does.
    /// </summary>
    private CacheGeometry ComputeGeometry(string name, int objectSize, int align, ref SlabFlags flags, bool hasCtor, int freePointerOffset)
    {
        const SlabFlags metadata = SlabFlags.RedZone | SlabFlags.Poison | SlabFlags.StoreUser;
        // The kernel refuses flags outside SLAB_FLAGS_PERMITTED (kmem_cache_create: -EINVAL); an undefined bit here
        // would otherwise be kept in Flags and shown by nothing.
        if ((flags & ~SlabFlags.All) != 0)
            throw new ArgumentOutOfRangeException(nameof(flags), flags, $"kmem_cache_create({name}): undefined flag bits 0x{(int)(flags & ~SlabFlags.All):x}");
        flags |= _slubDebug.FlagsFor(name);
        var g = CacheGeometry.Compute(objectSize, align, flags, hasCtor, Topology.CpuCount,
            Options.MinObjects, Options.MinOrder, Options.MaxOrder, freePointerOffset);
        if (_slubDebug.DisableHigherOrderDebug && (flags & metadata) != 0
            && CacheGeometry.GetOrder(g.Size) > CacheGeometry.GetOrder(objectSize))
        {
            flags &= ~metadata;
            g = CacheGeometry.Compute(objectSize, align, flags, hasCtor, Topology.CpuCount,
                Options.MinObjects, Options.MinOrder, Options.MaxOrder, freePointerOffset);
        }
        return g;
    }

    private KmemCache AddCache(string name, CacheGeometry geometry, SlabFlags flags, ObjectConstructor? ctor)
    {
        lock (SlabMutex)
        {
            ThrowIfDisposed($"kmem_cache_create({name})");
            if (FindLocked(name) is not null)
                throw new ArgumentException($"kmem_cache_create({name}): a cache of that name exists", nameof(name));
            if (FindMergeable(geometry, flags, ctor) is { } target)
            {
                target._aliasNames.Add(name);
                target.RaiseObjectSize(geometry.ObjectSize);
                return target;
            }
            var cache = new KmemCache(this, name, geometry, flags, ctor);
            _caches.Add(cache);
            return cache;
        }
    }

    /// <summary>
    /// Typed <see cref="CreateCache(string,int,int,SlabFlags,ObjectConstructor)"/> for an unmanaged struct. With
    /// <paramref name="align"/> 0 the objects get at least <typeparamref name="T"/>'s own alignment as the runtime
    /// lays it out (16 for <c>Vector128</c>, 32 for <c>Vector256</c>), not just the kernel's word alignment.
    /// Thread-safe.
    /// </summary>
    public unsafe KmemCache<T> CreateCache<T>(string name, int align = 0, SlabFlags flags = SlabFlags.None, ObjectConstructor<T>? ctor = null)
        where T : unmanaged
    {
        ObjectConstructor? raw = ctor is null ? null : obj => ctor(ref *(T*)obj);
        if (align == 0 && AlignmentOf<T>() is var natural && natural > CacheGeometry.WordSize) align = natural;
        return new KmemCache<T>(CreateCache(name, sizeof(T), align, flags, raw));
    }

    /// <summary>The alignment the runtime gives a field of type <typeparamref name="T"/>: its offset after one byte.</summary>
    private static int AlignmentOf<T>() where T : unmanaged
    {
        var probe = default(AlignmentProbe<T>);
        return (int)System.Runtime.CompilerServices.Unsafe.ByteOffset(ref probe.Byte, ref System.Runtime.CompilerServices.Unsafe.As<T, byte>(ref probe.Value));
    }

    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
    private struct AlignmentProbe<T> where T : unmanaged
    {
        public byte Byte;
        public T Value;
    }

    private static void ValidateName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (string.IsNullOrEmpty(name) || name.Length > 64 || name.Contains('/') || name.Any(char.IsWhiteSpace) || name.StartsWith(':'))
            throw new ArgumentException($"kmem_cache_create: invalid cache name '{name}' (1..64 characters, no '/', no blanks, not starting with ':')", nameof(name));
    }

    // find_mergeable: a cache without ctor and never-merge flags whose slot size fits within one word.
    private KmemCache? FindMergeable(CacheGeometry g, SlabFlags flags, ObjectConstructor? ctor)
    {
        const SlabFlags neverMerge = SlabFlags.DebugFlags | SlabFlags.Trace | SlabFlags.TypesafeByRcu | SlabFlags.NoMerge | SlabFlags.FailSlab;
        const SlabFlags mergeSame = SlabFlags.ReclaimAccount;
        if (!Options.Merge || ctor is not null || (flags & neverMerge) != 0) return null;
        // The slot the new cache would need: word-aligned, then aligned to its alignment.
        int size = CacheGeometry.AlignUp(CacheGeometry.AlignUp(g.ObjectSize, CacheGeometry.WordSize), g.Align);
        for (int i = _caches.Count - 1; i >= 0; i--)
        {
            var s = _caches[i];
            if (!IsMergeable(s) || s.FailSlab) continue;   // opted into failslab: a new name must not share that
            if (size > s.SlabSize) continue;
            if ((flags & mergeSame) != (s.Flags & mergeSame)) continue;
            if ((s.SlabSize & ~(g.Align - 1)) != s.SlabSize) continue;
            if (s.SlabSize - size >= CacheGeometry.WordSize) continue;
            return s;
        }
        return null;
    }

    /// <summary>Whether other caches may be merged into <paramref name="s"/> (SLUB's <c>slab_unmergeable</c> negated). Thread-safe (the answer may change when the cache gets mobility or is destroyed).</summary>
    public bool IsMergeable(KmemCache s)
    {
        const SlabFlags neverMerge = SlabFlags.DebugFlags | SlabFlags.Trace | SlabFlags.TypesafeByRcu | SlabFlags.NoMerge | SlabFlags.FailSlab;
        return Options.Merge && s.Constructor is null && !s.IsMovable && (s.Flags & neverMerge) == 0 && !s.IsDestroyed;
    }

    /// <summary>The cache named <paramref name="name"/> (or having it as an alias), or null. Thread-safe.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> is null.</exception>
    public KmemCache? FindCache(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        lock (SlabMutex) return FindLocked(name);
    }

    private KmemCache? FindLocked(string name)
    {
        foreach (var c in _caches)
            if (c.Name == name || c._aliasNames.Contains(name)) return c;
        return null;
    }

    /// <summary>
    /// <c>kmem_cache_destroy</c>: drops one name of the cache (<paramref name="name"/>, or null for
    /// <see cref="KmemCache.Name"/>); when no name is left, flushes and frees its empty slabs and removes it.
    /// Throws <see cref="CacheBusyException"/> (and changes nothing) while objects remain.
    /// Thread-safe with respect to the cache list and other caches, and with respect to defrag runs of <paramref name="cache"/>
    /// (<see cref="KmemCache.Shrink()"/>, <see cref="KmemCache.DefragmentNode"/>, <see cref="KmemCache.MoveNode"/>, ...) on
    /// other threads: it keeps new runs from starting (they wait for its decision) and waits for those in flight to finish,
    /// so the replacements they hold do not count as objects. Those runs then throw <see cref="ObjectDisposedException"/>
    /// if the cache was destroyed, or go on if it was busy. Otherwise it must not race with other operations on
    /// <paramref name="cache"/> itself (allocation, free), after which they throw <see cref="ObjectDisposedException"/>.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="cache"/> belongs to another allocator.</exception>
    /// <exception cref="InvalidOperationException">Called from a migrate callback of a defrag run of <paramref name="cache"/> (it would wait for itself).</exception>
    public void DestroyCache(KmemCache cache, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(cache);
        // Another allocator's cache would be marked destroyed yet stay on its owner's list, its allocations failing.
        if (cache.Allocator != this) throw new ArgumentException($"kmem_cache_destroy({cache.Name}): the cache belongs to another allocator", nameof(cache));
        lock (SlabMutex)
        {
            if (name is not null && name != cache.Name)
            {
                if (!cache._aliasNames.Remove(name)) throw new ArgumentException($"{cache.Name} has no alias {name}", nameof(name));
                return;
            }
            if (cache._aliasNames.Count > 0)
            {
                // The name being dropped is the cache's own: the first alias takes over as the name users see,
                // and the dropped one is free for a new cache. The cache lives on.
                cache.Name = cache._aliasNames[0];
                cache._aliasNames.RemoveAt(0);
                return;
            }
            // User-started defrag runs of the cache (Shrink, DefragmentNode, Move*) do not take SlabMutex: stop new
            // ones and wait for those in flight, whose reserved targets and isolated sources would count as objects.
            cache.BeginDestroy();
            try
            {
                cache.FlushAll();
                cache.DiscardEmptyAndSort();
                long objects = cache.GetStatistics().Objects;
                if (objects != 0) throw new CacheBusyException(cache.Name, objects);
                if (cache.GetStatistics().Slabs != 0) throw new CacheBusyException(cache.Name, 0);
                cache.MarkDestroyed();
                _caches.Remove(cache);
            }
            finally
            {
                cache.EndDestroy();   // after MarkDestroyed: runs that waited now throw; after a CacheBusyException they go on
            }
        }
    }

    internal void MoveToFront(KmemCache cache)
    {
        // Caller holds SlabMutex.
        _caches.Remove(cache);
        _caches.Insert(0, cache);
    }

    /// <summary>
    /// <c>kmem_defrag_slabs</c>: defragments every movable cache (the front of the cache list) on
    /// <paramref name="node"/> (-1: every node), each only where the node has more than MAX_PARTIAL partial
    /// slabs, using the cache's defrag_used_ratio. Returns partial slabs left in the processed
    /// (cache, node) pairs; 0 if another defrag or a cache-list change holds the list. Thread-safe.
    /// </summary>
    public long DefragSlabs(int node = -1)
    {
        if ((uint)(node + 1) > (uint)Topology.NodeCount)
            throw new ArgumentOutOfRangeException(nameof(node), node, $"no node {node} (nodes 0..{Topology.NodeCount - 1}, or -1 for every node)");
        ThrowIfDisposed("kmem_defrag_slabs");
        if (!SlabMutex.TryEnter()) return 0;
        try
        {
            long left = 0;
            foreach (var cache in _caches)
            {
                if (!cache.IsMovable) break;
                cache.FlushMagazines();
                for (int n = 0; n < Topology.NodeCount; n++)
                {
                    if (node >= 0 && n != node) continue;
                    if (Volatile.Read(ref cache.Nodes[n].Partial.Count) > KmemCache.MaxPartial)
                        left += cache.DefragNode(n, n, cache.DefragUsedRatio, DefragPolicy.FillFullestFirst, shrinking: false);
                }
            }
            return left;
        }
        finally
        {
            SlabMutex.Exit();
        }
    }

    /// <summary>Resident memory of the process in bytes. Thread-safe.</summary>
    public static long ResidentBytes() => OsMemory.ResidentBytes();

    /// <summary>
    /// Gives every free page that is still resident back to the OS now, instead of after
    /// <see cref="SlabOptions.FreePageReportingDelay"/>; returns the bytes given back. Thread-safe; runs on the caller.
    /// </summary>
    public long ReportFreePages()
    {
        ThrowIfDisposed("ReportFreePages");
        return Pages.ReportFreePages();
    }

    /// <summary>
    /// Registers <paramref name="hook"/> to run inside <see cref="Dispose"/>, after the caches' fast paths are emptied
    /// and before the memory is released: how a higher layer (the XArray, whose arrays hold nodes in this
    /// allocator) detaches its users without this layer knowing it. Thread-safe.
    /// </summary>
    internal void OnDispose(Action hook)
    {
        lock (SlabMutex) _disposeHooks.Add(hook);
    }

    /// <summary>True once <see cref="Dispose"/> has started. Thread-safe.</summary>
    public bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    /// <summary>Throws <see cref="ObjectDisposedException"/> naming <paramref name="what"/> (a cache, a table) once the allocator is disposed.</summary>
    internal void ThrowIfDisposed(string what)
    {
        if (Volatile.Read(ref _disposed) != 0) ThrowDisposed(what);
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    internal static void ThrowDisposed(string what) =>
        throw new ObjectDisposedException(what, $"{what}: its SlabAllocator has been disposed; its objects and memory are gone");

    /// <summary>Stops the background defragmenter, closes the live endpoint and releases the page arenas: every object of
    /// every cache becomes invalid. Afterwards every operation that would touch a cache's memory (allocation, free,
    /// shrink, defragmentation, validation, a handle's access, an <see cref="XArray.XArray"/> write) throws
    /// <see cref="ObjectDisposedException"/> naming the cache, and <see cref="XArray.XArray"/> reads return null.
    /// Idempotent. Must not race with other operations on the allocator's caches (as <see cref="DestroyCache"/>):
    /// an allocation already past its checks when the memory goes would hand out an unmapped object.</summary>
    /// <exception cref="InvalidOperationException">Called from a mobility callback on the background defragmenter's thread (it would wait for itself),
    /// or on <see cref="Shared"/>, which the whole process uses (default XArrays and dentry caches among them).</exception>
    public void Dispose()
    {
        if (s_shared.IsValueCreated && ReferenceEquals(this, s_shared.Value))
            throw new InvalidOperationException("SlabAllocator.Shared cannot be disposed: every XArray and DentryCache created without an allocator lives in it");
        BackgroundDefrag?.ThrowIfOwnThread("SlabAllocator.Dispose");   // before anything changes
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;   // slow paths throw from here on
        BackgroundDefrag?.Dispose();
        _endpoint?.Dispose();
        KmemCache[] caches;
        Action[] hooks;
        lock (SlabMutex) (caches, hooks) = (_caches.ToArray(), _disposeHooks.ToArray());
        // Empty every fast path (magazines, CPU free lists), so the next allocation or free of any cache reaches
        // a slow path and its disposed check instead of the unmapped memory.
        foreach (var c in caches) c.RetireFastPaths();
        foreach (var hook in hooks) hook();
        Pages.Dispose();
    }
}
