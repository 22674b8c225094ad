using System.Diagnostics;
using Slub.Sysfs;

namespace Slub.Tests.Mobility;

public unsafe class BackgroundDefragTests
{
    /// <summary>A movable cache of 64-byte objects holding their id, referenced from an array the migrate callback updates.</summary>
    private sealed class Objects : IDisposable
    {
        public readonly SlabAllocator Allocator;
        public readonly KmemCache Cache;
        public readonly nint[] Refs;
        public int SpinMicrosPerObject;
        private int _next;

        public Objects(int capacity, string name = "bg_objs", TimeSpan? freePageReportingDelay = null)
        {
            Allocator = TestAllocator.Create(cpus: 2, mbPerNode: 64, freePageReportingDelay: freePageReportingDelay);
            Refs = new nint[capacity];
            Cache = Allocator.CreateCache(name, 64, ctor: p => { *(long*)p = -1; });
            Cache.SetupMobility(null, Migrate);
        }

        public int Add()
        {
            int id = _next++;
            nint p = Cache.Alloc();
            *(long*)p = id;
            ((long*)p)[1] = id * 7L;
            Volatile.Write(ref Refs[id], p);
            return id;
        }

        public void Remove(int id)
        {
            nint p = Refs[id];
            Refs[id] = 0;
            *(long*)p = -1;
            Cache.Free(p);
        }

        /// <summary>Fills <paramref name="slabs"/> slabs, then frees every object whose index is not a multiple of <paramref name="keepEvery"/>.</summary>
        public void Fragment(int slabs, int keepEvery)
        {
            int first = _next, n = slabs * Cache.ObjectsPerSlab;
            for (int i = 0; i < n; i++) Add();
            for (int i = 0; i < n; i++) if (i % keepEvery != 0) Remove(first + i);
            Cache.FlushAll();
        }

        private void Migrate(KmemCache cache, ReadOnlySpan<nint> objects, int node, object? state, Span<MigrateResult> results)
        {
            for (int i = 0; i < objects.Length; i++)
            {
                nint old = objects[i];
                long id = *(long*)old;
                if (id < 0) { results[i] = MigrateResult.Skipped; continue; }
                if (SpinMicrosPerObject > 0)
                {
                    // An expensive move (a callback that has to chase references): burns CPU, not wall time.
                    long until = OsThreadClock.NowNanoseconds() + SpinMicrosPerObject * 1000L;
                    while (OsThreadClock.NowNanoseconds() < until) Thread.SpinWait(20);
                }
                nint fresh = cache.AllocNode(node);
                Buffer.MemoryCopy((void*)old, (void*)fresh, 64, 64);
                Volatile.Write(ref Refs[id], fresh);
                *(long*)old = -1;
                cache.Free(old);
                results[i] = MigrateResult.Moved;
            }
        }

        public void Verify()
        {
            for (int id = 0; id < _next; id++)
            {
                nint p = Refs[id];
                if (p == 0) continue;
                Assert.Equal(id, *(long*)p);
                Assert.Equal(id * 7L, ((long*)p)[1]);
            }
        }

        public double Waste()
        {
            Cache.FlushAll();
            return BackgroundDefragmenter.Waste(Cache.GetStatistics());
        }

        public void Dispose() => Allocator.Dispose();
    }

    /// <summary>The counts the defragmenter decides on, for assertion messages.</summary>
    private static string Describe(KmemCache c)
    {
        var (slabs, total, free) = c.ReadFragmentation();
        return $"slabs {slabs}, capacity {total}, free {free} (magazines {c.MagazineObjects()}), waste {(total - free == 0 ? 0 : (double)free * 100 / (total - free)):F2}%, " +
               $"partial {c.Nodes.Sum(n => n.Partial.Count)}, stats objects {c.GetStatistics().Objects}";
    }

    private static long Later(int i) => Stopwatch.GetTimestamp() + (i + 1) * Stopwatch.Frequency;

