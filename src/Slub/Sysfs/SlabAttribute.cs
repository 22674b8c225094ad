using System.Globalization;
using System.Text;

namespace Slub.Sysfs;

/// <summary>
/// One file of a cache's directory in the slab attribute tree (/sys/kernel/slab/&lt;cache&gt;/&lt;name&gt;):
/// how it reads, and how it takes a write (null = read-only). Texts follow the kernel's formats exactly.
/// </summary>
public sealed record SlabAttribute(string Name, Func<KmemCache, string>? Show, Action<KmemCache, string, string>? Store)
{
    /// <summary>True if the file can be read (it has a <see cref="Show"/>).</summary>
    public bool Readable => Show is not null;
    /// <summary>True if the file takes writes (it has a <see cref="Store"/>).</summary>
    public bool Writable => Store is not null;

    /// <summary>The attributes every cache directory has, in the kernel's order.</summary>
    public static IReadOnlyList<SlabAttribute> All { get; } = Build();

    private static SlabAttribute Ro(string name, Func<KmemCache, string> show) => new(name, show, null);
    private static SlabAttribute Rw(string name, Func<KmemCache, string> show, Action<KmemCache, string, string> store) => new(name, show, store);
    private static string Line(long v) => v.ToString(CultureInfo.InvariantCulture) + "\n";
    private static string Flag(KmemCache c, SlabFlags f) => (c.Flags & f) != 0 ? "1\n" : "0\n";

