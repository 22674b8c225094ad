using Slub.Rcu;

namespace Slub.Dcache;

/// <summary>
/// A path-lookup cache over a directory tree on disk, built on the Linux dcache model: dentries are native
/// objects in slab cache <c>dentry</c> (with a constructor and Slab Movable Objects callbacks that free
/// unused dentries of sparse slabs), linked into a parent/child tree and a hash table keyed by
/// (parent, name hash, name), reference counted, with unused dentries on an LRU with a second-chance bit and
/// misses cached as negative dentries.
/// </summary>
/// <remarks>
/// <para><b>Thread-safety.</b> Every public member is safe to call from any number of threads at once, except
/// <see cref="Dispose"/>, which must not race with anything else. Handles (<see cref="Dentry"/>) passed to an
/// operation must carry a reference the caller holds (from <see cref="Lookup(Dentry,string)"/>,
/// <see cref="Alloc"/>, <see cref="Get"/> or <see cref="Root"/>).</para>
/// <para><b>Locking</b> (docs/dcache.md): a tree lock (reader/writer: hash chains, names, parent and children
/// links — readers are the fallback lookups, writers are add, drop, delete, move and kill) → a per-dentry spin
/// lock (count, flags, inode, LRU bits) → the LRU lock. At most one dentry lock is held at a time; no lock of
/// this class is held while a dentry is allocated or freed, so the SMO isolate callback, which runs under a slab
/// lock and takes dentry locks and the LRU lock, cannot deadlock with them. Cached path lookups first walk with
/// no lock at all (RCU-walk), validated by seqcounts; dentries and external names are therefore freed only
/// after a grace period of the cache's <see cref="EpochReclaimer"/>.</para>
/// </remarks>
public sealed unsafe partial class DentryCache : IDisposable
{
    private static long s_nextSb;

    private readonly SlabAllocator _allocator;
    private readonly Kmalloc _kmalloc;
    private readonly DentryHashTable _hash;
    private readonly DentryLru _lru = new();
    private readonly ReaderWriterLockSlim _tree = new(LockRecursionPolicy.NoRecursion);
    private readonly Func<string, InodeKind> _probe;
    private readonly nint _sb = (nint)Interlocked.Increment(ref s_nextSb);
    private readonly nint _root;
    /// <summary>The grace-period domain of this cache's lock-free walkers: dead dentries and replaced names are retired through it.</summary>
    private readonly EpochReclaimer _rcu = new();
    private readonly Action<nint> _freeDentry, _freeName;
    /// <summary><c>rename_lock</c>'s counter: odd while a dentry is renamed (<see cref="Move"/>, under the tree write lock). Unhashes do not touch it.</summary>
    private uint _renameSeq;
    private long _nrDentry, _nrNegative, _lookups, _hits, _misses, _generation, _nextIno;
    /// <summary>Components cached walks found (each one lookup and one hit): one atomic add per walk instead of two.</summary>
    private long _walkHits;
    private bool _disposed;

    /// <summary>The slab cache holding the dentries.</summary>
    public KmemCache Cache { get; }

    /// <summary>The directory on disk this cache resolves paths under (full path, no trailing separator).</summary>
    public string RootPath { get; }

    /// <summary>The root dentry. Pinned by the cache: callers may use it without taking a reference, until the cache is disposed.</summary>
    /// <exception cref="ObjectDisposedException">The cache, or its allocator, has been disposed: the root is freed.</exception>
    public Dentry Root
    {
        get
        {
            ThrowIfDisposed();
            return new(_root);
        }
    }

    /// <summary>What the SMO isolate callback evicts (may be changed at any time).</summary>
    public PartialShrinkMode PartialShrinkMode { get; set; }

    /// <summary>The LRU of unused dentries, oldest first (a snapshot; for tests and tools). Thread-safe.</summary>
    public IReadOnlyList<Dentry> LruSnapshot()
    {
        ThrowIfDisposed();
        return _lru.Snapshot().ConvertAll(p => new Dentry(p));
    }

    /// <summary>Creates a dentry cache for the tree under <paramref name="root"/> in <see cref="SlabAllocator.Shared"/>.</summary>
    public DentryCache(string root) : this(root, SlabAllocator.Shared) { }

    /// <summary>Creates a dentry cache for the tree under <paramref name="root"/>, its dentries in <paramref name="allocator"/>.</summary>
    /// <exception cref="DirectoryNotFoundException"><paramref name="root"/> is not a directory.</exception>
    public DentryCache(string root, SlabAllocator allocator, DentryCacheOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(allocator);
        options ??= new DentryCacheOptions();
        string full = Path.GetFullPath(root);
        if (full.Length > 1) full = Path.TrimEndingDirectorySeparator(full);
        if (!Directory.Exists(full)) throw new DirectoryNotFoundException($"dcache root '{full}' is not a directory");
        RootPath = full;
        _allocator = allocator;
        _kmalloc = allocator.Kmalloc;
        _hash = new DentryHashTable(options.HashBits);
        _probe = options.Probe ?? FileSystemProbe.Probe;
        _freeDentry = FreeDentryNow;
        _freeName = FreeNameNow;
        PartialShrinkMode = options.PartialShrink;
        Cache = CreateSlabCache(allocator, options.CacheName);
        // Patch 13: mobility is set when the cache is created, before any dentry exists.
        Cache.SetupMobility(Isolate, Migrate);
        InitIsolatePool();
        _root = AllocDentry(0, 0, "/"u8);
        var r = (DentryData*)_root;
        r->Parent = _root;
        r->Flags |= (uint)DentryFlags.Root;
        r->SetKind(InodeKind.Directory);
        r->Inode = (ulong)Interlocked.Increment(ref _nextIno);
    }

