using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;

namespace Slub.Trace;

/// <summary>Settings of a <see cref="TraceReplayer"/>. Not thread-safe: fill them in before passing them to a replayer,
/// which keeps and reads them while it runs, and do not change them meanwhile.</summary>
public sealed class TraceReplayOptions
{
    /// <summary>Replay only caches whose name matches (null: all).</summary>
    public Regex? Caches { get; init; }
    /// <summary>Caches treated as movable in the what-if (null: all replayed caches).</summary>
    public Regex? Movable { get; init; }
    /// <summary>Take slot size and order from a real kernel's snapshot where it has the cache; else SLUB's rules on <c>bytes_alloc</c>.</summary>
    public SlabSnapshot? Geometry { get; init; }
    /// <summary>
    /// Null: the what-if is <c>kmem_cache_shrink</c> with SMO (CPUs flushed, every partial slab a candidate).
    /// A value: the reclaim-path defrag (<c>kmem_defrag_slabs</c>) with this defrag_used_ratio, CPU slabs left alone.
    /// </summary>
    public int? DefragUsedRatio { get; init; }
    /// <summary>Count malformed lines and go on instead of stopping with <see cref="TraceFormatException"/>.</summary>
    public bool SkipBad { get; init; }
    /// <summary>CPUs to model (null: the trace's <c>#P:</c> header or trace-cmd report's <c>cpus=</c> line, else this machine's count).</summary>
    public int? Cpus { get; init; }
    /// <summary>Defrag policies to compare; each gets its own copy of the replayed state.</summary>
    public IReadOnlyList<DefragPolicy> Policies { get; init; } = [DefragPolicy.FillFullestFirst];
    /// <summary>Record slabs held and objects live per cache over the trace (for plots).</summary>
    public bool RecordTimeline { get; init; }
    /// <summary>Upper bound of timeline points kept (the sampling interval doubles to stay under it).</summary>
    public int TimelinePoints { get; init; } = 1024;
    /// <summary>
    /// Limit per-CPU partial slabs by slab count as Linux 5.16+ does (default, and every kernel that prints
    /// this trace format); false: the older free-object limit (see <see cref="SlabOptions.CpuPartialCountsSlabs"/>).
    /// </summary>
    public bool CpuPartialCountsSlabs { get; init; } = true;
    /// <summary>Address space per replayed allocator (only touched pages use memory).</summary>
    public long BytesPerNode { get; init; } = 1L << 30;
}

/// <summary>The replay cannot go on: a CPU beyond the modelled ones, or the replayed caches ran out of address space.</summary>
public sealed class TraceReplayException : Exception
{
    /// <summary>The trace's file name ("-" for standard input).</summary>
    public string FileName { get; }
    /// <summary>1-based number of the line being replayed when the replay stopped.</summary>
    public long LineNumber { get; }

    /// <summary>Creates the exception; its message is <c>file:line: message</c>.</summary>
    /// <param name="fileName">The trace's file name.</param>
    /// <param name="lineNumber">1-based line number.</param>
    /// <param name="message">What went wrong.</param>
    /// <param name="inner">The exception that caused it, or null.</param>
    public TraceReplayException(string fileName, long lineNumber, string message, Exception? inner = null)
        : base($"{fileName}:{lineNumber}: {message}", inner)
    {
        FileName = fileName;
        LineNumber = lineNumber;
    }
}

/// <summary>
/// Replays the slab events of a kernel trace against real <see cref="KmemCache"/>s: every cache in the trace
/// becomes a cache of the same slot size and order; allocations and frees run on the CPU of the event's
/// CPU column, so per-CPU slabs and partial lists evolve as the kernel's did. At the end it reports the
/// caches as sysfs would, then runs SMO defragmentation on the movable ones (the what-if).
/// </summary>
/// <remarks>
/// <para><b>Pairing.</b> Objects pair by <c>ptr</c> within a cache (kfree finds the cache of its kmalloc).
/// A free of a pointer the replay never saw allocated is an object from before the capture: counted and
/// skipped. An allocation of a pointer that is still live means the kernel freed it without an event the
/// trace has (lost events, untraced bulk frees): the old object is freed first and counted.</para>
/// <para>The replayed objects are plain memory. Movable caches get a trivial constructor (so the free
/// pointer sits outside the object, as in any kernel cache with a constructor: the object size is the slot
/// size minus one word) and a migrate callback that copies the object to a new one and updates the
/// pointer map; the trace's pointer is kept in the object's first word to find the map entry.</para>
/// <para>Not thread-safe: one thread drives a replayer.</para>
/// </remarks>
public sealed unsafe class TraceReplayer : IDisposable
{
    private const int MaxBadLinesKept = 20;