    [Fact]
    public void StartsAboveTheLowerThresholdAndStopsAtTheStopThreshold()
    {
        using var o = new Objects(20_000);
        o.Allocator.Sysfs.Write("bg_objs/active_defrag_ignore_pages", "0");
        var d = new BackgroundDefragmenter(o.Allocator, startThread: false);

        // About 7.7% waste: below the lower threshold (10): nothing happens. (Not closer to 10: if the thread
        // moves to another CPU while filling, a partly used CPU slab adds about 1.1% of free slots.)
        o.Fragment(slabs: 100, keepEvery: 1);
        int per = o.Cache.ObjectsPerSlab;
        for (int i = 0; i < 100 * per; i += 14) o.Remove(i);
        o.Cache.FlushAll();
        double waste = o.Waste();
        Assert.InRange(waste, 5.0, 10.0);
        var it = d.Iterate(Later(0));
        Assert.True(it.Cache is null, $"started at {waste:F2}% waste (defragmenter's view: {Describe(o.Cache)})");
        Assert.False(o.Cache.ActiveDefragRunning);
        Assert.Equal(0, o.Cache.Defrag.ObjectsMoved);

        // Far above it: it starts, works in steps and stops once waste is at the stop threshold (5) or below.
        o.Fragment(slabs: 100, keepEvery: 4);
        Assert.True(o.Waste() > 50);
        it = d.Iterate(Later(1));
        Assert.True(ReferenceEquals(o.Cache, it.Cache), $"did not start: {Describe(o.Cache)}");
        Assert.True(o.Cache.ActiveDefragRunning);
        Assert.Equal("1\n", o.Allocator.Sysfs.Read("bg_objs/active_defrag_running"));
        int steps = 1;
        for (int i = 2; i < 2000 && d.Iterate(Later(i)).Cache is not null; i++) steps++;
        Assert.False(o.Cache.ActiveDefragRunning, $"still running after {steps} steps: {Describe(o.Cache)}");
        string seen = Describe(o.Cache);
        Assert.True(o.Waste() <= 5, $"waste {o.Waste():F1}% after {steps} steps (before the flush: {seen})");
        Assert.True(o.Cache.Defrag.ObjectsMoved > 0);
        Assert.True(steps > 1, "the work should take several bounded steps");
        o.Verify();

        // Hysteresis: waste back between stop and lower does not restart it.
        long moved = o.Cache.Defrag.ObjectsMoved;
        var st = o.Cache.GetStatistics();
        long toFree = st.Objects - (long)(st.TotalObjects / 1.075);   // waste to about 7.5%
        for (int id = 0; id < o.Refs.Length && toFree > 0; id += 5)
            if (o.Refs[id] != 0) { o.Remove(id); toFree--; }
        Assert.InRange(o.Waste(), 5.0, 10.0);
        for (int i = 0; i < 20; i++) Assert.Null(d.Iterate(Later(3000 + i)).Cache);
        Assert.Equal(moved, o.Cache.Defrag.ObjectsMoved);
    }

    [Fact]
    public void NothingMovesBackAndForthOnceThePartialSlabsArePacked()
    {
        using var o = new Objects(20_000);
        o.Cache.ActiveDefrag = o.Cache.ActiveDefrag with { IgnorePages = 0, ThresholdStop = 0, ThresholdLower = 0, ThresholdUpper = 1 };
        o.Fragment(slabs: 60, keepEvery: 2);
        var d = new BackgroundDefragmenter(o.Allocator, startThread: false);
        int i = 0;
        long lastMoved = -1;
        // Keep iterating with the thresholds at zero: it must reach a state where steps stop moving objects.
        for (; i < 400; i++)
        {
            d.Iterate(Later(i));
            if (i % 50 == 49)
            {
                long moved = o.Cache.Defrag.ObjectsMoved;
                if (moved == lastMoved) break;
                lastMoved = moved;
            }
        }
        Assert.True(i < 400, "steps kept moving objects");
        long settled = o.Cache.Defrag.ObjectsMoved;
        for (int j = 0; j < 100; j++) d.Iterate(Later(1000 + j));
        Assert.Equal(settled, o.Cache.Defrag.ObjectsMoved);
        var st = o.Cache.GetStatistics();
        Assert.True(st.Slabs <= st.OptimalSlabs + 2, $"{st.Slabs} slabs for {st.OptimalSlabs} optimal");
        o.Verify();
    }

