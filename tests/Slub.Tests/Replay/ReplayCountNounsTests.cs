using System.Text;
using Slub.Cli.Replay;
using Slub.Trace;

namespace Slub.Tests.Replay;

/// <summary>The replay's report and plot say "1 page", "1 CPU", "1 object", not "1 pages".</summary>
public class ReplayCountNounsTests
{
    private static string AllocLine(int i, double ts) => FtraceLines.Alloc(FtraceLines.Ptr(i), ts: ts);

    private static string FreeLine(int i, double ts) => FtraceLines.Free(FtraceLines.Ptr(i), ts: ts);

    /// <summary>
    /// 22 dentries on one CPU (a full slab and one object in the next), then the first 21 freed: one empty slab that
    /// a plain shrink frees (1 page) and one other event.
    /// </summary>
    private static string OneEmptySlab()
    {
        var lines = new List<string>();
        for (int i = 1; i <= 22; i++) lines.Add(AllocLine(i, 1 + i / 1e6));
        for (int i = 1; i <= 21; i++) lines.Add(FreeLine(i, 2 + i / 1e6));
        lines.Add("  t-1 [000] ..... 3.000000: sched_switch: prev_comm=a prev_pid=1 next_comm=b next_pid=2");
        return string.Join("\n", lines) + "\n";
    }

    private static string Tables(string text, string policy = "both")
    {
        var path = Path.Combine(Path.GetTempPath(), $"replay-nouns-{Guid.NewGuid():N}.trace");
        File.WriteAllText(path, text);
        try
        {
            var stdout = new StringWriter();
            var stderr = new StringWriter();
            int code = ReplayCommand.Run(new(path, false, null, null, null, null, false, null, policy, 1, 1), stdout, stderr);
            Assert.True(code == 0, stderr.ToString());
            return stdout.ToString();
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void OnePageOneObjectOneCpuOneOtherEventAreSingular()
    {
        string o = Tables(OneEmptySlab());
        Assert.Contains("44 lines, 43 slab events over 1 s on 1 CPU (--cpus)", o);
        Assert.Contains("replayed 43 events; skipped 0 frees of objects allocated before the capture; ignored 1 other event\n", o);
        Assert.Contains("│       1 page │", o);   // the "shrink alone" column
        Assert.DoesNotContain("1 pages", o);
        Assert.Contains("fill-fullest: 2 pages held → 1 after defrag: 1 page recovered (50%), 0 objects moved\n", o);
        Assert.Contains("empty-all: 2 pages held → 1 after defrag: 1 page recovered (50%), 1 object moved (192 B) in ", o);
        Assert.DoesNotContain("1 objects", o);
    }

    [Fact]
    public void OneLineOneEvent()
    {
        string o = Tables(AllocLine(1, 1.0) + "\n", "fill-fullest");
        Assert.Contains(": 1 line, 1 slab event over 0 s on 1 CPU (--cpus)", o);
        Assert.Contains("replayed 1 event; skipped 0 frees", o);
        Assert.Contains("fill-fullest: 1 page held → 1 after defrag: 0 pages recovered (0%), 0 objects moved\n", o);
    }

    [Fact]
    public void WarningsCountInTheSingular()
    {
        // A free of an object never seen, one lost event, one event stamped before the one above it.
        string text = "CPU:0 [LOST 1 EVENTS]\n" + AllocLine(1, 2.0) + "\n" + AllocLine(2, 1.0) + "\n" + FreeLine(7, 3.0) + "\n"
                      + AllocLine(1, 4.0) + "\n";   // ptr 1 again while live: one free the trace missed
        string o = Tables(text, "fill-fullest");
        Assert.Contains("skipped 1 free of an object allocated before the capture", o);
        Assert.Contains("; 1 free the trace missed (a pointer allocated again while live)", o);
        Assert.Contains("the kernel lost 1 event: some objects will not pair up", o);
        Assert.Contains("1 event is stamped earlier than an event before it (first at line 3)", o);
    }

    [Fact]
    public void ThePlotSaysOnePage()
    {
        var text = OneEmptySlab();
        using var reader = new TraceLineReader(new MemoryStream(Encoding.UTF8.GetBytes(text)), "one.trace");
        using var replayer = new TraceReplayer(new TraceReplayOptions { Cpus = 1, RecordTimeline = true });
        var r = replayer.Run(reader);
        var texts = ReplayChart.Build(r).Texts.Select(t => t.Text).ToList();
        Assert.Contains("one.trace: slabs held vs. slabs needed; defrag recovers 1 of 2 pages", texts);
        Assert.Contains("+1 page", texts);
        Assert.Contains("0 moved", texts);
    }

    [Fact]
    public void ThePlotSaysOneObjectPerSlab()
    {
        // A 2 MiB slot: one object per order-9 slab.
        using var reader = new TraceLineReader(new MemoryStream(Encoding.UTF8.GetBytes(
            "  t-1 [000] ..... 1.0: kmem_cache_alloc: call_site=f ptr=0000000000000001 name=huge bytes_req=2097152 bytes_alloc=2097152 gfp_flags=GFP_KERNEL node=-1 accounted=false\n")), "huge.trace");
        using var replayer = new TraceReplayer(new TraceReplayOptions { Cpus = 1, RecordTimeline = true });
        var r = replayer.Run(reader);
        var texts = ReplayChart.Build(r).Texts.Select(t => t.Text).ToList();
        Assert.Contains($"1 obj per order-{r.Caches[0].Order} slab", texts);
    }
}
