using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Slub.Sysfs;
using Slub.XArray;

namespace Slub.Cli.TestModules;

/// <summary>The thing the XArray test module stores pointers to (<c>struct smox_thing</c>): just an id, 8 bytes.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct SmoxThing
{
    public long Id;
}

/// <summary>
/// The XArray test module of the series (tools/testing/slab/slub_defrag_xarray.c, patch 11/15) hosted on a
/// <see cref="SlabAllocator"/>: the movable cache <c>smox_test</c> of <see cref="SmoxThing"/>s and the global
/// XArray <c>things</c> holding pointers to them, whose nodes come from the allocator's movable <c>xa_node</c>
/// cache. Loading runs the module's test: store <see cref="DefaultItems"/> things at indices 0.., erase all
/// but every <see cref="DefaultKeep"/>-th, check what is left, and leave both caches sparse for shrinking
/// (<c>WRITE xa_node/shrink</c>, <c>WRITE smox_test/shrink</c>) from outside.
/// </summary>
/// <remarks>
/// <para>Ours (the series' module has no control file): <c>smo_xarray/callfn</c> takes <c>test [NR [KEEP]]</c>
/// (the load test again, with other numbers, on an empty array) and <c>clear</c> (free every thing and destroy
/// the array, as unload does) with the syntax of <c>smo/callfn</c>; <c>smo_xarray/things</c> lists the array.
/// Differences in behaviour are in docs/test-modules.md.</para>
/// <para>Thread-safety: commands run one at a time; migrate, which the allocator calls from whatever thread
/// shrinks <c>smox_test</c>, takes only the lock of the module's state, as the commands do around every change.</para>
/// </remarks>
public sealed unsafe class XArrayTestModule : IHostedModule
{
    public const string CacheName = "smox_test";
    public const string Directory = "smo_xarray";
    public const string CallfnPath = "smo_xarray/callfn";
    public const string LogPath = "smo_xarray/log";
    public const string ThingsPath = "smo_xarray/things";

    /// <summary>The module's <c>nr_items</c>.</summary>
    public const int DefaultItems = 10000;

    /// <summary>The module's <c>keep</c> ("free 5 out of 6 items").</summary>
    public const int DefaultKeep = 6;

    /// <summary>Largest NR the <c>test</c> command takes (ours: a bound on the work one write can ask for).</summary>
    public const int MaxItems = 1 << 20;

    private static readonly ControlFile.CommandSpec[] s_table =
    [
        new("test", "test [NR [KEEP]]", ["NR", "KEEP"]),
        new("clear", "clear", []),
    ];

    private readonly SlabAllocator _allocator;
    private readonly ControlFile _control;
    // Lock order: _cmd → _state → the array's lock and the allocator's; slab_mutex → _state (migrate).
    // DestroyCache (slab_mutex) is called under _cmd only.
    private readonly Lock _cmd = new();
    private readonly Lock _state = new();
    private readonly XArray.XArray _things;
    private long _count;
    private bool _unloaded;

    /// <summary>The module's cache, <c>smox_test</c>.</summary>
    public KmemCache Cache { get; }

    /// <summary>The allocator's <c>xa_node</c> cache, where the array's nodes live.</summary>
    public KmemCache NodeCache { get; }

    /// <summary>
    /// "insmod": creates <c>smox_test</c>, makes it movable, runs the module's test
    /// (<see cref="DefaultItems"/>, <see cref="DefaultKeep"/>) and logs the module's load messages. A failed test is
    /// only logged (<c>test_smo_xarray failed: ERR</c>), as in the module: the load still succeeds.
    /// </summary>
    public XArrayTestModule(SlabAllocator allocator)
    {
        _allocator = allocator;
        _control = new ControlFile(CallfnPath, "smox", s_table, Log);
        Cache = allocator.CreateCache(CacheName, sizeof(SmoxThing), 0, SlabFlags.None, SmoxObjectCtor);
        Log($"smo_xarray: created kmem_cache: {CacheName}");
        _things = new XArray.XArray(XaFlags.None, allocator);
        NodeCache = _things.NodeCache;
        Cache.SetupMobility(null, SmoxCacheMigrate);
        Log($"smo_xarray: kmem_cache {CacheName} defrag enabled");
        lock (_cmd)
        {
            int ret = TestSmoXArray(DefaultItems, DefaultKeep, out _);
            if (ret != 0) Log($"test_smo_xarray failed: {ret}");
        }
    }

    string IHostedModule.Directory => Directory;
    string IHostedModule.Title => "SMO XArray test module";
    string IHostedModule.ControlPath => CallfnPath;
    IReadOnlyList<KmemCache> IHostedModule.Caches => [Cache, NodeCache];
    string IHostedModule.Summary() => $"things in the array {Things}";
    string IHostedModule.DescribeObjects() => DescribeThings();

    IReadOnlyList<(string Command, string What)> IHostedModule.Help =>
    [
        ("test [NR [KEEP]]", $"the load test again on an empty array: store NR things ({DefaultItems}), erase all but every KEEP-th ({DefaultKeep}), check"),
        ("clear", "free every thing and destroy the array (as unload does)"),
    ];

