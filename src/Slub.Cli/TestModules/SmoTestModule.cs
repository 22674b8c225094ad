using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Slub.Sysfs;

namespace Slub.Cli.TestModules;

/// <summary>A doubly linked list link, laid out like the kernel's <c>struct list_head</c> (two pointers).</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct ListHead
{
    public ListHead* Next;
    public ListHead* Prev;
}

/// <summary>
/// The test object of the series' module (<c>struct smo_slub_object</c>): a list link, 32 unused bytes that
/// only set the size, and an id. 56 bytes on a 64-bit machine.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct SmoObject
{
    public ListHead List;
    public fixed byte Buf[32];
    public long Id;
}

/// <summary>
/// The SMO test module of the series (tools/testing/slab/slub_defrag.c, patch 07/15) hosted on a
/// <see cref="SlabAllocator"/>: the cache <c>smo_test</c> with a constructor and a migrate callback, a global
/// list of the objects it allocated, and the control file <c>smo/callfn</c> taking the commands
/// <c>enable</c>, <c>alloc N [NODE]</c>, <c>free N [POS]</c> and <c>test [NR [KEEP]]</c>.
/// Messages go to the allocator's log (the dmesg of this user-space kernel).
/// </summary>
/// <remarks>
/// <para>Differences from the series' module (all in docs/test-modules.md): a bad command line is refused
/// and nothing runs (the module ran unknown-argument commands with defaults); errors come back to the
/// writer as well as to the log; <c>test</c> checks its own assertions (plus the object count) and fails the
/// write when one fails; commands are serialised by a lock; migrate skips objects freed after the slab
/// was frozen (the module has no such guard).</para>
/// <para>Thread-safety: every public member may be called from any thread. Commands run one at a time;
/// migrate, which the allocator calls from whatever thread shrinks the cache, takes only the list's lock.</para>
/// </remarks>
public sealed unsafe class SmoTestModule : IHostedModule
{
    public const string CacheName = "smo_test";
    public const string CallfnPath = "smo/callfn";
    public const string LogPath = "smo/log";
    public const string ObjectsPath = "smo/objects";

    /// <summary>The value a missing argument takes (the module's <c>SMO_CMD_DEFAUT_ARG</c>).</summary>
    public const long DefaultArg = ControlFile.DefaultArg;

    private readonly SlabAllocator _allocator;
    // Lock order: _cmd → slab_mutex (SetupMobility, DestroyCache) and _cmd → _list; slab_mutex → _list
    // (kmem_defrag_slabs calling migrate). Nothing is taken while _list is held except the allocator's
    // per-CPU, node and slab locks, so migrate never waits on a command that waits on slab_mutex.
    private readonly Lock _cmd = new();    // one command at a time
    private readonly Lock _list = new();   // the object list; migrate takes only this
    private readonly ListHead* _objects;   // the module's global list head (LIST_HEAD(objects))
    private readonly ControlFile _control;
    private int _count;
    private bool _unloaded;
    private bool _headFreed;

    /// <summary>The module's cache, <c>smo_test</c>.</summary>
    public KmemCache Cache { get; }

    /// <summary>"insmod": creates the cache and logs the module's load messages.</summary>
    public SmoTestModule(SlabAllocator allocator)
    {
        _allocator = allocator;
        _objects = (ListHead*)NativeMemory.AllocZeroed((nuint)sizeof(ListHead));
        InitListHead(_objects);
        _control = new ControlFile(CallfnPath, "smo", s_table, Log);
        Cache = allocator.CreateCache(CacheName, sizeof(SmoObject), 0, SlabFlags.None, SmoObjectCtor);
        Log($"smo: Created kmem_cache: {CacheName}");
    }

    string IHostedModule.Directory => "smo";
    string IHostedModule.Title => "SMO test module";
    string IHostedModule.ControlPath => CallfnPath;
    IReadOnlyList<KmemCache> IHostedModule.Caches => [Cache];
    string IHostedModule.Summary() => $"listed by the module {ListedObjects}";

    IReadOnlyList<(string Command, string What)> IHostedModule.Help =>
    [
        ("enable", "make smo_test movable (set up the migrate callback)"),
        ("alloc [N [NODE]]", "allocate N objects (default 1), on NODE if given; appended to the module's list"),
        ("free [N [POS]]", "free N objects (default 1; 0 = all) starting at list position POS (default 0, the oldest)"),
        ("test [NR [KEEP]]", "the module's self test: NR objects (1000), keep every KEEP-th (10), shrink, check ids"),
    ];

    /// <summary>Number of objects on the module's list.</summary>
    public int ListedObjects
    {
        get { lock (_list) return _count; }
    }

