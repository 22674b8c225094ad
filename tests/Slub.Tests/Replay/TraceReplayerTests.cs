using System.Text;
using System.Text.RegularExpressions;
using Slub.Trace;

namespace Slub.Tests.Replay;

public class TraceReplayerTests
{
    private static string Alloc(int cpu, string ptr, string cache, int bytes, double ts = 1.0) => FtraceLines.Alloc(ptr, cache, bytes, cpu, ts);

    private static string Free(int cpu, string ptr, string cache, double ts = 1.0) => FtraceLines.Free(ptr, cache, cpu, ts);

    private static ReplayResult Replay(IEnumerable<string> lines, TraceReplayOptions? options = null, string name = "test.trace")
    {
        var text = string.Join("\n", lines) + "\n";
        using var reader = new TraceLineReader(new MemoryStream(Encoding.UTF8.GetBytes(text)), name);
        using var replayer = new TraceReplayer(options ?? new TraceReplayOptions { Cpus = 2 });
        return replayer.Run(reader);
    }

    private static string P(int i) => FtraceLines.Ptr(i);

    [Fact]
    public void EventsOutOfTimeOrderAreCountedWithTheFirstLine()
    {
        // Two per_cpu files joined: CPU 1's events (later lines) start before CPU 0's last one.
        var r = Replay([
            Alloc(0, P(1), "dentry", 192, ts: 1.0),
            Free(0, P(1), "dentry", ts: 3.0),
            Alloc(1, P(2), "dentry", 192, ts: 2.0),   // line 3
            Free(1, P(2), "dentry", ts: 2.5),
            Alloc(1, P(3), "dentry", 192, ts: 4.0),
        ]);
        Assert.Equal(2, r.OutOfOrderEvents);
        Assert.Equal(3, r.FirstOutOfOrderLine);
        Assert.Equal(3.0, r.Seconds);   // the span runs to the latest stamp, not to the last line's
        var inOrder = Replay([Alloc(0, P(1), "dentry", 192, ts: 1.0), Alloc(1, P(2), "dentry", 192, ts: 1.0), Free(0, P(1), "dentry", ts: 2.0)]);
        Assert.Equal(0, inOrder.OutOfOrderEvents);   // equal stamps are in order
    }

    [Fact]
    public void PairsByPointerWithinACache_AndSkipsFreesFromBeforeTheCapture()
    {
        var r = Replay([
            "# tracer: nop",
            Alloc(0, P(1), "dentry", 192),
            Alloc(1, P(2), "dentry", 192),
            Alloc(0, P(3), "filp", 256),          // one address is one object: see PointerReuseTests
            Free(1, P(1), "dentry"),
            Free(0, P(99), "dentry"),              // allocated before the capture
            Free(0, P(98), "never_allocated"),     // a cache the trace never allocates from
        ]);
        Assert.Equal(6, r.Events);
        Assert.Equal(2, r.SkippedFrees);
        var dentry = r.Caches.Single(c => c.Name == "dentry");
        Assert.Equal((2, 1, 1, 1), (dentry.Allocs, dentry.Frees, dentry.SkippedFrees, dentry.LiveObjects));
        var filp = r.Caches.Single(c => c.Name == "filp");
        Assert.Equal(1, filp.LiveObjects);
        Assert.DoesNotContain(r.Caches, c => c.Name == "never_allocated");
    }

    [Fact]
    public void AllocationOfALivePointerFreesTheOldObjectFirst()
    {
        var r = Replay([Alloc(0, P(5), "dentry", 192), Alloc(1, P(5), "dentry", 192)]);
        var d = r.Caches.Single();
        Assert.Equal(1, d.UnseenFrees);
        Assert.Equal(1, d.LiveObjects);
    }

