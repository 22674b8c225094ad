using System.Text;
using Slub.Trace;

namespace Slub.Tests.Replay;

/// <summary>
/// <c>--geometry</c> takes each cache's <c>cpu_partial</c> and <c>min_partial</c> from the snapshot too, so the replay
/// tunes its caches as the traced machine had them; a snapshot without those files leaves the defaults.
/// </summary>
public class ReplaySnapshotTuningTests
{
    private static string Alloc(int cpu, int ptr) => FtraceLines.Alloc(FtraceLines.Ptr(ptr), cpu: cpu);

    private static string Free(int cpu, int ptr) => FtraceLines.Free(FtraceLines.Ptr(ptr), cpu: cpu);

    /// <summary>CPU 0 fills 5 slabs of 21 dentries; CPU 1 then frees the first object of each of the first 4.</summary>
    private static IEnumerable<string> Trace()
    {
        for (int i = 1; i <= 5 * 21; i++) yield return Alloc(0, i);
        for (int s = 0; s < 4; s++) yield return Free(1, s * 21 + 1);
    }

    private static CacheReplayResult ReplayWith(Dictionary<string, string> files)
    {
        var dir = Directory.CreateTempSubdirectory("replay-tuning-");
        try
        {
            var d = dir.CreateSubdirectory("dentry");
            foreach (var (file, value) in files) File.WriteAllText(Path.Combine(d.FullName, file), value + "\n");
            var options = new TraceReplayOptions { Cpus = 2, Geometry = SlabSnapshot.Load(dir.FullName) };
            using var reader = new TraceLineReader(new MemoryStream(Encoding.UTF8.GetBytes(string.Join("\n", Trace()) + "\n")), "t.trace");
            using var replayer = new TraceReplayer(options);
            var c = replayer.Run(reader).Caches.Single();
            Assert.Equal("snapshot", c.GeometrySource);
            return c;
        }
        finally { dir.Delete(recursive: true); }
    }

    private static Dictionary<string, string> Geometry() => new()
    {
        ["object_size"] = "192", ["slab_size"] = "192", ["objs_per_slab"] = "21", ["order"] = "0",
    };

    [Fact]
    public void WithoutTheFilesTheDefaultsStay()
    {
        var c = ReplayWith(Geometry());
        Assert.Equal(120u, c.CpuPartial);   // 5.16's default for a 192-byte slot under the slab-count rule
        Assert.Equal(5, c.MinPartial);
        // The four slabs that got a free slot joined CPU 1's partial chain.
        Assert.Equal((0L, 5L), (c.Partial, c.CpuSlabs));
    }

    [Fact]
    public void TheSnapshotsCpuPartialAndMinPartialAreApplied()
    {
        var files = Geometry();
        files["cpu_partial"] = "0";
        files["min_partial"] = "7";
        var c = ReplayWith(files);
        Assert.Equal(0u, c.CpuPartial);
        Assert.Equal(7, c.MinPartial);
        // cpu_partial 0: no per-CPU partial slabs; the four slabs go to the node's partial list.
        Assert.Equal((4L, 1L), (c.Partial, c.CpuSlabs));
    }

    [Theory]
    [InlineData("3", 5)]
    [InlineData("25", 10)]
    public void MinPartialIsClampedAsTheAttributeClampsAWrite(string value, int expected)
    {
        var files = Geometry();
        files["min_partial"] = value;
        Assert.Equal(expected, ReplayWith(files).MinPartial);
    }

    [Fact]
    public void AFlatSnapshotFileCarriesTheTuningToo()
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, "/sys/kernel/slab/dentry/slab_size:192\n/sys/kernel/slab/dentry/order:0\n"
                                    + "/sys/kernel/slab/dentry/cpu_partial:120\n/sys/kernel/slab/dentry/min_partial:5\n");
            var d = SlabSnapshot.Load(file).Caches["dentry"];
            Assert.Equal((120u, 5L), (d.CpuPartial, d.MinPartial));
        }
        finally { File.Delete(file); }
    }

    [Fact]
    public void ACpuPartialBeyondUnsignedIntIsRefusedWithItsPlace()
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, "dentry/slab_size 192\ndentry/order 0\ndentry/cpu_partial 4294967296\n");
            var e = Assert.Throws<FormatException>(() => SlabSnapshot.Load(file));
            Assert.Contains($"{file}:3: dentry/cpu_partial: out of range: 4294967296", e.Message);
        }
        finally { File.Delete(file); }
    }
}