    /// <summary>Adds the module's files to a live endpoint: <c>smo/callfn</c> (write-only), <c>smo/log</c> and <c>smo/objects</c> (read-only).</summary>
    public void Register(LiveEndpoint endpoint)
    {
        endpoint.AddFile(CallfnPath, null, Write);
        endpoint.AddFile(LogPath, ReadLog, null);
        endpoint.AddFile(ObjectsPath, DescribeObjects, null);
        Log($"smo: Created debugfs directory: smo (files {CallfnPath}, {LogPath}, {ObjectsPath} on {endpoint.SocketPath})");
        Log("smo: Test module loaded");
    }

    private void Log(string line) => _allocator.Log.Write(line);

    /// <summary>The allocator's log, one message per line: the <c>smo/log</c> file.</summary>
    public string ReadLog() => _allocator.Log.Text();

    /// <summary>The <c>smo/objects</c> file: the module's list from head to tail, one <c>position id node</c> line per object.</summary>
    public string DescribeObjects()
    {
        var sb = new StringBuilder();
        lock (_list)
        {
            int pos = 0;
            for (var p = _objects->Next; p != _objects; p = p->Next, pos++)
            {
                var so = (SmoObject*)p;
                int node = _allocator.Pages.OwnerOf((nint)so) is { } block ? block.Node : -1;
                sb.Append(CultureInfo.InvariantCulture, $"{pos} {so->Id} {node}\n");
            }
        }
        return sb.ToString();
    }

    /// <summary>The object at <paramref name="position"/> on the module's list (0 = head), or 0 past the end.</summary>
    public nint ObjectAt(int position)
    {
        lock (_list)
        {
            var p = _objects->Next;
            for (int i = 0; i < position && p != _objects; i++) p = p->Next;
            return p == _objects || position < 0 ? 0 : (nint)p;
        }
    }

    // ------------------------------------------------------------------ list helpers (list.h)

    private static void InitListHead(ListHead* h)
    {
        h->Next = h;
        h->Prev = h;
    }

    private static bool ListEmpty(ListHead* h) => h->Next == h;

    private void ListAddToObjects(SmoObject* so)
    {
        // We free from the front, so store at the tail: frees then punch holes in the oldest slabs.
        var h = &so->List;
        var last = _objects->Prev;
        h->Next = _objects;
        h->Prev = last;
        last->Next = h;
        _objects->Prev = h;
        _count++;
    }

    /// <summary>list_del_init: unlinks and leaves the link self-pointing, the constructed state, so a freed object is recognisable.</summary>
    private void ListDelInit(SmoObject* so)
    {
        var h = &so->List;
        h->Prev->Next = h->Next;
        h->Next->Prev = h->Prev;
        InitListHead(h);
        _count--;
    }

    // ------------------------------------------------------------------ the cache's callbacks

    /// <summary>The constructor (<c>smo_object_ctor</c>): empty list link, zeroed buffer, id -1.</summary>
    public static void SmoObjectCtor(nint obj)
    {
        var so = (SmoObject*)obj;
        InitListHead(&so->List);
        new Span<byte>(so->Buf, 32).Clear();
        so->Id = -1;
    }

    /// <summary>
    /// The migrate callback (<c>smo_cache_migrate</c>): for each object, allocate a new one on
    /// <paramref name="node"/>, copy the id, unlink the old one and append the new one at the list tail, free
    /// the old one. Stops at the first allocation failure, leaving the rest where they are. An object freed
    /// by a command after its slab was frozen (self-linked, as the free path leaves it) is skipped.
    /// </summary>
    public void SmoCacheMigrate(KmemCache cache, ReadOnlySpan<nint> objects, int node, object? state, Span<MigrateResult> results)
    {
        lock (_list)
        {
            for (int i = 0; i < objects.Length; i++)
            {
                var old = (SmoObject*)objects[i];
                if (old is null || ListEmpty(&old->List)) { results[i] = MigrateResult.Skipped; continue; }
                var fresh = (SmoObject*)cache.TryAllocNode(node);
                if (fresh is null)
                {
                    Log("smo: kmem_cache_alloc failed");
                    for (int j = i; j < objects.Length; j++) results[j] = MigrateResult.Later;
                    return;
                }
                fresh->Id = old->Id;
                ListDelInit(old);
                ListAddToObjects(fresh);
                cache.Free((nint)old);
                results[i] = MigrateResult.Moved;
            }
        }
    }

    // ------------------------------------------------------------------ the control file