    private readonly TraceReplayOptions _o;
    private readonly DefragPolicy[] _policies;
    private SlabAllocator[]? _worlds;
    private readonly List<ReplayCache> _caches = new();
    private readonly Dictionary<string, ReplayCache?> _byName = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ReplayCache?>.AlternateLookup<ReadOnlySpan<char>> _lookup;
    private const int RecentSlots = 64;
    private readonly (byte[]? Name, ReplayCache? Cache)[] _recent = new (byte[]?, ReplayCache?)[RecentSlots];
    private readonly Dictionary<int, ReplayCache?> _kmallocCaches = new();
    // The cache of every live replayed object by trace pointer: one address holds one object, whatever its
    // cache, and kfree does not name the cache. A null value is an object of a filtered-out cache (recorded
    // only with a filter), so its kfree is not taken for a free from before the capture.
    private readonly Dictionary<ulong, ReplayCache?> _owner = new();
    private readonly HashSet<ulong> _large = new();
    private readonly List<BadLine> _badLines = new();
    private readonly List<SizeMismatch> _sizeMismatches = new();
    private readonly List<TimelineSample> _timeline = new();
    private string _fileName = "-";
    private long _lineNumber;
    private int _cpus;
    private int? _headerCpus;
    private string _headerCpusSource = "#P header";
    private string _cpusSource = "";
    private long _lines, _events, _replayed, _skippedFrees, _other, _lost, _null, _largeCount, _bad;
    private long _firstTs = -1, _lastTs;
    private long _outOfOrder, _firstOutOfOrderLine;
    private long _sampleEvery = 256, _sinceSample;
    private bool _finished;