    [Fact]
    public void KfreePairsWithKmallocAndKmemCacheObjects()
    {
        var r = Replay([
            $"  t-1 [000] ..... 1.0: kmalloc: call_site=f ptr={P(1)} bytes_req=40 bytes_alloc=64 gfp_flags=GFP_KERNEL node=-1 accounted=false",
            $"  t-1 [000] ..... 1.0: kmalloc: call_site=f ptr={P(2)} bytes_req=40 bytes_alloc=64 gfp_flags=GFP_KERNEL_ACCOUNT node=-1 accounted=true",
            $"  t-1 [000] ..... 1.0: kmalloc: call_site=f ptr={P(3)} bytes_req=20000 bytes_alloc=20480 gfp_flags=GFP_KERNEL node=-1 accounted=false",
            Alloc(1, P(4), "dentry", 192),
            $"  t-1 [001] ..... 1.0: kfree: call_site=g ptr={P(1)}",
            $"  t-1 [001] ..... 1.0: kfree: call_site=g ptr={P(3)}",
            $"  t-1 [001] ..... 1.0: kfree: call_site=g ptr={P(4)}",     // kfree() of a kmem_cache_alloc() object
            $"  t-1 [001] ..... 1.0: kfree: call_site=g ptr={P(77)}",    // from before the capture
            "  t-1 [001] ..... 1.0: kfree: call_site=g ptr=(null)",
        ]);
        Assert.Equal(1, r.LargeKmallocs);
        Assert.Equal(1, r.NullPointers);
        Assert.Equal(1, r.SkippedFrees);
        Assert.Equal(0, r.Caches.Single(c => c.Name == "kmalloc-64").LiveObjects);
        Assert.Equal(1, r.Caches.Single(c => c.Name == "kmalloc-cg-64").LiveObjects);
        Assert.Equal(0, r.Caches.Single(c => c.Name == "dentry").LiveObjects);
    }

    [Theory]
    [InlineData("GFP_KERNEL", "false", "kmalloc-64")]
    [InlineData("GFP_KERNEL_ACCOUNT", "true", "kmalloc-cg-64")]
    [InlineData("GFP_KERNEL|GFP_DMA", "false", "dma-kmalloc-64")]
    [InlineData("GFP_KERNEL|__GFP_DMA", "false", "dma-kmalloc-64")]
    [InlineData("GFP_KERNEL|GFP_DMA32", "false", "kmalloc-64")]          // another zone: no kmalloc type of its own
    [InlineData("GFP_NOFS|__GFP_RECLAIMABLE", "false", "kmalloc-rcl-64")]
    [InlineData("GFP_KERNEL_ACCOUNT|__GFP_RECLAIMABLE", "true", "kmalloc-rcl-64")]   // reclaimable beats accounted
    [InlineData("GFP_KERNEL|__GFP_RECLAIM", "false", "kmalloc-64")]      // __GFP_RECLAIM is not __GFP_RECLAIMABLE
    public void KmallocGoesToTheCacheOfItsGfpType(string gfp, string accounted, string cache)
    {
        var r = Replay([$"  t-1 [000] ..... 1.0: kmalloc: call_site=f ptr={P(1)} bytes_req=40 bytes_alloc=64 gfp_flags={gfp} node=-1 accounted={accounted}"]);
        Assert.Equal(cache, r.Caches.Single().Name);
    }

    [Fact]
    public void TraceCmdReportOutputReplaysWithItsCpuCount()
    {
        var r = Replay([
            "CPU 2 is empty",
            "cpus=4",
            $"            bash-1234  [003]  4160.226149: kmem_cache_alloc:     call_site=__d_alloc+0x2d ptr=0x{P(1)} name=dentry bytes_req=192 bytes_alloc=192 gfp_flags=GFP_KERNEL node=-1 accounted=true",
            $"            bash-1234  [000]  4160.226150: kmem_cache_free:      call_site=__dentry_kill+0x10c ptr=0x{P(1)} name=dentry",
        ], new TraceReplayOptions());
        Assert.Equal((4, "cpus= header"), (r.Cpus, r.CpusSource));
        Assert.Equal((2, 0), (r.Events, r.BadLineCount));
        Assert.Equal((1, 1), (r.Caches.Single().Allocs, r.Caches.Single().Frees));
    }

