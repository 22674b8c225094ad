using System.Diagnostics.Metrics;
using Slub.Diagnostics;

namespace Slub.Tests.Diagnostics;

public class SlubMetricsTests
{
    private sealed record Seen(string Instrument, string? Unit, string Kind, double Value, string? Cache, string? Allocator = null);

    /// <summary>Collects one round of the observable instruments of <paramref name="meters"/> only (other tests' meters share the name).</summary>
    private static List<Seen> Collect(params Meter[] meters)
    {
        var seen = new List<Seen>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) => { if (meters.Contains(instrument.Meter)) l.EnableMeasurementEvents(instrument); };
        void Record(Instrument i, double v, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            string? cache = null, allocator = null;
            foreach (var t in tags)
            {
                if (t.Key == SlubMetrics.CacheNameAttribute) cache = t.Value as string;
                if (t.Key == SlubMetrics.AllocatorNameAttribute) allocator = t.Value as string;
            }
            lock (seen) seen.Add(new Seen(i.Name, i.Unit, i.GetType().Name, v, cache, allocator));
        }
        listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Record(i, v, tags));
        listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Record(i, v, tags));
        listener.Start();
        listener.RecordObservableInstruments();
        return seen;
    }

    private static readonly string[] AllInstruments =
    [
        "slub.cache.pages", "slub.cache.objects", "slub.cache.fragmentation_ratio",
        "slub.defrag.objects_moved", "slub.defrag.slabs_freed", "slub.defrag.cpu_time",
        "slub.page.unreported", "slub.page.reported",
    ];

    [Fact]
    public void InstrumentsReportCachesAndDefragmentation()
    {
        using var a = TestAllocator.Create();
        var t = new MovableHandleTable(a, "metrics_kv", 56);
        var plain = a.CreateCache("metrics_plain", 100, flags: SlabFlags.NoMerge);
        plain.Alloc();
        plain.FlushAll();
        var handles = Enumerable.Range(0, 4000).Select(_ => t.Allocate()).ToList();
        for (int i = 0; i < handles.Count; i++) if (i % 4 != 0) t.Free(handles[i]);
        t.Cache.FlushAll();

        using var metrics = new SlubMetrics(a);
        Assert.Equal("Slub", metrics.Meter.Name);
        var before = Collect(metrics.Meter);
        double ratio = before.Single(s => s.Instrument == "slub.cache.fragmentation_ratio" && s.Cache == "metrics_kv").Value;
        Assert.InRange(ratio, 3.5, 4.5);   // three of every four slots free

        t.Cache.Shrink();
        t.Cache.FlushAll();   // objects on a CPU's free list count as in use, as in sysfs
        var after = Collect(metrics.Meter);
        Seen One(string name, string cache) => after.Single(s => s.Instrument == name && s.Cache == cache);
        var st = t.Cache.GetStatistics();
        Assert.Equal(st.Pages, One("slub.cache.pages", "metrics_kv").Value);
        Assert.Equal(st.Objects, One("slub.cache.objects", "metrics_kv").Value);
        Assert.Equal(1000, One("slub.cache.objects", "metrics_kv").Value);
        Assert.Equal(t.Cache.Defrag.ObjectsMoved, One("slub.defrag.objects_moved", "metrics_kv").Value);
        Assert.True(One("slub.defrag.objects_moved", "metrics_kv").Value > 0);
        Assert.Equal(t.Cache.Defrag.SlabsFreed, One("slub.defrag.slabs_freed", "metrics_kv").Value);
        Assert.True(One("slub.cache.fragmentation_ratio", "metrics_kv").Value < ratio);
        Assert.Equal(0, One("slub.defrag.cpu_time", "metrics_kv").Value);
        // Non-movable caches have cache figures but no defrag figures.
        Assert.Equal(1, One("slub.cache.objects", "metrics_plain").Value);
        Assert.DoesNotContain(after, s => s.Instrument.StartsWith("slub.defrag.") && s.Cache == "metrics_plain");

        var units = after.GroupBy(s => s.Instrument).ToDictionary(g => g.Key, g => (g.First().Unit, g.First().Kind));
        Assert.Equal(("{page}", "ObservableUpDownCounter`1"), units["slub.cache.pages"]);
        Assert.Equal(("{object}", "ObservableUpDownCounter`1"), units["slub.cache.objects"]);
        Assert.Equal(("1", "ObservableGauge`1"), units["slub.cache.fragmentation_ratio"]);
        Assert.Equal(("{object}", "ObservableCounter`1"), units["slub.defrag.objects_moved"]);
        Assert.Equal(("{slab}", "ObservableCounter`1"), units["slub.defrag.slabs_freed"]);
        Assert.Equal(("s", "ObservableCounter`1"), units["slub.defrag.cpu_time"]);
    }

    [Fact]
    public void FreePageReportingIsReported()
    {
        var (a, _) = TestAllocator.WithShrunkCache("metrics_pages", 512, 2000);
        using var _a = a;
        using var metrics = new SlubMetrics(a);
        double Value(List<Seen> seen, string name) => seen.Single(s => s.Instrument == name && s.Cache is null).Value;

        var before = Collect(metrics.Meter);
        Assert.Equal(a.Pages.UnreportedBytes, Value(before, "slub.page.unreported"));
        Assert.True(Value(before, "slub.page.unreported") >= 2000 * 512);
        Assert.Equal(0, Value(before, "slub.page.reported"));

        long given = a.ReportFreePages();
        var after = Collect(metrics.Meter);
        Assert.Equal(0, Value(after, "slub.page.unreported"));
        Assert.Equal(given, Value(after, "slub.page.reported"));
        var kinds = after.Where(s => s.Instrument.StartsWith("slub.page.")).ToDictionary(s => s.Instrument, s => (s.Unit, s.Kind));
        Assert.Equal(("By", "ObservableUpDownCounter`1"), kinds["slub.page.unreported"]);
        Assert.Equal(("By", "ObservableCounter`1"), kinds["slub.page.reported"]);
    }

    [Fact]
    public void BackgroundCpuTimeIsReported()
    {
        using var a = TestAllocator.Create();
        var t = new MovableHandleTable(a, "metrics_bg", 56);
        t.Cache.ActiveDefrag = t.Cache.ActiveDefrag with { IgnorePages = 0 };
        var handles = Enumerable.Range(0, 6000).Select(_ => t.Allocate()).ToList();
        for (int i = 0; i < handles.Count; i++) if (i % 3 != 0) t.Free(handles[i]);
        t.Cache.FlushAll();
        var d = new BackgroundDefragmenter(a, startThread: false);
        for (int i = 0; i < 5; i++) d.Iterate(System.Diagnostics.Stopwatch.GetTimestamp() + i * System.Diagnostics.Stopwatch.Frequency);
        using var metrics = new SlubMetrics(a);
        var seen = Collect(metrics.Meter);
        double cpu = seen.Single(s => s.Instrument == "slub.defrag.cpu_time" && s.Cache == "metrics_bg").Value;
        Assert.True(cpu > 0);
        Assert.Equal(t.Cache.Defrag.BackgroundCpuTime.TotalSeconds, cpu, 9);
        // Steps are charged to the cache; a pass that only measures (e.g. the one that sees the cache reach
        // its stop threshold) is charged to the defragmenter alone.
        Assert.True(d.CpuTime >= t.Cache.Defrag.BackgroundCpuTime);
    }

    private sealed class TestMeterFactory : IMeterFactory
    {
        public readonly List<Meter> Meters = new();
        public Meter Create(MeterOptions options)
        {
            var m = new Meter(options.Name, options.Version, options.Tags, scope: this);
            Meters.Add(m);
            return m;
        }
        public void Dispose() { foreach (var m in Meters) m.Dispose(); }
    }

    [Fact]
    public void UsesTheMeterFactoryWhenGivenAndStopsReportingWhenDisposed()
    {
        using var a = TestAllocator.Create();
        var t = new MovableHandleTable(a, "metrics_factory", 56);
        t.Allocate();
        t.Cache.FlushAll();
        using var factory = new TestMeterFactory();
        var metrics = new SlubMetrics(a, factory);
        Assert.Same(factory.Meters.Single(), metrics.Meter);
        Assert.Same(factory, metrics.Meter.Scope);
        Assert.Contains(Collect(metrics.Meter), s => s.Instrument == "slub.cache.objects" && s.Cache == "metrics_factory" && s.Value == 1);
        metrics.Dispose();
        Assert.Empty(Collect(metrics.Meter));
    }

    [Fact]
    public void ReportsNothingOnceTheAllocatorIsDisposed()
    {
        // A listener outliving the allocator (dotnet-counters attached, a host disposing in the wrong order) must not
        // be shown the caches and pages of memory that no longer exists, nor make the callbacks touch it.
        var a = TestAllocator.Create();
        var c = a.CreateCache("metrics_gone", 100, flags: SlabFlags.NoMerge);
        c.Alloc();
        c.FlushAll();   // the rest of the magazine's refill back to the slab
        using var factory = new TestMeterFactory();
        using var metrics = new SlubMetrics(a, factory);
        Assert.Contains(Collect(metrics.Meter), s => s.Instrument == "slub.cache.objects" && s.Cache == "metrics_gone" && s.Value == 1);
        a.Dispose();
        Assert.Empty(Collect(metrics.Meter));
    }

    /// <summary>Like the DI container's meter factory: one meter per name, version and tags, owned by the factory.</summary>
    private sealed class CachingMeterFactory : IMeterFactory
    {
        public readonly List<Meter> Meters = new();
        public Meter Create(MeterOptions options)
        {
            lock (Meters)
            {
                var tags = (options.Tags ?? []).OrderBy(t => t.Key).ToList();
                foreach (var m in Meters)
                    if (m.Name == options.Name && m.Version == options.Version
                        && (m.Tags ?? []).OrderBy(t => t.Key).SequenceEqual(tags)) return m;
                var meter = new Meter(options.Name, options.Version, options.Tags, scope: this);
                Meters.Add(meter);
                return meter;
            }
        }
        public void Dispose() { foreach (var m in Meters) m.Dispose(); }
    }

    /// <summary>Two allocators, each with a cache <c>kmalloc_twin</c> holding <paramref name="countA"/> and <paramref name="countB"/> objects.</summary>
    private static (SlabAllocator A, SlabAllocator B) Twins(int countA, int countB, string? nameA = "alloc-a", string? nameB = "alloc-b")
    {
        var a = TestAllocator.Create(name: nameA);
        var b = TestAllocator.Create(name: nameB);
        foreach (var (alloc, n) in new[] { (a, countA), (b, countB) })
        {
            var c = alloc.CreateCache("kmalloc_twin", 64, flags: SlabFlags.NoMerge);
            for (int i = 0; i < n; i++) c.Alloc();
            c.FlushAll();
        }
        return (a, b);
    }

    private static void AssertTwinSeries(List<Seen> seen, SlabAllocator a, SlabAllocator b)
    {
        Assert.NotEqual(a.Name, b.Name);
        var objects = seen.Where(s => s.Instrument == "slub.cache.objects" && s.Cache == "kmalloc_twin").ToList();
        Assert.Equal(2, objects.Count);
        Assert.Equal(3, objects.Single(s => s.Allocator == a.Name).Value);
        Assert.Equal(5, objects.Single(s => s.Allocator == b.Name).Value);
        Assert.All(seen, s => Assert.Contains(s.Allocator, new[] { a.Name, b.Name }));
        // No two measurements of one collection share instrument and attributes: every series is one allocator's.
        var dup = seen.GroupBy(s => (s.Instrument, s.Cache, s.Allocator)).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        Assert.Empty(dup);
        Assert.Equal(2, seen.Count(s => s.Instrument == "slub.page.unreported"));
    }

    [Fact]
    public void TwoAllocatorsWithSameNamedCachesReportDistinctSeries()
    {
        var (a, b) = Twins(3, 5);
        using var _a = a;
        using var _b = b;
        using var ma = new SlubMetrics(a);
        using var mb = new SlubMetrics(b);
        AssertTwinSeries(Collect(ma.Meter, mb.Meter), a, b);
    }

    [Fact]
    public void TwoAllocatorsOnOneCachingMeterFactoryReportDistinctSeriesOnTheirOwnMeters()
    {
        var (a, b) = Twins(3, 5, nameA: null, nameB: null);   // default names
        using var _a = a;
        using var _b = b;
        using var factory = new CachingMeterFactory();
        using var ma = new SlubMetrics(a, factory);
        using var mb = new SlubMetrics(b, factory);
        // The allocator is a meter tag too, so a factory that caches meters by name, version and tags gives each its own.
        Assert.NotSame(ma.Meter, mb.Meter);
        Assert.Equal(2, factory.Meters.Count);
        Assert.Contains(new KeyValuePair<string, object?>(SlubMetrics.AllocatorNameAttribute, a.Name), ma.Meter.Tags ?? []);
        Assert.Contains(new KeyValuePair<string, object?>(SlubMetrics.AllocatorNameAttribute, b.Name), mb.Meter.Tags ?? []);
        AssertTwinSeries(Collect(ma.Meter, mb.Meter), a, b);
    }

    [Fact]
    public void EveryInstrumentCarriesTheAllocatorName()
    {
        using var a = TestAllocator.Create(name: "tagged", freePageReportingDelay: Timeout.InfiniteTimeSpan);
        var t = new MovableHandleTable(a, "metrics_tagged", 56);
        var handles = Enumerable.Range(0, 2000).Select(_ => t.Allocate()).ToList();
        for (int i = 0; i < handles.Count; i++) if (i % 4 != 0) t.Free(handles[i]);
        t.Cache.FlushAll();
        t.Cache.Shrink();
        using var metrics = new SlubMetrics(a);
        Assert.Contains(new KeyValuePair<string, object?>(SlubMetrics.AllocatorNameAttribute, "tagged"), metrics.Meter.Tags ?? []);
        var seen = Collect(metrics.Meter);
        Assert.Equal(AllInstruments.Order(), seen.Select(s => s.Instrument).Distinct().Order());
        Assert.All(seen, s => Assert.Equal("tagged", s.Allocator));
    }
}