    /// <summary>A replayer with <paramref name="options"/> (null: defaults). The replayed allocators are created at the first slab event.</summary>
    /// <exception cref="ArgumentException">No defrag policy is given.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The defrag_used_ratio is not 0..100 or the CPU count not 1..4096.</exception>
    public TraceReplayer(TraceReplayOptions? options = null)
    {
        _o = options ?? new TraceReplayOptions();
        if (_o.Policies.Count == 0) throw new ArgumentException("at least one defrag policy", nameof(options));
        if (_o.DefragUsedRatio is < 0 or > 100) throw new ArgumentOutOfRangeException(nameof(options), _o.DefragUsedRatio, "defrag_used_ratio must be 0..100");
        if (_o.Cpus is < 1 or > 4096) throw new ArgumentOutOfRangeException(nameof(options), _o.Cpus, "CPU count must be 1..4096");
        _policies = _o.Policies.Distinct().ToArray();
        _lookup = _byName.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    /// <summary>Reads the whole trace, replays it and returns the report (with the what-if done).</summary>
    /// <param name="reader">The trace.</param>
    /// <param name="progress">Called every 65,536 lines and at the end (for a progress bar).</param>
    /// <exception cref="TraceFormatException">A malformed line, unless <see cref="TraceReplayOptions.SkipBad"/>.</exception>
    /// <exception cref="TraceReplayException">A CPU beyond the modelled ones, or the replay ran out of address space.</exception>
    public ReplayResult Run(TraceLineReader reader, Action<TraceLineReader>? progress = null)
    {
        _fileName = reader.FileName;
        while (reader.TryReadLine(out var line))
        {
            _lineNumber = reader.LineNumber;
            FeedLine(line);
            if ((_lines & 0xFFFF) == 0) progress?.Invoke(reader);
        }
        progress?.Invoke(reader);
        return Finish();
    }

    /// <summary>Replays one line of ftrace text, for callers that read lines themselves; call <see cref="Finish"/> at the end. Messages count lines from 1 (see <see cref="SetPosition"/>).</summary>
    public void Feed(ReadOnlySpan<byte> line)
    {
        _lineNumber++;
        FeedLine(line);
    }

    private void FeedLine(ReadOnlySpan<byte> line)
    {
        _lines++;
        switch (FtraceParser.TryParse(line, out var ev, out var error))
        {
            case TraceLineKind.Event:
                Apply(ref ev);
                break;
            case TraceLineKind.Comment:
                if (_worlds is null && _headerCpus is null) ReadCpuHeader(line);
                ReadOverwritten(line);
                break;
            case TraceLineKind.OtherEvent:
                _other++;
                break;
            case TraceLineKind.LostEvents:
                _lost += ev.Lost;
                break;
            default:
                string text = Encoding.UTF8.GetString(line.Length > 500 ? line[..500] : line).TrimEnd('\r');
                if (!_o.SkipBad) throw new TraceFormatException(_fileName, _lineNumber, text, error!);
                _bad++;
                if (_badLines.Count < MaxBadLinesKept) _badLines.Add(new BadLine(_lineNumber, error!, text));
                break;
        }
    }

    /// <summary>Sets the file name, and the number of the line last fed, used in messages for lines that come through <see cref="Feed"/>.</summary>
    public void SetPosition(string fileName, long lineNumber)
    {
        _fileName = fileName;
        _lineNumber = lineNumber;
    }

    // "# entries-in-buffer/entries-written: 202337/202337   #P:2" (the header of the trace file), or trace-cmd
    // report's "cpus=2".
    private void ReadCpuHeader(ReadOnlySpan<byte> line)
    {
        line = line.TrimStart((byte)' ');
        bool traceCmd = line.StartsWith("cpus="u8);
        int p = traceCmd ? 2 : line.IndexOf("#P:"u8);
        if (p < 0) return;
        var digits = line[(p + 3)..];
        int n = 0;
        while (n < digits.Length && (uint)(digits[n] - '0') <= 9) n++;
        if (n > 0 && int.TryParse(Encoding.ASCII.GetString(digits[..n]), out int cpus) && cpus is > 0 and <= 4096)
        {
            _headerCpus = cpus;
            _headerCpusSource = traceCmd ? "cpus= header" : "#P header";
        }
    }

    // The same header line: "entries-in-buffer/entries-written: A/B". The trace file prints no [LOST] lines; B - A
    // events were overwritten in the ring buffer (the oldest ones, the start of the capture).
    private void ReadOverwritten(ReadOnlySpan<byte> line)
    {
        ReadOnlySpan<byte> key = "entries-in-buffer/entries-written:"u8;
        int at = line.IndexOf(key);
        if (at < 0) return;
        var rest = line[(at + key.Length)..].TrimStart((byte)' ');
        if (System.Buffers.Text.Utf8Parser.TryParse(rest, out long inBuffer, out int used) && used < rest.Length && rest[used] == (byte)'/'
            && System.Buffers.Text.Utf8Parser.TryParse(rest[(used + 1)..], out long written, out _) && written > inBuffer && inBuffer >= 0)
            _lost += written - inBuffer;
    }

    private void Apply(ref TraceEvent ev)
    {
        _events++;
        if (_worlds is null) Start();
        if (_firstTs < 0) _firstTs = ev.TimestampNs;
        if (ev.TimestampNs < _lastTs)
        {
            // ftrace's trace and trace_pipe merge the CPUs' buffers in time order; per_cpu files glued together
            // are not, and pairing by line order would then free objects before they were allocated.
            if (_outOfOrder++ == 0) _firstOutOfOrderLine = _lineNumber;
        }
        else _lastTs = ev.TimestampNs;
        if ((uint)ev.Cpu >= (uint)_cpus)
            throw new TraceReplayException(_fileName, _lineNumber,
                $"CPU {ev.Cpu} but the replay models {_cpus} CPUs ({_cpusSource}); pass --cpus with the traced machine's CPU count");

        ReplayCache? rc;
        switch (ev.Kind)
        {
            case TraceEventKind.CacheAlloc:
                if (ev.Ptr == 0) { _null++; return; }
                rc = Lookup(ev.CacheName, ev.BytesAlloc);
                if (rc is null) { FilteredAlloc(ev.Ptr, ev.Cpu); return; }
                if (ev.BytesAlloc != rc.FirstBytesAlloc) OtherSize(rc, ev.BytesAlloc);
                Alloc(rc, ev.Ptr, ev.Cpu);
                break;
            case TraceEventKind.Kmalloc:
                if (ev.Ptr == 0) { _null++; return; }
                if (ev.BytesAlloc > Kmalloc.MaxCacheSize)
                {
                    if (_owner.Remove(ev.Ptr, out var old) && old is not null) UnseenFree(old, ev.Ptr, ev.Cpu);
                    _large.Add(ev.Ptr);
                    _largeCount++;
                    return;
                }
                rc = KmallocCache(ref ev);
                if (rc is null) { FilteredAlloc(ev.Ptr, ev.Cpu); return; }
                Alloc(rc, ev.Ptr, ev.Cpu);
                break;
            case TraceEventKind.CacheFree:
                rc = Lookup(ev.CacheName, -1, out bool known);
                if (rc is null)
                {
                    if (!known && !IsFiltered(ev.CacheName)) _skippedFrees++;   // a cache never allocated from in the trace
                    else if (known && _o.Caches is not null) FilteredFree(ev.Ptr);
                    return;
                }
                Free(rc, ev.Ptr, ev.Cpu);
                break;
            case TraceEventKind.Kfree:
                if (ev.Ptr == 0) { _null++; return; }
                // kfree() frees kmalloc objects and, on current kernels, kmem_cache_alloc() ones.
                if (_owner.TryGetValue(ev.Ptr, out rc))
                {
                    if (rc is null) { _owner.Remove(ev.Ptr); return; }   // an object of a filtered-out cache
                    Free(rc, ev.Ptr, ev.Cpu);
                    break;
                }
                if (_large.Remove(ev.Ptr)) return;
                _skippedFrees++;
                return;
        }
        _replayed++;
        if (_o.RecordTimeline && ++_sinceSample >= _sampleEvery) Sample();
    }

    // An event of a cache with another bytes_alloc than its first: the cache keeps the slots it was created with
    // (a cache has one slot size; the kernel would not report two), recorded once per cache for a warning.
    private void OtherSize(ReplayCache rc, int bytesAlloc)
    {
        if (rc.SizeMismatchSeen) return;
        rc.SizeMismatchSeen = true;
        _sizeMismatches.Add(new SizeMismatch(rc.Name, _lineNumber, bytesAlloc, rc.FirstLine, rc.FirstBytesAlloc));
    }

    private void Alloc(ReplayCache rc, ulong ptr, int cpu)
    {
        ref ReplayCache? owner = ref CollectionsMarshal.GetValueRefOrAddDefault(_owner, ptr, out bool live);
        if (live && owner != rc && owner is not null) UnseenFree(owner, ptr, cpu);   // its slab was freed and reused
        owner = rc;
        rc.Allocs++;
        for (int w = 0; w < rc.Kc.Length; w++)
        {
            var kc = rc.Kc[w];
            ref nint slot = ref CollectionsMarshal.GetValueRefOrAddDefault(rc.Maps[w], ptr, out bool exists);
            if (exists)
            {
                kc.FreeOnCpu(cpu, slot);
                if (w == 0) rc.UnseenFrees++;
            }
            nint obj = kc.TryAllocOnCpu(cpu);
            if (obj == 0)
            {
                rc.Maps[w].Remove(ptr);
                throw new TraceReplayException(_fileName, _lineNumber,
                    $"the replayed caches used up their {_o.BytesPerNode >> 20} MiB of address space; give the replay more (--arena-gib)");
            }
            if (rc.Movable) *(ulong*)obj = ptr;
            slot = obj;
        }
    }

    private void Free(ReplayCache rc, ulong ptr, int cpu)
    {
        for (int w = 0; w < rc.Kc.Length; w++)
        {
            if (!rc.Maps[w].Remove(ptr, out nint obj))
            {
                rc.SkippedFrees++;
                _skippedFrees++;
                return;
            }
            rc.Kc[w].FreeOnCpu(cpu, obj);
        }
        _owner.Remove(ptr);
        rc.Frees++;
    }

    // The kernel freed this object without an event the trace has: counted, and freed in the model.
    private static void UnseenFree(ReplayCache rc, ulong ptr, int cpu)
    {
        for (int w = 0; w < rc.Kc.Length; w++)
            if (rc.Maps[w].Remove(ptr, out nint obj)) rc.Kc[w].FreeOnCpu(cpu, obj);
        rc.UnseenFrees++;
    }

    // With a cache filter, objects of filtered-out caches are remembered by pointer (kfree does not name the
    // cache), so freeing one is neither a free from before the capture nor another cache's object.
    private void FilteredAlloc(ulong ptr, int cpu)
    {
        if (_o.Caches is null) return;
        ref ReplayCache? owner = ref CollectionsMarshal.GetValueRefOrAddDefault(_owner, ptr, out bool live);
        if (live && owner is not null) UnseenFree(owner, ptr, cpu);
        owner = null;
    }

    private void FilteredFree(ulong ptr)
    {
        if (_owner.TryGetValue(ptr, out var owner) && owner is null) _owner.Remove(ptr);
    }

    private bool IsFiltered(ReadOnlySpan<byte> name) =>
        _o.Caches is { } re && !re.IsMatch(Encoding.Latin1.GetString(name));

    /// <summary>The replay cache named <paramref name="name"/>; created on its first allocation (bytesAlloc &gt; 0). Null: filtered out, or a free in a cache not seen yet.</summary>
    private ReplayCache? Lookup(ReadOnlySpan<byte> name, int bytesAlloc) => Lookup(name, bytesAlloc, out _);

    // known: true if the name is a replayed or a filtered-out cache; false for a free in a cache not seen yet.
    private ReplayCache? Lookup(ReadOnlySpan<byte> name, int bytesAlloc, out bool known)
    {
        // A small direct-mapped cache of names already resolved (created or filtered out) skips the
        // bytes-to-chars conversion and the string hash on nearly every event.
        ref var hit = ref _recent[RecentSlot(name)];
        known = true;
        if (hit.Name is not null && name.SequenceEqual(hit.Name)) return hit.Cache;
        var rc = LookupSlow(name, bytesAlloc, out known);
        if (known) hit = (name.ToArray(), rc);
        return rc;
    }

    private static int RecentSlot(ReadOnlySpan<byte> name) =>
        name.IsEmpty ? 0 : (name.Length * 31 + name[0] * 7 + name[^1] * 3 + name[name.Length >> 1]) & (RecentSlots - 1);

    private ReplayCache? LookupSlow(ReadOnlySpan<byte> name, int bytesAlloc, out bool resolved)
    {
        resolved = true;
        Span<char> chars = name.Length <= 256 ? stackalloc char[name.Length] : new char[name.Length];
        Encoding.Latin1.GetChars(name, chars);
        if (_lookup.TryGetValue(chars, out var rc)) return rc;
        resolved = bytesAlloc > 0;
        if (!resolved) return null;
        return Create(new string(chars), bytesAlloc);
    }

    // The kmalloc cache a kmalloc event went to: kmalloc-N, kmalloc-cg-N (memcg-accounted),
    // kmalloc-rcl-N (__GFP_RECLAIMABLE) or dma-kmalloc-N (GFP_DMA), N the slot size (kernel naming).
    private ReplayCache? KmallocCache(ref TraceEvent ev)
    {
        // kmalloc_type(): __GFP_DMA first, then __GFP_RECLAIMABLE, then __GFP_ACCOUNT. Whole flag names only:
        // GFP_DMA32 is another zone (and no kmalloc type).
        int type = HasGfpFlag(ev.GfpFlags, "GFP_DMA"u8) || HasGfpFlag(ev.GfpFlags, "__GFP_DMA"u8) ? 3
            : HasGfpFlag(ev.GfpFlags, "__GFP_RECLAIMABLE"u8) ? 2
            : ev.Accounted ? 1 : 0;
        int key = type << 24 | ev.BytesAlloc;
        if (_kmallocCaches.TryGetValue(key, out var rc)) return rc;
        int size = ev.BytesAlloc;
        string sizeName = size >= 1024 && size % 1024 == 0 ? $"{size / 1024}k" : size.ToString(System.Globalization.CultureInfo.InvariantCulture);
        string name = type switch { 3 => "dma-kmalloc-", 2 => "kmalloc-rcl-", 1 => "kmalloc-cg-", _ => "kmalloc-" } + sizeName;
        rc = _byName.TryGetValue(name, out var existing) ? existing : Create(name, size);
        if (rc is not null && rc.FirstBytesAlloc != size) OtherSize(rc, size);   // named so by a kmem_cache_alloc of another size
        _kmallocCaches[key] = rc;
        return rc;
    }

    // One name of a gfp_flags value as the trace prints it: names joined by '|'.
    private static bool HasGfpFlag(ReadOnlySpan<byte> flags, ReadOnlySpan<byte> name)
    {
        foreach (var range in flags.Split((byte)'|'))
            if (flags[range].SequenceEqual(name)) return true;
        return false;
    }

    private (int, string) ResolveCpus() =>
        _o.Cpus is int c ? (c, "--cpus")
        : _headerCpus is int h ? (h, _headerCpusSource)
        : (Environment.ProcessorCount, "this machine");

    private void Start()
    {
        (_cpus, _cpusSource) = ResolveCpus();
        _worlds = new SlabAllocator[_policies.Length];
        for (int w = 0; w < _worlds.Length; w++)
            _worlds[w] = new SlabAllocator(new SlabOptions
            {
                BytesPerNode = _o.BytesPerNode,
                EmulatedNodes = 1,
                Cpus = _cpus,
                SlubDebug = "-",
                Merge = false,
                CpuPartialCountsSlabs = _o.CpuPartialCountsSlabs,
            });
    }

    private static void NoConstructor(nint obj) { }

    private ReplayCache? Create(string name, int bytesAlloc)
    {
        if (_o.Caches is { } re && !re.IsMatch(name))
        {
            _byName[name] = null;
            return null;
        }
        int slot = bytesAlloc, objectSize = bytesAlloc;
        int? order = null;
        uint? cpuPartial = null;
        long? minPartial = null;
        string source = "bytes_alloc";
        string? note = null;
        if (_o.Geometry is { } snap && snap.TryGet(name, out var g) && g.SlabSize != bytesAlloc)
            note = $"the snapshot's slab_size {g.SlabSize} differs from the trace's bytes_alloc {bytesAlloc} (a snapshot of another kernel?): sized by bytes_alloc instead";
        else if (_o.Geometry is { } snap2 && snap2.TryGet(name, out g))
        {
            slot = g.SlabSize;
            objectSize = g.ObjectSize;
            order = g.Order;
            cpuPartial = g.CpuPartial;
            minPartial = g.MinPartial;
            source = "snapshot";
        }
        // The allocator's largest object (half the largest page block), whether or not the cache is movable (whose
        // object is the slot less the free pointer's word): checked here, so the message names the trace's own number.
        int maxSlot = (Pages.OsMemory.PageSize << Pages.BuddyArena.MaxOrder) / 2;
        if (bytesAlloc > maxSlot)
            throw new TraceReplayException(_fileName, _lineNumber,
                $"cache {name}: bytes_alloc={bytesAlloc} is too large: a slot must be {CacheGeometry.WordSize}..{maxSlot} bytes ({maxSlot >> 20} MiB) to be modelled");
        if (slot % CacheGeometry.WordSize != 0)
            throw new TraceReplayException(_fileName, _lineNumber,
                $"cache {name}: slot size {slot} is not a multiple of {CacheGeometry.WordSize} (a 64-bit kernel's slab_size always is)");

        bool movable = _o.Movable?.IsMatch(name) ?? true;
        string? notMovable = null;
        if (movable && slot < 2 * CacheGeometry.WordSize)
        {
            movable = false;
            notMovable = $"a {slot}-byte slot has no room for both an object and the free pointer a constructor cache keeps outside it";
        }
        var rc = new ReplayCache(name, _caches.Count, slot, Math.Min(objectSize, slot), source, movable, notMovable, _worlds!.Length)
        {
            GeometryNote = note, FirstBytesAlloc = bytesAlloc, FirstLine = _lineNumber,
        };
        // Internal names must be unique among the allocator's own caches (kmalloc-*), so they carry the index.
        string internalName = $"r{rc.Index}.{name}";
        if (internalName.Length > 64) internalName = internalName[..64];
        for (int w = 0; w < _worlds.Length; w++)
        {
            var a = _worlds[w];
            // A constructor puts the free pointer outside the object: one word of the slot, as in the kernel.
            int size = movable ? slot - CacheGeometry.WordSize : slot;
            ObjectConstructor? ctor = movable ? NoConstructor : null;
            KmemCache kc;
            try
            {
                kc = order is int o ? a.CreateCache(internalName, size, 0, SlabFlags.None, ctor, o) : a.CreateCache(internalName, size, 0, SlabFlags.None, ctor);
            }
            catch (ArgumentOutOfRangeException e)
            {
                throw new TraceReplayException(_fileName, _lineNumber, $"cache {name}: cannot model a {slot}-byte slot{(order is int oo ? $" in order-{oo} slabs" : "")}: {e.Message}", e);
            }
            if (kc.SlabSize != slot)
                throw new InvalidOperationException($"cache {name}: modelled slot is {kc.SlabSize} bytes, wanted {slot}");
            // The traced machine's tuning of this cache, as its cpu_partial and min_partial files would set it (the
            // cache is new and empty: the flush of a cpu_partial write has nothing to do). min_partial is clamped to
            // 5..10 as the attribute tree clamps a write.
            if (cpuPartial is uint cp) kc.SetCpuPartial(cp);
            if (minPartial is long mp) kc.MinPartial = (int)Math.Clamp(mp, KmemCache.MinPartialFloor, KmemCache.MaxPartial);
            if (movable)
            {
                var map = rc.Maps[w];
                kc.SetupMobility(null, (cache, objects, node, state, results) => Migrate(map, cache, objects, node, results));
            }
            rc.Kc[w] = kc;
        }
        _caches.Add(rc);
        _byName[name] = rc;
        return rc;
    }

    // Plain memory moves by copy: new object, copy, repoint the trace's pointer; the core frees the old ones.
    // Written as MigrateCallback advises (MigrationReplacements, old objects left to the core), so the
    // cost the what-if reports is that of a well-behaved callback plus the map update every move needs.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // runs in defrag bursts: see MigrateCallback
    private static void Migrate(Dictionary<ulong, nint> map, KmemCache cache, ReadOnlySpan<nint> objects, int node, Span<MigrateResult> results)
    {
        using var fresh = new MigrationReplacements(cache, objects.Length, node, stackalloc nint[Math.Min(objects.Length, 256)]);
        for (int i = 0; i < objects.Length; i++)
        {
            nint old = objects[i];
            if (old == 0) continue;
            ulong ptr = *(ulong*)old;
            ref nint current = ref CollectionsMarshal.GetValueRefOrNullRef(map, ptr);
            if (Unsafe.IsNullRef(ref current) || current != old) { results[i] = MigrateResult.CannotMove; continue; }
            if (!fresh.TryTake(out nint moved)) { results[i] = MigrateResult.Later; continue; }   // no memory: stays where it is
            Buffer.MemoryCopy((void*)old, (void*)moved, cache.ObjectSize, cache.ObjectSize);
            current = moved;
            results[i] = MigrateResult.MovedOldLeft;
        }
    }

    private void Sample()
    {
        _sinceSample = 0;
        var slabs = new long[_caches.Count];
        var live = new long[_caches.Count];
        for (int i = 0; i < _caches.Count; i++)
        {
            var kc = _caches[i].Kc[0];
            long n = 0;
            foreach (var node in kc.Nodes) n += Volatile.Read(ref node.NrSlabs);
            slabs[i] = n;
            live[i] = _caches[i].Maps[0].Count;
        }
        _timeline.Add(new TimelineSample(_lastTs, _events, slabs, live));
        if (_timeline.Count >= _o.TimelinePoints)
        {
            // Keep every other point and sample half as often.
            int j = 0;
            for (int i = 0; i < _timeline.Count; i += 2) _timeline[j++] = _timeline[i];
            _timeline.RemoveRange(j, _timeline.Count - j);
            _sampleEvery *= 2;
        }
    }

    /// <summary>Ends the replay: takes the end-of-trace figures, runs the what-if on the movable caches and returns the report. Call once.</summary>
    public ReplayResult Finish()
    {
        if (_finished) throw new InvalidOperationException("Finish was already called");
        _finished = true;
        if (_worlds is null) (_cpus, _cpusSource) = ResolveCpus();   // no slab event at all
        if (_o.RecordTimeline && _worlds is not null) Sample();
        var results = new List<CacheReplayResult>(_caches.Count);
        foreach (var rc in _caches)
        {
            var st = rc.Kc[0].GetStatistics();
            var outcomes = new List<DefragOutcome>();
            if (rc.Movable)
                for (int w = 0; w < _policies.Length; w++) outcomes.Add(WhatIf(rc.Kc[w], _policies[w], rc.ObjectSize));
            results.Add(new CacheReplayResult
            {
                Name = rc.Name,
                SlabSize = rc.Slot,
                ObjectSize = rc.ObjectSize,
                ObjectsPerSlab = st.ObjectsPerSlab,
                Order = st.Order,
                CpuPartial = rc.Kc[0].CpuPartial,
                MinPartial = rc.Kc[0].MinPartial,
                GeometrySource = rc.GeometrySource,
                GeometryNote = rc.GeometryNote,
                Allocs = rc.Allocs,
                Frees = rc.Frees,
                SkippedFrees = rc.SkippedFrees,
                UnseenFrees = rc.UnseenFrees,
                Objects = st.Objects,
                LiveObjects = rc.Maps[0].Count,
                Slabs = st.Slabs,
                Partial = st.Partial,
                CpuSlabs = st.CpuSlabs,
                OptimalSlabs = st.OptimalSlabs,
                Pages = st.Pages,
                Movable = rc.Movable,
                NotMovableReason = rc.NotMovableReason,
                AfterDefrag = outcomes,
            });
        }
        return new ReplayResult
        {
            FileName = _fileName,
            Lines = _lines,
            Events = _events,
            ReplayedEvents = _replayed,
            SkippedFrees = _skippedFrees,
            OtherEvents = _other,
            LostEvents = _lost,
            NullPointers = _null,
            LargeKmallocs = _largeCount,
            BadLineCount = _bad,
            BadLines = _badLines,
            Cpus = _cpus,
            CpusSource = _cpusSource,
            FirstTimestampNs = Math.Max(_firstTs, 0),
            LastTimestampNs = _lastTs,
            OutOfOrderEvents = _outOfOrder,
            FirstOutOfOrderLine = _firstOutOfOrderLine,
            Policies = _policies,
            DefragUsedRatio = _o.DefragUsedRatio,
            Caches = results,
            Timeline = _timeline,
            SizeMismatches = _sizeMismatches,
        };
    }

    private DefragOutcome WhatIf(KmemCache kc, DefragPolicy policy, int objectSize)
    {
        long pagesBefore = kc.GetStatistics().Pages;
        long movedBefore = kc.Defrag.ObjectsMoved;
        long? shrinkOnly = null;
        if (_o.DefragUsedRatio is null)
        {
            // What kmem_cache_shrink gets without moving anything, then (timed below) the same with SMO.
            kc.FlushAll();
            kc.DiscardEmptyAndSort();
            shrinkOnly = kc.GetStatistics().Slabs;
        }
        TimeSpan compiled = System.Runtime.JitInfo.GetCompilationTime(currentThread: true);
        long cpu = OsThreadClock.NowNanoseconds();
        if (_o.DefragUsedRatio is int ratio)
        {
            kc.DefragUsedRatio = ratio;
            for (int n = 0; n < kc.Allocator.Topology.NodeCount; n++) kc.DefragmentNode(n, policy);
        }
        else kc.Shrink(policy);
        cpu = OsThreadClock.NowNanoseconds() - cpu;
        compiled = System.Runtime.JitInfo.GetCompilationTime(currentThread: true) - compiled;
        var cpuTime = TimeSpan.FromTicks(Math.Max(0, cpu / 100 - compiled.Ticks));
        long moved = kc.Defrag.ObjectsMoved - movedBefore;
        var after = kc.GetStatistics();
        return new DefragOutcome(policy, after.Slabs, after.Partial, after.CpuSlabs, after.Pages,
            moved, pagesBefore - after.Pages, after.Objects, after.OptimalSlabs, shrinkOnly,
            moved * objectSize, cpuTime);   // the kernel's object_size: what its migrate would copy
    }

    /// <summary>Releases the replayed allocators and their memory; a <see cref="ReplayResult"/> already returned holds only figures and stays valid. Safe to call more than once.</summary>
    public void Dispose()
    {
        if (_worlds is null) return;
        foreach (var w in _worlds) w.Dispose();
        _worlds = null;
    }

    private sealed class ReplayCache(string name, int index, int slot, int objectSize, string geometrySource, bool movable, string? notMovableReason, int worlds)
    {
        public readonly string Name = name;
        public readonly int Index = index;
        public readonly int Slot = slot;
        public readonly int ObjectSize = objectSize;
        public readonly string GeometrySource = geometrySource;
        public readonly bool Movable = movable;
        public readonly string? NotMovableReason = notMovableReason;
        public readonly KmemCache[] Kc = new KmemCache[worlds];
        public readonly Dictionary<ulong, nint>[] Maps = Enumerable.Range(0, worlds).Select(_ => new Dictionary<ulong, nint>()).ToArray();
        public string? GeometryNote { get; init; }
        public int FirstBytesAlloc { get; init; }
        public long FirstLine { get; init; }
        public bool SizeMismatchSeen;
        public long Allocs, Frees, SkippedFrees, UnseenFrees;
    }
}