    [Fact]
    public void TheCpuColumnDrivesPerCpuState()
    {
        // One object per CPU: each CPU takes its own slab.
        var r = Replay([Alloc(0, P(1), "dentry", 192), Alloc(1, P(2), "dentry", 192)]);
        var d = r.Caches.Single();
        Assert.Equal(2, d.Slabs);
        Assert.Equal(2, d.CpuSlabs);
        // The same on one CPU: one slab.
        r = Replay([Alloc(0, P(1), "dentry", 192), Alloc(0, P(2), "dentry", 192)]);
        Assert.Equal(1, r.Caches.Single().Slabs);
    }

    [Fact]
    public void ACpuBeyondTheModelledOnesIsAClearError()
    {
        var e = Assert.Throws<TraceReplayException>(() => Replay([Alloc(0, P(1), "dentry", 192), Alloc(5, P(2), "dentry", 192)]));
        Assert.Equal(2, e.LineNumber);
        Assert.Contains("test.trace:2: CPU 5", e.Message);
        Assert.Contains("--cpus", e.Message);
    }

    [Theory]
    [InlineData(99_999_992, null)]
    [InlineData(99_999_992, "^$")]          // not movable: the whole slot is the object
    [InlineData(2_097_160, null)]
    [InlineData(4_194_304, "^$")]
    public void ASlotTooLargeToModelIsOneMessageWithFileLineCacheAndTheTracesSize(int bytes, string? movable)
    {
        // Was the allocator's ArgumentOutOfRangeException text: "object size must be 1..2 MiB (Parameter 'objectSize')"
        // and, on a second line, "Actual value was 99999984" (the slot less the free pointer's word).
        var options = new TraceReplayOptions { Cpus = 2, Movable = movable is null ? null : new Regex(movable) };
        var e = Assert.Throws<TraceReplayException>(() => Replay([Alloc(0, P(1), "dentry", 192), Alloc(1, P(2), "huge", bytes)], options));
        Assert.Equal(2, e.LineNumber);
        Assert.Equal($"test.trace:2: cache huge: bytes_alloc={bytes} is too large: a slot must be 8..2097152 bytes (2 MiB) to be modelled", e.Message);
        Assert.DoesNotContain("\n", e.Message.ReplaceLineEndings("\n"));
    }

    [Fact]
    public void TheLargestModelledSlotIsReplayed()
    {
        var r = Replay([Alloc(0, P(1), "huge", 2_097_152)]);
        Assert.Equal(2_097_152, r.Caches.Single().SlabSize);
    }

    [Fact]
    public void TheCpuCountComesFromTheHeader()
    {
        var r = Replay(["# entries-in-buffer/entries-written: 2/2   #P:8", Alloc(7, P(1), "dentry", 192)], new TraceReplayOptions());
        Assert.Equal(8, r.Cpus);
        Assert.Equal("#P header", r.CpusSource);
    }

    [Fact]
    public void EventsTheRingBufferOverwroteCountAsLost()
    {
        // The trace file (not trace_pipe) prints no [LOST] lines: its header says how many events were
        // written and how many the buffer still holds; the difference was overwritten, the start of the capture.
        var r = Replay(["# entries-in-buffer/entries-written: 1/40   #P:2", Alloc(1, P(1), "dentry", 192)], new TraceReplayOptions());
        Assert.Equal(39, r.LostEvents);
        Assert.Equal(2, r.Cpus);
        r = Replay(["# entries-in-buffer/entries-written: 1/1   #P:2", Alloc(1, P(1), "dentry", 192)], new TraceReplayOptions());
        Assert.Equal(0, r.LostEvents);
    }

    [Fact]
    public void AMalformedLineStopsWithFileLineAndText()
    {
        var e = Assert.Throws<TraceFormatException>(() => Replay([Alloc(0, P(1), "dentry", 192), "this is not ftrace", Alloc(0, P(2), "dentry", 192)], name: "bad.trace"));
        Assert.Equal("bad.trace", e.FileName);
        Assert.Equal(2, e.LineNumber);
        Assert.Equal("this is not ftrace", e.LineText);
        Assert.Equal("bad.trace:2: no [CPU] column: this is not ftrace", e.Message);
    }