    private static List<SlabAttribute> Build() =>
    [
        Ro("slab_size", c => Line(c.SlabSize)),
        Ro("object_size", c => Line(c.ObjectSize)),
        Ro("objs_per_slab", c => Line(c.ObjectsPerSlab)),
        Ro("order", c => Line(c.Order)),
        Rw("min_partial", c => Line(c.MinPartial), (c, path, v) =>
            c.MinPartial = Math.Clamp((int)Math.Min(ParseUnsigned(path, v), int.MaxValue), KmemCache.MinPartialFloor, KmemCache.MaxPartial)),
        Rw("cpu_partial", c => Line(c.CpuPartial), (c, path, v) =>
        {
            ulong objects = ParseUnsigned(path, v, uint.MaxValue);
            if (objects != 0 && c.IsDebug) throw new SysfsException(Errno.EINVAL, path, "per-CPU partial slabs are off for debug caches");
            c.SetCpuPartial((uint)objects);   // kstrtouint's whole range, kept as written (cpu_partial_show prints %u); flushes all CPUs
        }),
        Ro("objects", c => PerNode(c, n => n.Objects)),
        Ro("objects_partial", c => PerNode(c, n => n.ObjectsPartial)),
        Ro("partial", c => PerNode(c, n => n.Partial)),
        Ro("cpu_slabs", c => PerNode(c, n => n.CpuSlabs)),
        Ro("ops", Ops),
        Ro("aliases", c => Line(c.Aliases)),
        Ro("align", c => Line(c.Geometry.Align)),
        Ro("hwcache_align", c => Flag(c, SlabFlags.HwCacheAlign)),
        Ro("reclaim_account", c => Flag(c, SlabFlags.ReclaimAccount)),
        Ro("destroy_by_rcu", c => Flag(c, SlabFlags.TypesafeByRcu)),
        Ro("cache_dma", _ => "0\n"),
        Ro("usersize", _ => "0\n"),
        Ro("slabs_cpu_partial", SlabsCpuPartial),
        Ro("slabs", c => PerNode(c, n => n.Slabs)),
        Ro("total_objects", c => PerNode(c, n => n.TotalObjects)),
        Ro("sanity_checks", c => Flag(c, SlabFlags.ConsistencyChecks)),
        Ro("trace", c => Flag(c, SlabFlags.Trace)),
        Ro("red_zone", c => Flag(c, SlabFlags.RedZone)),
        Ro("poison", c => Flag(c, SlabFlags.Poison)),
        Ro("store_user", c => Flag(c, SlabFlags.StoreUser)),
        // Linux 5.2 (CONFIG_SLUB_DEBUG): where the objects in use were allocated and last freed; ENOSYS without store_user.
        Ro("alloc_calls", c => Calls(c, free: false)),
        Ro("free_calls", c => Calls(c, free: true)),
        Rw("validate", _ => "", (c, path, v) =>
        {
            if (!v.StartsWith('1') || !c.IsDebug) throw new SysfsException(Errno.EINVAL, path, c.IsDebug ? "write 1 to validate" : "validate needs a debug cache (slub_debug)");
            c.Validate();
        }),
        Rw("shrink", _ => "", (c, path, v) =>
        {
            if (!v.StartsWith('1')) throw new SysfsException(Errno.EINVAL, path, "write 1 to shrink");
            c.Shrink();
        }),
        // CONFIG_FAILSLAB: the cache's switch for fault rules with cache-filter on (FaultInjection).
        Rw("failslab", c => c.FailSlab ? "1\n" : "0\n", (c, path, v) =>
        {
            // As the kernel: a merged cache is shared by several names, so one name cannot opt it in alone.
            if (c.Aliases > 0) throw new SysfsException(Errno.EINVAL, path, $"{c.Name} is merged with {c.Aliases} other cache(s)");
            c.FailSlab = (v.EndsWith('\n') ? v[..^1] : v) switch
            {
                "1" => true,
                "0" => false,
                _ => throw new SysfsException(Errno.EINVAL, path, "write 0 or 1"),
            };
        }),
        Rw("remote_node_defrag_ratio", c => Line(c.RemoteNodeDefragRatio), (c, path, v) =>
        {
            ulong ratio = ParseUnsigned(path, v, uint.MaxValue);
            if (ratio > 100) throw new SysfsException(Errno.ERANGE, path, "ratio must be 0..100");
            c.RemoteNodeDefragRatio = (int)ratio;
        }),
        Rw("defrag_used_ratio", c => Line(c.DefragUsedRatio), (c, path, v) =>
        {
            ulong ratio = ParseUnsigned(path, v);
            if (ratio > 100) throw new SysfsException(Errno.EINVAL, path, "ratio must be 0..100");
            c.DefragUsedRatio = (int)ratio;
        }),
        // NUMA move and balance (the series' patches 14/15), strictly validated.
        Rw("move", _ => "", Move),
        Rw("balance", _ => "", (c, path, v) =>
        {
            if (v != "1" && v != "1\n") throw new SysfsException(Errno.EINVAL, path, "write 1 to balance");
            if (!c.IsMovable) throw new SysfsException(Errno.EINVAL, path, $"{c.Name} SMO not enabled, cannot move objects");
            c.Balance();
        }),
        // Our SMO counters (the series has none).
        Ro("defrag_objects_moved", c => Line(c.Defrag.ObjectsMoved)),
        Ro("defrag_objects_freed", c => Line(c.Defrag.ObjectsFreed)),
        Ro("defrag_objects_busy", c => Line(c.Defrag.ObjectsBusy)),
        Ro("defrag_objects_refused", c => Line(c.Defrag.ObjectsRefused)),
        Ro("defrag_slabs_freed", c => Line(c.Defrag.SlabsFreed)),
        Ro("defrag_runs", c => Line(c.Defrag.Runs)),
        Ro("defrag_callback_failures", c => Line(c.Defrag.CallbackFailures)),
        Ro("defrag_time_us", c => Line((long)c.Defrag.TimeSpent.TotalMicroseconds)),
        // Background defragmentation (BackgroundDefragmenter): per-cache knobs, validated as a set.
        Rw("active_defrag", c => c.ActiveDefrag.Enabled ? "1\n" : "0\n", (c, path, v) =>
        {
            ulong on = ParseUnsigned(path, v);
            if (on > 1) throw new SysfsException(Errno.EINVAL, path, "write 0 or 1");
            StoreActiveDefrag(c, path, a => a with { Enabled = on == 1 });
        }),
        Knob("active_defrag_threshold_lower", a => a.ThresholdLower, (a, v) => a with { ThresholdLower = v }),
        Knob("active_defrag_threshold_upper", a => a.ThresholdUpper, (a, v) => a with { ThresholdUpper = v }),
        Knob("active_defrag_threshold_stop", a => a.ThresholdStop, (a, v) => a with { ThresholdStop = v }),
        Knob("active_defrag_cycle_min", a => a.CycleMin, (a, v) => a with { CycleMin = v }),
        Knob("active_defrag_cycle_max", a => a.CycleMax, (a, v) => a with { CycleMax = v }),
        Knob("active_defrag_max_slabs", a => a.MaxSlabsPerStep, (a, v) => a with { MaxSlabsPerStep = v }),
        Knob("active_defrag_ignore_pages", a => a.IgnorePages, (a, v) => a with { IgnorePages = v }),
        Knob("active_defrag_interval_ms", a => a.IntervalMs, (a, v) => a with { IntervalMs = v }),
        Ro("active_defrag_running", c => c.ActiveDefragRunning ? "1\n" : "0\n"),
        Ro("active_defrag_steps", c => Line(c.Defrag.BackgroundSteps)),
        Ro("active_defrag_cpu_us", c => Line((long)c.Defrag.BackgroundCpuTime.TotalMicroseconds)),
        // Per-slab objects in use, for occupancy maps (slabinfo --map).
        Ro("slab_occupancy", c => string.Join(' ', c.SlabOccupancy().Select(s => s.Inuse)) + "\n"),
    ];

