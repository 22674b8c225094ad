using System.Diagnostics.Metrics;
using Slub.Diagnostics;

namespace Slub.Tests.Diagnostics;

public class SlubMetricsTests
{
    private sealed record Seen(string Instrument, string? Unit, string Kind, double Value, string? Cache);

    /// <summary>Collects one round of the observable instruments of <paramref name="meter"/> only (other tests' meters share the name).</summary>
    private static List<Seen> Collect(Meter meter)
    {
        var seen = new List<Seen>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) => { if (ReferenceEquals(instrument.Meter, meter)) l.EnableMeasurementEvents(instrument); };
        void Record(Instrument i, double v, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            string? cache = null;
            foreach (var t in tags) if (t.Key == SlubMetrics.CacheNameAttribute) cache = t.Value as string;
            lock (seen) seen.Add(new Seen(i.Name, i.Unit, i.GetType().Name, v, cache));
        }
        listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Record(i, v, tags));
        listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Record(i, v, tags));
        listener.Start();
        listener.RecordObservableInstruments();
        return seen;
    }

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
        Assert.Equal(a.Pages.UnreportedBytes, Value(before, "slub.pages.unreported"));
        Assert.True(Value(before, "slub.pages.unreported") >= 2000 * 512);
        Assert.Equal(0, Value(before, "slub.pages.reported"));

        long given = a.ReportFreePages();
        var after = Collect(metrics.Meter);
        Assert.Equal(0, Value(after, "slub.pages.unreported"));
        Assert.Equal(given, Value(after, "slub.pages.reported"));
        var kinds = after.Where(s => s.Instrument.StartsWith("slub.pages.")).ToDictionary(s => s.Instrument, s => (s.Unit, s.Kind));
        Assert.Equal(("By", "ObservableUpDownCounter`1"), kinds["slub.pages.unreported"]);
        Assert.Equal(("By", "ObservableCounter`1"), kinds["slub.pages.reported"]);
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
}