    [Fact]
    public void ATraceWithoutSlabEvents()
    {
        var r = Replay(["# tracer: nop", "#P:4"], new TraceReplayOptions());
        Assert.Equal((0L, 0, 4, "#P header"), (r.Events, r.Caches.Count, r.Cpus, r.CpusSource));
    }

    [Fact]
    public void FeedingLinesDirectly()
    {
        using var replayer = new TraceReplayer(new TraceReplayOptions { Cpus = 2 });
        replayer.SetPosition("live", 0);
        replayer.Feed(Encoding.UTF8.GetBytes(Alloc(0, P(1), "dentry", 192)));
        var e = Assert.Throws<TraceFormatException>(() => replayer.Feed("nonsense"u8));
        Assert.Equal(("live", 2L), (e.FileName, e.LineNumber));
        var r = replayer.Finish();
        Assert.Equal(1, r.Caches.Single().LiveObjects);
        Assert.Throws<InvalidOperationException>(() => replayer.Finish());
    }

    [Fact]
    public void SkipBadCountsAndReportsMalformedLines()
    {
        var r = Replay([Alloc(0, P(1), "dentry", 192), "junk one", Alloc(0, P(2), "dentry", 192), "junk two"],
            new TraceReplayOptions { Cpus = 2, SkipBad = true });
        Assert.Equal(2, r.BadLineCount);
        Assert.Equal([2L, 4L], r.BadLines.Select(b => b.LineNumber));
        Assert.Equal("junk two", r.BadLines[1].Text);
        Assert.Equal(2, r.Caches.Single().LiveObjects);
    }

    [Fact]
    public void CacheFilterAndMovableFilter()
    {
        var r = Replay([Alloc(0, P(1), "dentry", 192), Alloc(0, P(2), "filp", 256), Alloc(0, P(3), "kmalloc-8", 8), Free(0, P(9), "filp")],
            new TraceReplayOptions { Cpus = 2, Caches = new Regex("^(dentry|kmalloc-8)$"), Movable = new Regex("dentry|kmalloc") });
        Assert.Equal(["dentry", "kmalloc-8"], r.Caches.Select(c => c.Name));
        Assert.Equal(0, r.SkippedFrees);   // filp is filtered out, its frees are not counted
        Assert.True(r.Caches[0].Movable);
        Assert.False(r.Caches[1].Movable);
        Assert.NotNull(r.Caches[1].NotMovableReason);   // 8-byte slots cannot hold a constructor cache's object and free pointer
        Assert.Empty(r.Caches[1].AfterDefrag);
    }

    [Fact]
    public void GeometryFromBytesAlloc_MatchesSlubsRules()
    {
        // calculate_order on 2 CPUs: min_objects = 4 * (fls(2) + 1) = 12.
        var dentry = CacheGeometry.Compute(192, 0, SlabFlags.None, hasCtor: false, cpus: 2);
        Assert.Equal((21, 0), (dentry.ObjectsPerSlab, dentry.Order));
        var shmem = CacheGeometry.Compute(752, 0, SlabFlags.None, hasCtor: false, cpus: 2);
        Assert.Equal((21, 2), (shmem.ObjectsPerSlab, shmem.Order));
        // The replay's movable caches (constructor, free pointer outside) keep the slot size.
        var r = Replay([Alloc(0, P(1), "dentry", 192), Alloc(0, P(2), "shmem_inode_cache", 752)]);
        Assert.Equal((192, 21, 0), (r.Caches[0].SlabSize, r.Caches[0].ObjectsPerSlab, r.Caches[0].Order));
        Assert.Equal((752, 21, 2), (r.Caches[1].SlabSize, r.Caches[1].ObjectsPerSlab, r.Caches[1].Order));
        Assert.All(r.Caches, c => Assert.Equal("bytes_alloc", c.GeometrySource));
    }

