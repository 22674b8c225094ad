using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Slub.Diagnostics;

/// <summary>
/// Publishes an allocator's cache and defragmentation figures as <see cref="System.Diagnostics.Metrics"/>
/// instruments on a meter named <c>Slub</c>, for dotnet-counters (<c>dotnet-counters monitor --counters Slub</c>)
/// and OpenTelemetry. All instruments are observable: figures are read from the allocator when a listener
/// collects, nothing is counted on the allocation path.
/// </summary>
/// <remarks>
/// <para>Instruments. Every measurement carries the attribute <c>slub.allocator.name</c> (<see cref="SlabAllocator.Name"/>),
/// so allocators of one process, which may well have caches of the same name, report distinct series; the
/// <c>slub.cache.*</c> and <c>slub.defrag.*</c> ones also carry <c>slub.cache.name</c>; the <c>slub.page.*</c> ones
/// are allocator-wide.</para>
/// <list type="table">
/// <item><term><c>slub.cache.pages</c></term><description>ObservableUpDownCounter, <c>{page}</c>: pages held by the cache's slabs.</description></item>
/// <item><term><c>slub.cache.objects</c></term><description>ObservableUpDownCounter, <c>{object}</c>: objects in use (as sysfs <c>objects</c>).</description></item>
/// <item><term><c>slub.cache.fragmentation_ratio</c></term><description>ObservableGauge, <c>1</c>: object capacity of the slabs / objects in use (caches with objects only).</description></item>
/// <item><term><c>slub.defrag.objects_moved</c></term><description>ObservableCounter, <c>{object}</c>: objects moved by SMO defragmentation (movable caches).</description></item>
/// <item><term><c>slub.defrag.slabs_freed</c></term><description>ObservableCounter, <c>{slab}</c>: slabs freed by defragmentation.</description></item>
/// <item><term><c>slub.defrag.cpu_time</c></term><description>ObservableCounter, <c>s</c>: CPU time of the background defragmenter spent on the cache.</description></item>
/// <item><term><c>slub.page.unreported</c></term><description>ObservableUpDownCounter, <c>By</c>: free memory still resident, waiting for free page reporting.</description></item>
/// <item><term><c>slub.page.reported</c></term><description>ObservableCounter, <c>By</c>: memory given back to the OS by free page reporting.</description></item>
/// </list>
/// <para>One meter per allocator: named <c>Slub</c>, with the meter tag <c>slub.allocator.name</c> as well. It comes
/// from <see cref="IMeterFactory"/> when one is given (the host's DI container owns it; its factory caches meters by
/// name, version and tags, so the tag gives each allocator its own meter there); otherwise this object creates its own
/// meter and disposes it. It does not use one static meter, because observable instruments cannot be removed from a
/// meter one by one, and a static meter would keep every disposed allocator reachable from its callbacks. Publish an
/// allocator once per factory: a second <see cref="SlubMetrics"/> of it on the same factory shares the meter and
/// duplicates every series.</para>
/// <para>Once this object or its allocator is disposed the instruments report nothing (no figures of memory that
/// is gone) and never throw.</para>
/// <para><b>Thread-safety.</b> All members are thread-safe: listeners may collect on any thread, concurrently with
/// allocation and with each other (each collection reads the counters without stopping the allocator, so figures of
/// different caches are not one atomic snapshot); <see cref="Dispose"/> is idempotent and may race with a collection.</para>
/// </remarks>
public sealed class SlubMetrics : IDisposable
{
    /// <summary>The meter name to listen to.</summary>
    public const string MeterName = "Slub";

    /// <summary>The attribute naming the cache on every measurement.</summary>
    public const string CacheNameAttribute = "slub.cache.name";

    /// <summary>The attribute naming the allocator (<see cref="SlabAllocator.Name"/>) on every measurement and on the meter.</summary>
    public const string AllocatorNameAttribute = "slub.allocator.name";

    private readonly SlabAllocator _allocator;
    private readonly KeyValuePair<string, object?> _allocatorTag;
    private readonly bool _ownsMeter;
    private volatile bool _disposed;

    /// <summary>The meter the instruments live on.</summary>
    public Meter Meter { get; }

