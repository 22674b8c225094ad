using Slub.Cli.Slabinfo;
using Slub.Sysfs;

namespace Slub.Tests.Slabinfo;

/// <summary>
/// slabinfo against Slub.NET itself: a snapshot exported by the library after a fragmenting workload, and the
/// library's live endpoint in this process.
/// </summary>
public sealed class LibraryIntegrationTests : IDisposable
{
    private readonly SlabAllocator _allocator = TestAllocator.Create(nodes: 2);
    private readonly KmemCache _cache;
    private readonly HashSet<nint> _live = [];
    private readonly string _export = Path.Combine(Path.GetTempPath(), $"slabinfo-export-{Guid.NewGuid():N}");

    public LibraryIntegrationTests()
    {
        _cache = _allocator.CreateCache("smo_objs", 128, flags: SlabFlags.NoMerge, ctor: _ => { });
        // A dcache-like migrate: every object it is handed is freed instead of moved.
        _cache.SetupMobility(null, (cache, objects, node, state, results) =>
        {
            for (var i = 0; i < objects.Length; i++)
            {
                if (objects[i] == 0)
                    continue;
                lock (_live)
                    _live.Remove(objects[i]);
                cache.Free(objects[i]);
                results[i] = MigrateResult.Freed;
            }
        });
        var all = new List<nint>();
        for (var i = 0; i < 3000; i++)
            all.Add(_cache.Alloc());
        for (var i = 0; i < all.Count; i++)
        {
            if (i % 4 != 0)
                _cache.Free(all[i]);
            else
                _live.Add(all[i]);
        }
    }

    public void Dispose()
    {
        _allocator.Dispose();
        if (Directory.Exists(_export))
            Directory.Delete(_export, recursive: true);
    }

    [Fact]
    public void ExportedSnapshotReadsLikeSysfs()
    {
        _allocator.Sysfs.Export(_export);
        // The numbers as exported (reading slab_occupancy flushes the CPU slabs, so live figures move after export).
        var objects = File.ReadAllText(Path.Combine(_export, "smo_objs", "objects")).Split(' ')[0].Trim();

        var report = SlabinfoFixtures.Run("--sysfs", _export, "^smo_objs$");
        Assert.Equal(0, report.ExitCode);
        Assert.StartsWith($"\nSlabcache: smo_objs         Aliases:  0 Order :  {_cache.Order} Objects: {objects}\n", report.Out);
        Assert.Contains("** Defragmentation at 30%\n", report.Out);
        Assert.Contains("smo_objs: kmem_cache operations\n", report.Out);

        var movable = SlabinfoFixtures.Run("--sysfs", _export, "-M");
        var row = Assert.Single(movable.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1));
        Assert.StartsWith("smo_objs ", row);
        Assert.EndsWith(" CM", row);

        var totals = SlabinfoFixtures.Run("--sysfs", _export, "-T");
        Assert.Equal(0, totals.ExitCode);
        Assert.StartsWith("Slabcache Totals\n", totals.Out);
    }

    [Fact]
    public void LiveEndpointShrinkDefragmentsAndTheMapShowsIt()
    {
        var socket = Path.Combine(Path.GetTempPath(), $"slub-slabinfo-test-{Guid.NewGuid():N}.sock");
        using var endpoint = _allocator.OpenLiveEndpoint(allowWrites: true, socketPath: socket);
        var runsBefore = _allocator.Sysfs.Read("smo_objs/defrag_runs");

        var r = SlabinfoFixtures.Run(["-s", "--map", "smo_objs"], _ => new LiveSlabSource(Environment.ProcessId, socket));

        Assert.Equal(0, r.ExitCode);
        Assert.Equal("", r.Err);
        Assert.Contains("Occupancy of smo_objs", r.Out);
        Assert.Contains("After shrink: smo_objs", r.Out);
        Assert.NotEqual(runsBefore, _allocator.Sysfs.Read("smo_objs/defrag_runs"));
        var slabsAfter = ulong.Parse(_allocator.Sysfs.Read("smo_objs/slabs").Split(' ')[0]);
        Assert.Contains($"\n│ {slabsAfter} slabs, ", r.Out.Split("After shrink")[1].Replace("│ ", "\n│ "));
    }

    [Fact]
    public void PidOptionFindsThisProcesssEndpoint()
    {
        using var endpoint = _allocator.OpenLiveEndpoint(allowWrites: false, socketPath: LiveEndpoint.PathFor(Environment.ProcessId));
        var r = SlabinfoFixtures.Run("--pid", Environment.ProcessId.ToString(), "-l", "smo_objs\\|kmalloc-64");
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("\nsmo_objs ", r.Out);
        var refused = SlabinfoFixtures.Run("--pid", Environment.ProcessId.ToString(), "-s", "smo_objs");
        Assert.Equal(1, refused.ExitCode);
        Assert.Equal("Cannot write to smo_objs/shrink\n", refused.Err);
    }
}