    private static KmemCache CreateSlabCache(SlabAllocator allocator, string name)
    {
        for (int i = 1; ; i++)
        {
            string candidate = i == 1 ? name : $"{name}-{i}";
            if (allocator.FindCache(candidate) is not null) continue;
            try
            {
                // Patch 12: a constructor puts every slot in a known state. Reclaimable, as the kernel's.
                return allocator.CreateCache(candidate, DentryData.Size, 8, SlabFlags.ReclaimAccount, DentryData.Construct);
            }
            catch (ArgumentException) when (allocator.FindCache(candidate) is not null)
            {
                // Another thread took the name between the check and the create: try the next one.
            }
        }
    }

    /// <summary>Counters: dentries, unused (on the LRU), negative, lookups and hits, slab figures, RCU-walk fallbacks. Thread-safe (a snapshot).</summary>
    public DcacheStatistics GetStatistics()
    {
        var st = Cache.GetStatistics();
        return new DcacheStatistics(
            Volatile.Read(ref _nrDentry), _lru.Count, Volatile.Read(ref _nrNegative),
            Volatile.Read(ref _lookups) + Volatile.Read(ref _walkHits), Volatile.Read(ref _hits) + Volatile.Read(ref _walkHits), Volatile.Read(ref _misses),
            st.Slabs, st.Objects, st.OptimalSlabs, st.ObjectsPerSlab, Volatile.Read(ref _rcuWalkFallbacks));
    }

    /// <summary>
    /// The six fields of <c>/proc/sys/fs/dentry-state</c>: nr_dentry, nr_unused, age_limit (45, unused as in the
    /// kernel), want_pages (0), nr_negative, dummy (0), tab-separated. Thread-safe (a snapshot).
    /// </summary>
    public string DentryState() =>
        $"{Volatile.Read(ref _nrDentry)}\t{_lru.Count}\t45\t0\t{Volatile.Read(ref _nrNegative)}\t0";

    /// <summary>Dentries alive (allocated and not killed), the root included.</summary>
    public long Count => Volatile.Read(ref _nrDentry);

    /// <summary>
    /// Unmount: frees every dentry and destroys the slab cache; afterwards every operation but this one and the
    /// counters throws <see cref="ObjectDisposedException"/>. Idempotent. After the allocator was disposed it only
    /// marks the cache disposed (the dentries' memory is gone already). Not thread-safe: must not race with anything.
    /// </summary>
    /// <exception cref="InvalidOperationException">Dentries are still referenced (the kernel's "busy inodes/dentries after umount"); nothing is destroyed.</exception>
    public void Dispose()
    {
        if (_disposed) return;
        if (_allocator.IsDisposed)
        {
            _disposed = true;
            _tree.Dispose();
            return;
        }
        ShrinkParent(_root);
        ShrinkAll();
        long left = Volatile.Read(ref _nrDentry);
        if (left != 1) throw new InvalidOperationException($"dcache {RootPath}: {left - 1} dentries still in use at unmount");
        var toFree = new List<nint>(1);
        _tree.EnterWriteLock();
        try
        {
            var r = (DentryData*)_root;
            Lock(r);
            KillLocked(_root, toFree);
        }
        finally { _tree.ExitWriteLock(); }
        FreeAll(toFree);
        _rcu.Synchronize();   // every retired dentry and name back in its slab before the cache goes
        _disposed = true;
        _allocator.DestroyCache(Cache);
        _tree.Dispose();
    }

    /// <summary>A disposed dcache, or one whose allocator was disposed, has no dentries left to read: every handle and the root point at freed memory.</summary>
    private void ThrowIfDisposed()
    {
        if (_disposed || _allocator.IsDisposed)
            throw new ObjectDisposedException($"dcache {RootPath}", $"dcache {RootPath} (cache {Cache.Name}): " +
                (_disposed ? "the dentry cache has been disposed" : "its SlabAllocator has been disposed"));
    }

    /// <summary>The reclaimer lock-free walks read under (for tests: retired and freed counts).</summary>
    internal EpochReclaimer Rcu => _rcu;

    /// <summary>The hash table (for tests: its <see cref="DentryHashTable.StepHook"/> and bucket count).</summary>
    internal DentryHashTable HashTable => _hash;

    private static void Lock(DentryData* d) => SpinLockWord.Enter(ref d->LockWord);
    private static void Unlock(DentryData* d) => SpinLockWord.Exit(ref d->LockWord);
}