    /// <summary>Number of things in the array.</summary>
    public long Things
    {
        get { lock (_state) return _count; }
    }

    /// <summary>Adds <c>smo_xarray/callfn</c> (write-only), <c>smo_xarray/log</c> and <c>smo_xarray/things</c> (read-only).</summary>
    public void Register(LiveEndpoint endpoint)
    {
        endpoint.AddFile(CallfnPath, null, Write);
        endpoint.AddFile(LogPath, ReadLog, null);
        endpoint.AddFile(ThingsPath, DescribeThings, null);
        Log($"smo_xarray: Created debugfs directory: {Directory} (files {CallfnPath}, {LogPath}, {ThingsPath} on {endpoint.SocketPath})");
        Log("smo_xarray: module loaded successfully");
    }

    private void Log(string line) => _allocator.Log.Write(line);

    /// <summary>The allocator's log, one message per line: the <c>smo_xarray/log</c> file.</summary>
    public string ReadLog() => _allocator.Log.Text();

    /// <summary>The <c>smo_xarray/things</c> file: one <c>index id</c> line per entry, in index order.</summary>
    public string DescribeThings()
    {
        var sb = new StringBuilder();
        lock (_state)
        {
            foreach (var (index, entry) in _things)
                sb.Append(CultureInfo.InvariantCulture, $"{index} {((SmoxThing*)entry.Pointer)->Id}\n");
        }
        return sb.ToString();
    }

    /// <summary>The thing stored at <paramref name="index"/>, or 0.</summary>
    public nint ThingAt(ulong index)
    {
        lock (_state) return _things.Load(index).Pointer;
    }

    // ------------------------------------------------------------------ the cache's callbacks

    /// <summary>The constructor (<c>smox_object_ctor</c>): id -1.</summary>
    public static void SmoxObjectCtor(nint obj) => ((SmoxThing*)obj)->Id = -1;

    /// <summary>
    /// The migrate callback (<c>smox_cache_migrate</c>): for each thing, allocate a new one (on any node: the
    /// module ignores <paramref name="node"/>), copy the id, find the index that holds the old pointer by
    /// walking the whole array ("the brain dead way"), store the new pointer there, which must give back the
    /// old one, and free the old thing. Stops at the first allocation failure. A thing no longer in the array
    /// (freed by a command after its slab was frozen) is skipped, and a store that does not give back the old
    /// pointer logs <c>failed to exchange new/old</c> and stops; the module freed (or leaked) in both cases.
    /// </summary>
    public void SmoxCacheMigrate(KmemCache cache, ReadOnlySpan<nint> objects, int node, object? state, Span<MigrateResult> results)
    {
        lock (_state)
        {
            for (int i = 0; i < objects.Length; i++)
            {
                nint old = objects[i];
                if (old == 0) { results[i] = MigrateResult.Skipped; continue; }
                nint fresh = cache.TryAlloc();
                if (fresh == 0)
                {
                    Log("smox: kmem_cache_alloc failed");
                    for (int j = i; j < objects.Length; j++) results[j] = MigrateResult.Later;
                    return;
                }
                ((SmoxThing*)fresh)->Id = ((SmoxThing*)old)->Id;
                ulong? at = null;
                foreach (var (index, entry) in _things)
                {
                    if (entry.Raw == (ulong)old) { at = index; break; }
                }
                if (at is null)
                {
                    cache.Free(fresh);
                    results[i] = MigrateResult.Skipped;
                    continue;
                }
                var previous = _things.TryStore(at.Value, XaEntry.FromPointer(fresh), out var prev) == XaError.None ? prev : XaEntry.Null;
                if (previous.Raw != (ulong)old)
                {
                    Log("failed to exchange new/old");
                    if (previous.IsPointer) _things.TryStore(at.Value, previous, out _);
                    cache.Free(fresh);
                    for (int j = i; j < objects.Length; j++) results[j] = MigrateResult.Later;
                    return;
                }
                cache.Free(old);
                results[i] = MigrateResult.Moved;
            }
        }
    }

    // ------------------------------------------------------------------ the control file (ours)

    /// <summary>
    /// A write to <c>smo_xarray/callfn</c>, with the syntax of <c>smo/callfn</c>: <c>test [NR [KEEP]]</c> or
    /// <c>clear</c>.
    /// </summary>
    /// <exception cref="SysfsException">Refused (nothing changed) or failed; the message is also in the log.
    /// EINVAL: empty write, unknown command, too many arguments, not a number. ERANGE: a number out of range.
    /// EBUSY: test with things in the array. ENOMEM: an allocation failed. EIO: the test's check failed.
    /// ENOENT: the module is unloaded.</exception>
    public void Write(string text)
    {
        _control.RefuseEmpty(text);
        lock (_cmd)
        {
            if (_unloaded) throw new SysfsException(Errno.ENOENT, CallfnPath, "module unloaded");
            var (cmd, args) = _control.Parse(text);
            switch (cmd)
            {
                case "test": Test(args[0], args[1]); break;
                case "clear": Log($"smox: cleared {Clear()} things"); break;
            }
        }
    }