    // The module's table, in its order. No command may be a prefix of another (the module's rule).
    private static readonly ControlFile.CommandSpec[] s_table =
    [
        new("enable", "enable", []),
        new("alloc", "alloc [N [NODE]]", ["N", "NODE"]),
        new("free", "free [N [POS]]", ["N", "POS"]),
        new("test", "test [NR [KEEP]]", ["NR", "KEEP"]),
    ];

    /// <summary>The commands and their syntax, for help texts.</summary>
    public static IReadOnlyList<string> Usages => s_table.Select(c => c.Usage).ToArray();

    /// <summary>
    /// A write to <c>smo/callfn</c>: one command line (one trailing newline is ignored), words separated by
    /// single spaces, arguments base-10 integers, -1 or a missing argument meaning the default.
    /// </summary>
    /// <exception cref="SysfsException">The command was refused (nothing changed) or failed; the message is also in the log.
    /// EINVAL: empty write, unknown command, too many arguments, not a number, test usage. ERANGE: a number out of range.
    /// EBUSY: test without a clean module state. ENOMEM: an allocation failed. EIO: a test assertion failed.
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
                case "enable": Enable(); break;
                case "alloc": Alloc(args[0], args[1]); break;
                case "free": Free(args[0], args[1]); break;
                case "test": RunModuleTests(args[0], args[1]); break;
            }
        }
    }

    private SysfsException Refuse(Errno errno, string message) => _control.Refuse(errno, message);

    private long CheckRange(string cmd, string name, long value, long max, string defaultText) =>
        _control.CheckRange(cmd, name, value, max, defaultText);

    private void Enable()
    {
        Cache.SetupMobility(null, SmoCacheMigrate);
        Log($"smo: kmem_cache {CacheName} defrag enabled");
    }

    /// <summary><c>alloc N [NODE]</c>: N objects (default 1) appended to the list tail, on NODE if given.</summary>
    private void Alloc(long nArg, long nodeArg)
    {
        int nodes = _allocator.Topology.NodeCount;
        long n = CheckRange("alloc", "N", nArg, int.MaxValue, "1");
        long node = CheckRange("alloc", "NODE", nodeArg, nodes - 1, "any node");
        if (n == DefaultArg) n = 1;
        lock (_list)
        {
            for (long i = 0; i < n; i++)
            {
                var so = (SmoObject*)(node == DefaultArg ? Cache.TryAlloc() : Cache.TryAllocNode((int)node));
                if (so is null)
                {
                    string msg = $"smo: Failed to alloc object {i} of {n}";
                    Log(msg);
                    throw new SysfsException(Errno.ENOMEM, CallfnPath, msg + $" ({i} allocated and kept)");
                }
                ListAddToObjects(so);
            }
        }
    }

    /// <summary><c>free N [POS]</c>: skip POS objects from the head (default 0), then free N (default 1) or up to the end; N = 0 frees everything from POS on.</summary>
    private void Free(long nArg, long posArg)
    {
        long n = CheckRange("free", "N", nArg, int.MaxValue, "1");
        long pos = CheckRange("free", "POS", posArg, int.MaxValue, "0");
        if (n == DefaultArg) n = 1;
        if (pos == DefaultArg) pos = 0;
        FreeFrom(pos, n);
    }

    private long FreeFrom(long pos, long n)
    {
        lock (_list)
        {
            long i = 0, deleted = 0;
            var p = _objects->Next;
            while (p != _objects)
            {
                var next = p->Next;
                if (i < pos) { i++; p = next; continue; }
                var so = (SmoObject*)p;
                ListDelInit(so);
                Cache.Free((nint)so);
                deleted++;
                if (deleted == n) break;
                p = next;
            }
            return deleted;
        }
    }

    // ------------------------------------------------------------------ test (smo_run_module_tests)

    /// <summary>
    /// <c>test [NR [KEEP]]</c>: allocate NR objects (default 1000) with ids 0..NR-1, keep every KEEP-th
    /// (default 10), shrink before and after enabling mobility, and check the ids on the list after each step.
    /// Unlike the series' module, a failed check fails the write (EIO) after the clean-up.
    /// </summary>
    private void RunModuleTests(long nrArg, long keepArg)
    {
        long nr = CheckRange("test", "NR", nrArg, int.MaxValue, "1000");
        long keep = CheckRange("test", "KEEP", keepArg, int.MaxValue, "10");
        bool clean;
        lock (_list) clean = ListEmpty(_objects);
        if (!clean) throw Refuse(Errno.EBUSY, "smo: test requires clean module state");
        if (nr == DefaultArg) nr = 1000;
        if (keep == DefaultArg) keep = 10;
        Log($"smo: test using nr_objs: {nr} keep: {keep}");
        if (keep == 0) throw Refuse(Errno.EINVAL, "Usage: test <nr_objs> <keep>");

        // The constructor: a new object has id -1.
        var so = (SmoObject*)Cache.TryAlloc();
        if (so is null) throw Refuse(Errno.ENOMEM, "smo: Failed to alloc object");
        bool constructed = so->Id == -1;
        Cache.Free((nint)so);
        if (!constructed)
        {
            Log("smo: Initial state incorrect");
            throw Refuse(Errno.EIO, "smo: Module tests failed: Initial state incorrect");
        }

        long allocated = 0;
        lock (_list)
        {
            for (; allocated < nr; allocated++)
            {
                so = (SmoObject*)Cache.TryAlloc();
                if (so is null) break;
                so->Id = allocated;
                ListAddToObjects(so);
            }
        }
        if (allocated < nr)
        {
            Log($"smo: Failed to alloc object {allocated} of {nr}");
            FreeFrom(0, 0);
            Cache.Shrink();
            throw Refuse(Errno.ENOMEM, $"smo: Module tests failed: out of memory after {allocated} of {nr} objects");
        }
        var failed = new List<string>();
        AssertHaveObjects(nr, 1, nr, "after allocation", failed);

        lock (_list)
        {
            long pos = 0;
            var p = _objects->Next;
            while (p != _objects)
            {
                var next = p->Next;
                if (pos++ % keep != 0)
                {
                    ListDelInit((SmoObject*)p);
                    Cache.Free((nint)p);
                }
                p = next;
            }
        }
        long kept = (nr + keep - 1) / keep;

        // Shrink does not move anything while the cache is not movable.
        Cache.Shrink();
        AssertHaveObjects(nr, 1, kept, "after shrink, not movable", failed);

        // Movable: shrink moves objects (and reorders the list).
        Cache.SetupMobility(null, SmoCacheMigrate);
        Cache.Shrink();
        AssertHaveObjects(nr, keep, kept, "after shrink, movable", failed);

        FreeFrom(0, 0);
        Cache.Shrink();   // remove the empty slabs
        if (failed.Count > 0)
            throw Refuse(Errno.EIO, $"smo: Module tests failed: {failed.Count} check(s) failed: {string.Join("; ", failed)}");
        Log("smo: Module tests completed successfully");
    }

    /// <summary>
    /// The module's <c>assert_have_objects(nr, keep)</c>: every listed id is one of 0, keep, 2·keep, … up to
    /// nr, and none appears twice. Ours adds that exactly <paramref name="expectedCount"/> objects are listed,
    /// which, with the two checks, means none is missing.
    /// </summary>
    private void AssertHaveObjects(long nr, long keep, long expectedCount, string step, List<string> failed)
    {
        lock (_list) AssertHaveObjectsLocked(nr, keep, expectedCount, step, failed);
    }

    private void AssertHaveObjectsLocked(long nr, long keep, long expectedCount, string step, List<string> failed)
    {
        long nrIds = nr / keep + 1;
        var seen = new bool[nrIds];
        long count = 0;
        for (var p = _objects->Next; p != _objects; p = p->Next)
        {
            long id = ((SmoObject*)p)->Id;
            count++;
            if (id < 0 || id % keep != 0 || id / keep >= nrIds)
            {
                Log($"smo: ID not found: {id}");
                failed.Add($"{step}: ID not found: {id}");
                return;
            }
            if (seen[id / keep])
            {
                Log($"smo: ID already encountered: {id}");
                failed.Add($"{step}: ID already encountered: {id}");
                return;
            }
            seen[id / keep] = true;
        }
        if (count != expectedCount)
        {
            Log($"smo: object count wrong: want {expectedCount} got {count}");
            failed.Add($"{step}: object count wrong: want {expectedCount} got {count}");
        }
    }

    // ------------------------------------------------------------------ unload

    /// <summary>
    /// "rmmod": frees every listed object and destroys the cache, then logs the module's removal. Refuses
    /// further commands. Idempotent. Throws <see cref="CacheBusyException"/> if the cache still has objects.
    /// </summary>
    public void Unload()
    {
        lock (_cmd)
        {
            if (_unloaded) return;
            _unloaded = true;
            FreeFrom(0, 0);
            _allocator.DestroyCache(Cache);
        }
        Log("smo: Test module removed");
    }

    /// <summary>Unloads (see <see cref="Unload"/>) and releases the list head once the cache is gone.</summary>
    public void Dispose()
    {
        Unload();
        lock (_list)
        {
            if (_headFreed) return;
            _headFreed = true;
            NativeMemory.Free(_objects);
        }
    }
}