    /// <summary>Creates the instruments listed in the remarks for <paramref name="allocator"/>, on a meter from
    /// <paramref name="meterFactory"/> or, when it is null, on a <c>Meter("Slub")</c> of its own; either is tagged with
    /// the allocator's name. Thread-safe.</summary>
    public SlubMetrics(SlabAllocator allocator, IMeterFactory? meterFactory = null)
    {
        ArgumentNullException.ThrowIfNull(allocator);
        _allocator = allocator;
        _allocatorTag = new(AllocatorNameAttribute, allocator.Name);
        var options = new MeterOptions(MeterName)
        {
            Version = typeof(SlubMetrics).Assembly.GetName().Version?.ToString(),
            Tags = [_allocatorTag],
        };
        if (meterFactory is not null) Meter = meterFactory.Create(options);
        else { Meter = new Meter(options); _ownsMeter = true; }

        Meter.CreateObservableUpDownCounter("slub.cache.pages", () => PerCache(all: true, st => st.Pages),
            unit: "{page}", description: "Pages held by the cache's slabs.");
        Meter.CreateObservableUpDownCounter("slub.cache.objects", () => PerCache(all: true, st => st.Objects),
            unit: "{object}", description: "Objects in use in the cache.");
        Meter.CreateObservableGauge("slub.cache.fragmentation_ratio", FragmentationRatios,
            unit: "1", description: "Object capacity of the cache's slabs divided by the objects in use.");
        Meter.CreateObservableCounter("slub.defrag.objects_moved", () => PerMovable(c => c.Defrag.ObjectsMoved),
            unit: "{object}", description: "Objects moved by slab defragmentation.");
        Meter.CreateObservableCounter("slub.defrag.slabs_freed", () => PerMovable(c => c.Defrag.SlabsFreed),
            unit: "{slab}", description: "Slabs freed by slab defragmentation.");
        Meter.CreateObservableCounter("slub.defrag.cpu_time", CpuTimes,
            unit: "s", description: "CPU time the background defragmenter spent on the cache.");
        Meter.CreateObservableUpDownCounter("slub.page.unreported", () => PageFigure(p => p.UnreportedBytes),
            unit: "By", description: "Free memory still resident, not yet given back to the OS (free page reporting).");
        Meter.CreateObservableCounter("slub.page.reported", () => PageFigure(p => p.ReportedBytes),
            unit: "By", description: "Memory given back to the OS by free page reporting.");
    }

    private TagList Tags(KmemCache c) => new() { _allocatorTag, new(CacheNameAttribute, c.Name) };

    /// <summary>Nothing to report: this object or the allocator (whose caches and pages are gone) is disposed.</summary>
    private bool Silent => _disposed || _allocator.IsDisposed;

    private IEnumerable<Measurement<long>> PageFigure(Func<Pages.PageAllocator, long> pick) =>
        Silent ? [] : [new Measurement<long>(pick(_allocator.Pages), _allocatorTag)];

    private IEnumerable<Measurement<long>> PerCache(bool all, Func<CacheStatistics, long> pick)
    {
        if (Silent) return [];
        var list = new List<Measurement<long>>();
        foreach (var c in _allocator.Caches)
            if (all || c.IsMovable) list.Add(new Measurement<long>(pick(c.GetStatistics()), Tags(c)));
        return list;
    }

    private IEnumerable<Measurement<long>> PerMovable(Func<KmemCache, long> pick)
    {
        if (Silent) return [];
        return _allocator.Caches.Where(c => c.IsMovable).Select(c => new Measurement<long>(pick(c), Tags(c))).ToList();
    }

    private IEnumerable<Measurement<double>> FragmentationRatios()
    {
        if (Silent) return [];
        var list = new List<Measurement<double>>();
        foreach (var c in _allocator.Caches)
        {
            var st = c.GetStatistics();
            if (st.Objects > 0) list.Add(new Measurement<double>((double)st.TotalObjects / st.Objects, Tags(c)));
        }
        return list;
    }

    private IEnumerable<Measurement<double>> CpuTimes()
    {
        if (Silent) return [];
        return _allocator.Caches.Where(c => c.IsMovable)
            .Select(c => new Measurement<double>(c.Defrag.BackgroundCpuTime.TotalSeconds, Tags(c))).ToList();
    }

    /// <summary>Stops reporting; disposes the meter if this object created it. Idempotent; thread-safe.</summary>
    public void Dispose()
    {
        _disposed = true;
        if (_ownsMeter) Meter.Dispose();
    }
}