    [Fact]
    public void TheThreadRunsInTheBatchClassSoItsWakeUpsDoNotPreempt()
    {
        if (!OperatingSystem.IsLinux()) return;
        using var o = new Objects(1000);
        using var d = o.Allocator.StartBackgroundDefrag();
        var started = Stopwatch.StartNew();
        while (d.OsThreadId == 0 && started.Elapsed < TimeSpan.FromSeconds(10)) Thread.Sleep(5);
        Assert.NotEqual(0, d.OsThreadId);
        Assert.Equal(OsThreadScheduling.SchedBatch, OsThreadScheduling.PolicyOf(d.OsThreadId));
        Assert.NotEqual(OsThreadScheduling.SchedBatch, OsThreadScheduling.PolicyOf(0));   // only that thread
    }

    [Fact]
    public void OneStepEmptiesAtMostMaxSlabs()
    {
        using var o = new Objects(20_000);
        o.Fragment(slabs: 40, keepEvery: 4);
        long before = o.Cache.Defrag.SlabsFreed;
        o.Cache.DefragNode(0, 0, 100, DefragPolicy.FillFullestFirst, shrinking: false, maxSlabs: 3);
        Assert.Equal(3, o.Cache.Defrag.SlabsFreed - before);
        Assert.Equal(3L * o.Cache.ObjectsPerSlab / 4, o.Cache.Defrag.ObjectsMoved);
        o.Verify();
    }

    private static long ThreadCpuNanoseconds(int tid)
    {
        // /proc/<pid>/task/<tid>/schedstat: "<ns on CPU> <ns waiting> <slices>".
        string text = File.ReadAllText($"/proc/self/task/{tid}/schedstat");
        return long.Parse(text.Split(' ')[0]);
    }

    [Fact]
    public void CpuBudgetIsRespectedOverAWindow()
    {
        if (!OperatingSystem.IsLinux() || !File.Exists("/proc/self/schedstat")) return;
        using var o = new Objects(60_000);
        o.SpinMicrosPerObject = 50;   // ~2.5 ms of CPU per slab moved: far more work than the budget allows
        o.Cache.ActiveDefrag = o.Cache.ActiveDefrag with { IgnorePages = 0, CycleMin = 10, CycleMax = 10, MaxSlabsPerStep = 1 };
        o.Fragment(slabs: 300, keepEvery: 3);
        using var d = o.Allocator.StartBackgroundDefrag();
        var started = Stopwatch.StartNew();
        while ((d.Steps == 0 || d.OsThreadId == 0) && started.Elapsed < TimeSpan.FromSeconds(10)) Thread.Sleep(5);
        Assert.True(d.Steps > 0, "the defragmenter never started");
        int tid = d.OsThreadId;
        long steps0 = d.Steps;
        long cpu0 = ThreadCpuNanoseconds(tid);
        var window = Stopwatch.StartNew();
        Thread.Sleep(1500);
        long cpu = ThreadCpuNanoseconds(tid) - cpu0;
        double windowNs = window.Elapsed.TotalNanoseconds;
        Assert.True(d.Steps > steps0, "no step ran during the window");
        Assert.True(o.Cache.ActiveDefragRunning, "the work ran out before the window ended");
        // Budget 10% of one core; allow twice that plus one step's worth of slack.
        Assert.True(cpu <= windowNs * 0.20 + 10_000_000, $"defragmenter used {cpu / 1e6:F1} ms CPU in a {windowNs / 1e6:F0} ms window (budget 10%)");
        Assert.True(d.BudgetSleeps > 0);
        d.Dispose();
        Assert.False(o.Cache.ActiveDefragRunning);
        o.Verify();
    }

