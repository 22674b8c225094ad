using Slub.Pages;

namespace Slub;

/// <summary>Settings of one <see cref="SlabAllocator"/> (the "boot options" of this user-space kernel). Init-only properties:
/// immutable once constructed, so one instance may be shared by threads and allocators. Values are checked when an
/// allocator is created from them (<see cref="ArgumentOutOfRangeException"/>, <see cref="ArgumentException"/> for
/// <see cref="Name"/>, or <see cref="FormatException"/> for <see cref="SlubDebug"/>).</summary>
public sealed class SlabOptions
{
    /// <summary>Bytes of address space reserved per NUMA node (multiple of 4 MiB). Only touched pages use memory.</summary>
    public long BytesPerNode { get; init; } = 1L << 30;

    /// <summary>Emulate this many NUMA nodes (like <c>numa=fake=N</c>); null = the machine's real nodes.</summary>
    public int? EmulatedNodes { get; init; }

    /// <summary>Number of CPUs with per-CPU state (at least 1; 1..1024 with <see cref="EmulatedNodes"/>); null = <see cref="Environment.ProcessorCount"/>.</summary>
    public int? Cpus { get; init; }

    /// <summary>
    /// Debug flags forced on every cache, in the syntax of the kernel's <c>slub_debug=</c> boot option
    /// (e.g. <c>"FZPU"</c>, <c>"FZ,kmalloc-64"</c>, or empty for all). Null = read the environment variable
    /// <c>SLUB_DEBUG</c>; if that is unset too, no forced debugging.
    /// </summary>
    public string? SlubDebug { get; init; }

    /// <summary>Merge compatible caches as SLUB does (off with the kernel's <c>slab_nomerge</c>).</summary>
    public bool Merge { get; init; } = true;

    /// <summary>Minimum objects per slab used by the order calculation (slub_min_objects); 0 = derived from the CPU count. Not negative.</summary>
    public int MinObjects { get; init; }

    /// <summary>Highest order a slab normally uses (slub_max_order, PAGE_ALLOC_COSTLY_ORDER = 3); 0..10.</summary>
    public int MaxOrder { get; init; } = 3;

    /// <summary>Lowest order a slab uses (slub_min_order); 0..10. Above <see cref="MaxOrder"/> it raises that, as in the kernel.</summary>
    public int MinOrder { get; init; }

    /// <summary>
    /// Limit each CPU's partial slabs by slab count, as Linux 5.16 and later do: at most
    /// <c>cpu_partial_slabs</c> = ceil(2 × <c>cpu_partial</c> / objs_per_slab) slabs, and a refill from a node
    /// takes at most half that many besides the CPU slab. Off (the default): the older rule, a limit on the free
    /// objects counted when slabs join the chain (<c>pobjects</c>), which lets a CPU hoard many nearly full slabs.
    /// The default <c>cpu_partial</c> of each cache is the one its kernel paired with the rule: 120, 52, 24 or 6 with
    /// this on (5.16+), 30, 13, 6 or 2 with it off (5.2), by slot size.
    /// </summary>
    public bool CpuPartialCountsSlabs { get; init; }

    /// <summary>
    /// How long memory freed by the slab layer (discarded slabs, large kmalloc blocks) stays resident before it is
    /// given back to the OS — free page reporting, see <see cref="Pages.PageAllocator"/>. Default 100 ms: a slab
    /// cache that shrinks and grows again reuses its frames without page faults, and a defragmentation pass does
    /// not pay for <c>madvise</c>. <see cref="TimeSpan.Zero"/>: at once, inside every free;
    /// <see cref="Timeout.InfiniteTimeSpan"/>: only on <see cref="SlabAllocator.ReportFreePages"/>.
    /// </summary>
    public TimeSpan FreePageReportingDelay { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// The allocator's name (<see cref="SlabAllocator.Name"/>): it tells allocators of one process apart where they
    /// publish figures side by side, e.g. the <c>slub.allocator.name</c> attribute of every
    /// <see cref="Diagnostics.SlubMetrics"/> measurement. Null = a name given in creation order: <c>slab</c> for the
    /// first allocator of the process created without one, then <c>slab-2</c>, <c>slab-3</c>… (<see cref="SlabAllocator.Shared"/>
    /// is named <c>shared</c>). Not empty or white space. Uniqueness is not checked: two allocators given the same
    /// name publish series that cannot be told apart.
    /// </summary>
    public string? Name { get; init; }

    internal NumaTopology BuildTopology() =>
        EmulatedNodes is int n ? NumaTopology.Emulated(n, Cpus ?? Environment.ProcessorCount) : NumaTopology.Detect(Cpus);
}