    private void Test(long nrArg, long keepArg)
    {
        long nr = _control.CheckRange("test", "NR", nrArg, 0, MaxItems, DefaultItems.ToString(CultureInfo.InvariantCulture));
        long keep = _control.CheckRange("test", "KEEP", keepArg, 1, int.MaxValue, DefaultKeep.ToString(CultureInfo.InvariantCulture));
        if (Things != 0) throw _control.Refuse(Errno.EBUSY, "smox: test requires clean module state");
        if (nr == ControlFile.DefaultArg) nr = DefaultItems;
        if (keep == ControlFile.DefaultArg) keep = DefaultKeep;
        int ret = TestSmoXArray((int)nr, (int)keep, out string? error);
        if (ret != 0)
        {
            Log($"test_smo_xarray failed: {ret}");
            throw new SysfsException(ret == -(int)Errno.ENOMEM ? Errno.ENOMEM : Errno.EIO, CallfnPath, $"test_smo_xarray failed: {ret}: {error}");
        }
        Log($"smox: test using nr_items: {nr} keep: {keep} passed, {Things} things left");
    }

    /// <summary>
    /// <c>test_smo_xarray</c>: store <paramref name="nr"/> things with ids 0..nr-1 at indices 0..nr-1, erase and
    /// free every one whose index is not a multiple of <paramref name="keep"/>, then walk the array: each entry
    /// must have index = id = the next multiple of keep. Ours also checks that none is missing. Returns 0,
    /// -ENOMEM (logged <c>smox: failed to allocate entry: I</c>; what was stored stays) or -1 (the first
    /// mismatch, logged <c>smox: error; got ID want W at INDEX</c>).
    /// </summary>
    private int TestSmoXArray(int nr, int keep, out string? error)
    {
        error = null;
        lock (_state)
        {
            for (int i = 0; i < nr; i++)
            {
                nint thing = Cache.TryAlloc();
                XaError err = XaError.NoMemory;
                if (thing != 0)
                {
                    ((SmoxThing*)thing)->Id = i;
                    err = _things.TryStore((ulong)i, XaEntry.FromPointer(thing), out _);
                    if (err == XaError.None) _count++;
                    else Cache.Free(thing);
                }
                if (err != XaError.None)
                {
                    error = $"smox: failed to allocate entry: {i}";
                    Log(error);
                    return -(int)Errno.ENOMEM;
                }
            }

            // Now free items, putting holes in both caches.
            for (int i = 0; i < nr; i++)
            {
                if (i % keep == 0) continue;
                var entry = _things.Erase((ulong)i);
                if (entry.IsPointer)
                {
                    Cache.Free(entry.Pointer);
                    _count--;
                }
            }

            long expected = 0, seen = 0;
            foreach (var (index, entry) in _things)
            {
                long id = ((SmoxThing*)entry.Pointer)->Id;
                if (id != expected || (long)index != expected)
                {
                    error = $"smox: error; got {id} want {expected} at {index}";
                    Log(error);
                    return -1;
                }
                expected += keep;
                seen++;
            }
            long want = nr == 0 ? 0 : (nr - 1) / keep + 1;
            if (seen != want)
            {
                error = $"smox: error; want {want} entries got {seen}";
                Log(error);
                return -1;
            }
        }
        // Leave the caches sparsely allocated: shrink them from outside (xa_node/shrink, smox_test/shrink).
        WaitForGracePeriod();
        return 0;
    }

    /// <summary>Frees every thing and destroys the array (<c>smox_cache_cleanup</c> without destroying the cache).</summary>
    private long Clear()
    {
        long freed = 0;
        lock (_state)
        {
            foreach (var (_, entry) in _things)
            {
                if (entry.IsPointer) { Cache.Free(entry.Pointer); freed++; }
            }
            _things.Destroy();
            _count = 0;
        }
        WaitForGracePeriod();
        return freed;
    }

    /// <summary>
    /// Waits until the nodes the array deleted are back in <c>xa_node</c>. The kernel frees them after an RCU
    /// grace period, long over by the time anyone runs slabinfo; the epoch reclaimer frees them only every 256
    /// retirements or at a grace period, so without this the holes would not show until much later.
    /// </summary>
    private void WaitForGracePeriod() => _things.Reclaimer.Synchronize();

    // ------------------------------------------------------------------ unload

    /// <summary>
    /// "rmmod": frees every thing, destroys the array and the cache, logs <c>smo_xarray: module removed</c>.
    /// Refuses further commands. Idempotent. Throws <see cref="CacheBusyException"/> if the cache still has objects.
    /// </summary>
    public void Unload()
    {
        lock (_cmd)
        {
            if (_unloaded) return;
            _unloaded = true;
            Clear();
            _things.Dispose();
            _allocator.DestroyCache(Cache);
        }
        Log("smo_xarray: module removed");
    }

    public void Dispose() => Unload();
}