    [Fact]
    public void DataStaysCorrectWithAllocatingAndFreeingThreadsThroughout()
    {
        using var a = TestAllocator.Create(cpus: 2, mbPerNode: 64);
        var table = new MovableHandleTable(a, "bg_stress", 120);
        table.Cache.ActiveDefrag = table.Cache.ActiveDefrag with
        {
            IgnorePages = 0, ThresholdLower = 2, ThresholdStop = 1, CycleMin = 50, CycleMax = 100, IntervalMs = 1, MaxSlabsPerStep = 4,
        };
        // Fragment first so there is work from the start; workers then keep churning.
        var seed = new List<long>();
        for (int i = 0; i < 20_000; i++)
        {
            long h = table.Allocate();
            using (var s = table.Access(h)) HandleTableChurn.Stamp(s.Bytes, h, 9);
            seed.Add(h);
        }
        for (int i = 0; i < seed.Count; i++) if (i % 4 != 0) table.Free(seed[i]);
        seed = seed.Where((_, i) => i % 4 == 0).ToList();

        using var d = a.StartBackgroundDefrag();
        var churn = new HandleTableChurn(table, workers: 2) { Seed = 1 };
        churn.Run(ops: 60_000);
        var wait = Stopwatch.StartNew();
        while (table.Cache.Defrag.ObjectsMoved == 0 && wait.Elapsed < TimeSpan.FromSeconds(10)) Thread.Sleep(10);
        d.Dispose();

        Assert.Equal(0, churn.Bad);
        Assert.Null(d.LastError);
        Assert.True(table.Cache.Defrag.ObjectsMoved > 0, "the background defragmenter never moved anything");
        foreach (long h in seed)
        {
            using var s = table.Access(h);
            Assert.True(HandleTableChurn.Check(s.Bytes, h, 9));
        }
        long total = seed.Count + churn.VerifyAll();
        Assert.Equal(total, table.Count);
        table.Cache.FlushAll();
        Assert.Equal(total, table.Cache.GetStatistics().Objects);
    }

    private static readonly string[] Knobs =
    [
        "active_defrag", "active_defrag_threshold_lower", "active_defrag_threshold_upper", "active_defrag_threshold_stop",
        "active_defrag_cycle_min", "active_defrag_cycle_max", "active_defrag_max_slabs", "active_defrag_ignore_pages",
        "active_defrag_interval_ms",
    ];

    [Fact]
    public void KnobsHaveDocumentedDefaultsAndTakeGoodWrites()
    {
        using var a = TestAllocator.Create();
        var t = new MovableHandleTable(a, "knobs", 32);
        string[] defaults = ["1\n", "10\n", "100\n", "5\n", "1\n", "25\n", "16\n", "100\n", "100\n"];
        Assert.Equal(defaults, Knobs.Select(k => a.Sysfs.Read($"knobs/{k}")).ToArray());
        Assert.Equal("0\n", a.Sysfs.Read("knobs/active_defrag_running"));
        Assert.Equal("0\n", a.Sysfs.Read("knobs/active_defrag_steps"));

        a.Sysfs.Write("knobs/active_defrag_threshold_upper", "200\n");
        a.Sysfs.Write("knobs/active_defrag_threshold_lower", "20");
        a.Sysfs.Write("knobs/active_defrag_threshold_stop", "12");
        a.Sysfs.Write("knobs/active_defrag_cycle_max", "75");
        a.Sysfs.Write("knobs/active_defrag_cycle_min", "65");
        a.Sysfs.Write("knobs/active_defrag_max_slabs", "4");
        a.Sysfs.Write("knobs/active_defrag_ignore_pages", "0");
        a.Sysfs.Write("knobs/active_defrag_interval_ms", "10");
        a.Sysfs.Write("knobs/active_defrag", "0");
        Assert.Equal(new ActiveDefragSettings
        {
            Enabled = false, ThresholdLower = 20, ThresholdUpper = 200, ThresholdStop = 12, CycleMin = 65, CycleMax = 75,
            MaxSlabsPerStep = 4, IgnorePages = 0, IntervalMs = 10,
        }, t.Cache.ActiveDefrag);
        Assert.Equal(65, t.Cache.ActiveDefrag.CpuShareFor(20));
        Assert.Equal(70, t.Cache.ActiveDefrag.CpuShareFor(110));
        Assert.Equal(75, t.Cache.ActiveDefrag.CpuShareFor(1000));
    }