    private static string Calls(KmemCache c, bool free) =>
        (c.Flags & SlabFlags.StoreUser) != 0 ? c.ListLocations(free)
        : throw new SysfsException(Errno.ENOSYS, $"{c.Name}/{(free ? "free_calls" : "alloc_calls")}", "the cache does not store users (slub_debug=U)");

    private static readonly System.Text.RegularExpressions.Regex s_moveSyntax =
        new(@"\A[nN]?([0-9]{1,2})(?: [nN]?([0-9]{1,2}))?\z", System.Text.RegularExpressions.RegexOptions.CultureInvariant);   // \z: `$` would also match before a second trailing newline

    // "N<a>": everything to node a; "N<a> N<b>": node a's objects to node b; "N<a> N<a>": compact node a.
    private static void Move(KmemCache c, string path, string value)
    {
        string text = value.EndsWith('\n') ? value[..^1] : value;
        var m = s_moveSyntax.Match(text);
        if (!m.Success) throw new SysfsException(Errno.EINVAL, path, $"expected N<node> or N<from> N<to>, got '{text}'");
        int nodes = c.Allocator.Topology.NodeCount;
        int a = int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
        int b = m.Groups[2].Success ? int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture) : -1;
        if (a >= nodes || b >= nodes) throw new SysfsException(Errno.EINVAL, path, $"no node {(a >= nodes ? a : b)} with memory (nodes 0..{nodes - 1})");
        if (!c.IsMovable) throw new SysfsException(Errno.EINVAL, path, $"{c.Name} SMO not enabled, cannot move objects");
        if (b < 0) c.MoveToNode(a); else c.MoveNode(a, b);
    }

    /// <summary>The kernel's show_slab_objects format: total, then " N&lt;node&gt;=&lt;count&gt;" for each node with a non-zero count.</summary>
    internal static string PerNode(KmemCache c, Func<NodeStatistics, long> pick)
    {
        var st = c.GetStatistics();
        var sb = new StringBuilder();
        sb.Append(st.Nodes.Sum(pick).ToString(CultureInfo.InvariantCulture));
        foreach (var n in st.Nodes)
        {
            long v = pick(n);
            if (v != 0) sb.Append(CultureInfo.InvariantCulture, $" N{n.Node}={v}");
        }
        return sb.Append('\n').ToString();
    }

    // Kernel 6.x: per-CPU partial slabs are assumed half full: objects = slabs * objs_per_slab / 2.
    // The text of the kernel whose per-CPU partial rule is in force. Both print only CPUs that have a chain.
    // Linux 5.2 (free-object rule): "%d(%d)" of the free objects the slabs had when they joined the chain
    // (pobjects) and the slabs (pages), summed over the CPUs, then " C%d=%d(%d)" per CPU while the text is
    // shorter than PAGE_SIZE - 20. Linux 5.16+/6.x (slab-count rule): the slabs, with objects approximated as
    // slabs * objs_per_slab / 2 (half-full slabs, as slub_set_cpu_partial assumes); sysfs_emit_at truncates
    // the text at PAGE_SIZE - 1 bytes.
    private const int PageSize = 4096;

    private static string SlabsCpuPartial(KmemCache c)
    {
        var st = c.GetStatistics();
        bool slabRule = c.Allocator.Options.CpuPartialCountsSlabs;
        int slabs = st.CpuPartial.Sum(p => p.Slabs);
        int objects = slabRule ? slabs * c.ObjectsPerSlab / 2 : st.CpuPartial.Sum(p => p.FreeAtJoin);
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"{objects}({slabs})");
        foreach (var p in st.CpuPartial)
        {
            if (!slabRule && sb.Length >= PageSize - 20) break;
            int pobjects = slabRule ? p.Slabs * c.ObjectsPerSlab / 2 : p.FreeAtJoin;
            sb.Append(CultureInfo.InvariantCulture, $" C{p.Cpu}={pobjects}({p.Slabs})");
        }
        sb.Append('\n');
        if (slabRule && sb.Length > PageSize - 1) sb.Length = PageSize - 1;
        return sb.ToString();
    }

    // The series' `ops` file: one "label : symbol" line per callback that is set.
    private static string Ops(KmemCache c)
    {
        var sb = new StringBuilder();
        if (c.Constructor is { } ctor) sb.Append("ctor : ").Append(Symbol(ctor)).Append('\n');
        if (c.Mobility is { } m)
        {
            if (m.Isolate is { } iso) sb.Append("isolate : ").Append(Symbol(iso)).Append('\n');
            sb.Append("migrate : ").Append(Symbol(m.Migrate)).Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>A delegate's target written like the kernel's %pS: name+0xoffset/0xsize [module].</summary>
    internal static string Symbol(Delegate d)
    {
        var m = d.Method;
        int size = 0;
        try { size = m.GetMethodBody()?.GetILAsByteArray()?.Length ?? 0; } catch (InvalidOperationException) { }
        return $"{SymbolName(m)}+0x0/0x{size:x} [{m.Module.Assembly.GetName().Name}]";
    }

    /// <summary>
    /// Type.Method of a delegate's method. A lambda or local function has a compiler-generated name in a
    /// compiler-generated type (<c>&lt;&gt;c__DisplayClass18_0.&lt;.ctor&gt;b__0</c>); it is named after the type and
    /// method that contain it in the source instead (<c>MovableHandleTable.ctor_lambda_0</c>,
    /// <c>Owner.Method_LocalName</c>), which is what a reader can look up.
    /// </summary>
    internal static string SymbolName(System.Reflection.MethodInfo m)
    {
        var t = m.DeclaringType;
        while (t is not null && t.Name.StartsWith('<') && t.DeclaringType is not null) t = t.DeclaringType;
        string name = m.Name;
        int close = name.IndexOf('>');
        if (name.StartsWith('<') && close > 1)
        {
            string outer = name[1..close].TrimStart('.');
            int marker = name.IndexOf("__", close, StringComparison.Ordinal);
            int bar = marker < 0 ? -1 : name.IndexOf('|', marker);
            name = close + 1 < name.Length && name[close + 1] == 'g' && bar > marker
                ? $"{outer}_{name[(marker + 2)..bar]}"                                  // local function
                : $"{outer}_lambda_{(marker < 0 ? "0" : name[(marker + 2)..])}";       // lambda
        }
        return t is null ? name : $"{t.Name}.{name}";
    }

    // An integer knob of the background defragmenter: parsed, range-checked with the rest of the set, stored atomically.
    private static SlabAttribute Knob(string name, Func<ActiveDefragSettings, int> get, Func<ActiveDefragSettings, int, ActiveDefragSettings> with) =>
        Rw(name, c => Line(get(c.ActiveDefrag)), (c, path, v) =>
        {
            ulong value = ParseUnsigned(path, v);
            if (value > int.MaxValue) throw new SysfsException(Errno.EINVAL, path, "value out of range");
            StoreActiveDefrag(c, path, a => with(a, (int)value));
        });

    private static void StoreActiveDefrag(KmemCache c, string path, Func<ActiveDefragSettings, ActiveDefragSettings> change)
    {
        if (c.UpdateActiveDefrag(change) is { } problem) throw new SysfsException(Errno.EINVAL, path, problem);
    }

    /// <summary>
    /// kstrtoul(text, 10) (or kstrtouint with <paramref name="max"/> = <see cref="uint.MaxValue"/>): an optional '+',
    /// decimal digits, at most one trailing newline and nothing else (no blanks); EINVAL otherwise, ERANGE when the
    /// number does not fit.
    /// </summary>
    internal static ulong ParseUnsigned(string path, string text, ulong max = ulong.MaxValue)
    {
        var t = text.AsSpan();
        if (t.StartsWith('+')) t = t[1..];
        int digits = 0;
        while (digits < t.Length && char.IsAsciiDigit(t[digits])) digits++;
        var rest = t[digits..];
        if (rest.StartsWith('\n')) rest = rest[1..];
        // As kstrtoull: a 64-bit overflow is found while reading the digits, before the rest is looked at; the
        // narrower kstrtouint range only once the whole text has parsed.
        bool fits = ulong.TryParse(t[..digits], NumberStyles.None, CultureInfo.InvariantCulture, out ulong v);
        if (digits > 0 && !fits)
            throw new SysfsException(Errno.ERANGE, path, $"'{text.TrimEnd('\n')}' is out of range");
        if (digits == 0 || !rest.IsEmpty)
            throw new SysfsException(Errno.EINVAL, path, $"'{text.TrimEnd('\n')}' is not an unsigned number");
        if (v > max)
            throw new SysfsException(Errno.ERANGE, path, $"'{text.TrimEnd('\n')}' is out of range");
        return v;
    }
}