    [Fact]
    public void GeometryFromASnapshotFixesTheOrder()
    {
        // On 16 CPUs SLUB's own rule picks order 1 for dentry; the snapshot says order 0.
        var own = Replay([Alloc(0, P(1), "dentry", 192)], new TraceReplayOptions { Cpus = 16 });
        Assert.Equal(1, own.Caches[0].Order);
        var snap = SlabSnapshot.Load(Fixtures.SampleAfter);
        var r = Replay([Alloc(0, P(1), "dentry", 192), Alloc(0, P(2), "shmem_inode_cache", 752)], new TraceReplayOptions { Cpus = 16, Geometry = snap });
        Assert.Equal((21, 0, 192, "snapshot"), (r.Caches[0].ObjectsPerSlab, r.Caches[0].Order, r.Caches[0].ObjectSize, r.Caches[0].GeometrySource));
        Assert.Equal((21, 2, 744, 752), (r.Caches[1].ObjectsPerSlab, r.Caches[1].Order, r.Caches[1].ObjectSize, r.Caches[1].SlabSize));
    }

    [Fact]
    public void ASnapshotOfAnotherKernelIsNotUsedForThatCache()
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, "dentry/slab_size 200\ndentry/order 1\nfilp/slab_size 256\nfilp/order 1\n");
            var r = Replay([Alloc(0, P(1), "dentry", 192), Alloc(0, P(2), "filp", 256)], new TraceReplayOptions { Cpus = 2, Geometry = SlabSnapshot.Load(file) });
            Assert.Equal(("bytes_alloc", 0), (r.Caches[0].GeometrySource, r.Caches[0].Order));
            Assert.Contains("slab_size 200 differs from the trace's bytes_alloc 192", r.Caches[0].GeometryNote);
            Assert.Equal(("snapshot", 1, 32), (r.Caches[1].GeometrySource, r.Caches[1].Order, r.Caches[1].ObjectsPerSlab));
            Assert.Null(r.Caches[1].GeometryNote);
        }
        finally { File.Delete(file); }
    }

    [Theory]
    [InlineData("dentry/slab_size 192\ndentry/order zero\n", ":2: dentry/order: not a number: 'zero'")]
    [InlineData("# grep . output\ndentry/slab_size 99999999999\ndentry/order 0\n", ":2: dentry/slab_size: out of range")]
    [InlineData("dentry/slab_size 192\n\ndentry/order 12\n", ":3: cache dentry: implausible slab_size 192 or order 12")]
    public void ABadValueInASnapshotFileNamesItsLine(string text, string where)
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, text);
            var e = Assert.Throws<FormatException>(() => SlabSnapshot.Load(file));
            Assert.StartsWith(file + where, e.Message);
        }
        finally { File.Delete(file); }
    }

    [Theory]
    // What docs/replay.md's capture recipe writes: grep . /sys/kernel/slab/*/{object_size,...} > after
    [InlineData("/sys/kernel/slab/dentry/object_size:192\n/sys/kernel/slab/dentry/slab_size:192\n/sys/kernel/slab/dentry/objs_per_slab:21\n" +
                "/sys/kernel/slab/dentry/order:0\n/sys/kernel/slab/dentry/slabs:674 N0=674\n/sys/kernel/slab/anon_vma/ctor:anon_vma_ctor+0x0/0x50\n" +
                "/sys/kernel/slab/:0000064/slab_size:64\n/sys/kernel/slab/:0000064/order:0\n")]
    // The same without the prefix, as the sample-churn files are; merged caches are ':'-named directories.
    [InlineData("dentry/object_size 192\ndentry/slab_size 192\ndentry/objs_per_slab 21\ndentry/order 0\ndentry/slabs 674 N0=674\n" +
                ":0000064/slab_size 64\n:0000064/order 0\n")]
    public void SnapshotFileAsGrepPrintsIt(string text)
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, text);
            var snap = SlabSnapshot.Load(file);
            Assert.Equal(new SlabSnapshotCache("dentry", 192, 192, 21, 0, null, 674, null), snap.Caches["dentry"]);
            Assert.Equal((64, 0), (snap.Caches[":0000064"].SlabSize, snap.Caches[":0000064"].Order));
        }
        finally { File.Delete(file); }
    }

    [Fact]
    public void SnapshotDirectoryLayout()
    {
        var dir = Directory.CreateTempSubdirectory("slab-snapshot-");
        try
        {
            var d = Directory.CreateDirectory(Path.Combine(dir.FullName, "dentry"));
            File.WriteAllText(Path.Combine(d.FullName, "object_size"), "192\n");
            File.WriteAllText(Path.Combine(d.FullName, "slab_size"), "192\n");
            File.WriteAllText(Path.Combine(d.FullName, "objs_per_slab"), "42\n");
            File.WriteAllText(Path.Combine(d.FullName, "order"), "1\n");
            File.WriteAllText(Path.Combine(d.FullName, "slabs"), "10 N0=10\n");
            var snap = SlabSnapshot.Load(dir.FullName);
            Assert.Equal(new SlabSnapshotCache("dentry", 192, 192, 42, 1, null, 10, null), snap.Caches["dentry"]);
        }
        finally { dir.Delete(recursive: true); }
    }

    [Fact]
    public void SnapshotOfARealExportedTree()
    {
        // This machine's /sys/kernel/slab (6.18), exported with alias symlinks (tests/Slub.Tests/Fixtures/sysfs).
        var snap = SlabSnapshot.Load(Slabinfo.SlabinfoFixtures.Sysfs("host-6.18"));
        var shmem = snap.Caches["shmem_inode_cache"];
        Assert.Equal((744, 752, 21, 2), (shmem.ObjectSize, shmem.SlabSize, shmem.ObjectsPerSlab, shmem.Order));
        Assert.Equal(snap.Caches[":a-0000104"].Order, snap.Caches["ext4_fc_dentry_update"].Order);   // alias followed
    }

    [Fact]
    public void WithOrderValidates()
    {
        var g = CacheGeometry.Compute(192, 0, SlabFlags.None, false, 2);
        Assert.Equal(42, g.WithOrder(1).ObjectsPerSlab);
        Assert.Throws<ArgumentOutOfRangeException>(() => CacheGeometry.Compute(8192, 0, SlabFlags.None, false, 2).WithOrder(0));
    }

    [Fact]
    public void WhatIfBringsAFullyMovableCacheToOptimalPlusOneSlabPerCpu()
    {
        // Fill 40 slabs from two CPUs, then free 70% at random: sparse slabs everywhere.
        var lines = new List<string>();
        var rnd = new Random(7);
        const int n = 21 * 40;
        for (int i = 0; i < n; i++) lines.Add(Alloc(i % 2, P(i + 1), "dentry", 192));
        foreach (int i in Enumerable.Range(0, n).OrderBy(_ => rnd.Next()).Take(n * 7 / 10)) lines.Add(Free(rnd.Next(2), P(i + 1), "dentry"));
        foreach (var policy in new[] { DefragPolicy.FillFullestFirst, DefragPolicy.EmptyAllCandidates })
        {
            var r = Replay(lines, new TraceReplayOptions { Cpus = 2, Policies = [policy] });
            var d = r.Caches.Single();
            long optimal = (d.LiveObjects + d.ObjectsPerSlab - 1) / d.ObjectsPerSlab;
            Assert.True(d.Slabs > optimal + 2, $"the trace should leave the cache fragmented: {d.Slabs} slabs for {optimal}");
            var o = d.AfterDefrag.Single();
            Assert.Equal(policy, o.Policy);
            Assert.True(o.Slabs <= optimal + r.Cpus * 1, $"{policy}: {o.Slabs} slabs after defrag, optimal {optimal}");
            Assert.Equal((d.Slabs - o.Slabs) << d.Order, o.PagesRecovered);
            Assert.True(o.ObjectsMoved > 0);
        }
    }
}