    [Theory]
    [InlineData("active_defrag", "2", Errno.EINVAL)]
    [InlineData("active_defrag", "yes", Errno.EINVAL)]
    [InlineData("active_defrag_threshold_lower", "100", Errno.EINVAL)]   // not below upper
    [InlineData("active_defrag_threshold_lower", "4", Errno.EINVAL)]     // below stop
    [InlineData("active_defrag_threshold_lower", "-1", Errno.EINVAL)]
    [InlineData("active_defrag_threshold_upper", "10", Errno.EINVAL)]
    [InlineData("active_defrag_threshold_upper", "10001", Errno.EINVAL)]
    [InlineData("active_defrag_threshold_stop", "11", Errno.EINVAL)]     // above lower
    [InlineData("active_defrag_cycle_min", "0", Errno.EINVAL)]
    [InlineData("active_defrag_cycle_min", "26", Errno.EINVAL)]          // above max
    [InlineData("active_defrag_cycle_max", "101", Errno.EINVAL)]
    [InlineData("active_defrag_cycle_max", "x", Errno.EINVAL)]
    [InlineData("active_defrag_max_slabs", "0", Errno.EINVAL)]
    [InlineData("active_defrag_max_slabs", "99999999999", Errno.EINVAL)]
    [InlineData("active_defrag_interval_ms", "0", Errno.EINVAL)]
    [InlineData("active_defrag_ignore_pages", "1.5", Errno.EINVAL)]
    [InlineData("active_defrag_running", "1", Errno.EIO)]
    [InlineData("active_defrag_cpu_us", "0", Errno.EIO)]
    public void BadKnobWritesAreRefusedAndChangeNothing(string knob, string value, Errno errno)
    {
        using var a = TestAllocator.Create();
        var t = new MovableHandleTable(a, "knobs_bad", 32);
        var before = t.Cache.ActiveDefrag;
        string[] texts = Knobs.Select(k => a.Sysfs.Read($"knobs_bad/{k}")).ToArray();
        var e = Assert.Throws<SysfsException>(() => a.Sysfs.Write($"knobs_bad/{knob}", value));
        Assert.Equal(errno, e.Errno);
        Assert.Same(before, t.Cache.ActiveDefrag);
        Assert.Equal(texts, Knobs.Select(k => a.Sysfs.Read($"knobs_bad/{k}")).ToArray());
    }

    [Fact]
    public void SettingsPropertyValidatesTheWholeSet()
    {
        using var a = TestAllocator.Create();
        var t = new MovableHandleTable(a, "knobs_api", 32);
        var before = t.Cache.ActiveDefrag;
        Assert.Throws<ArgumentException>(() => t.Cache.ActiveDefrag = before with { CycleMin = 30, CycleMax = 20 });
        Assert.Same(before, t.Cache.ActiveDefrag);
    }

    [Fact]
    public void OnlyOneDefragmenterPerAllocatorAndDisposeStopsIt()
    {
        using var a = TestAllocator.Create();
        var d = a.StartBackgroundDefrag();
        Assert.Same(d, a.BackgroundDefrag);
        Assert.Throws<InvalidOperationException>(() => a.StartBackgroundDefrag());
        d.Dispose();
        Assert.False(d.IsRunning);
        Assert.Null(a.BackgroundDefrag);
        using var again = a.StartBackgroundDefrag();
        Assert.True(again.IsRunning);
    }
    /// <summary>
    /// A step of the running defragmenter allocates no managed memory once warmed up: it runs beside
    /// allocating threads, and any garbage it made would trigger collections that pause them (issue #10's
    /// 1 ms bound). Checked per thread with the runtime's exact allocation counter.
    /// </summary>
    [Fact]
    public void StepsAllocateNoManagedMemory()
    {
        // No report timer: a report meeting this thread on the zone lock makes the lock allocate its wait event
        // once — contention with another thread, not the step (see SlabChurnAllocatesNoManagedMemory and AllocationWindows).
        using var o = new Objects(60_000, freePageReportingDelay: Timeout.InfiniteTimeSpan);
        o.Cache.ActiveDefrag = o.Cache.ActiveDefrag with { IgnorePages = 0, MaxSlabsPerStep = 4 };
        o.Fragment(slabs: 800, keepEvery: 4);
        var d = new BackgroundDefragmenter(o.Allocator, startThread: false);
        for (int i = 0; i < 10; i++) Assert.NotNull(d.Iterate(Later(i)).Cache);   // warm-up: JIT, pools, state
        int step = 10;
        long moved = o.Cache.Defrag.ObjectsMoved, movedInLast = 0;
        long[] windows = AllocationWindows.UntilClean(3, () =>
        {
            long start = o.Cache.Defrag.ObjectsMoved;
            for (int end = step + 50; step < end; step++) d.Iterate(Later(step));
            movedInLast = o.Cache.Defrag.ObjectsMoved - start;
        });
        Assert.True(movedInLast > 0, $"the last window's steps moved nothing ({o.Cache.Defrag.ObjectsMoved - moved} moved in {windows.Length} windows)");
        Assert.True(windows[^1] == 0, $"every window of 50 steps allocated managed memory: {string.Join(", ", windows)} bytes");
        o.Verify();
    }
}
