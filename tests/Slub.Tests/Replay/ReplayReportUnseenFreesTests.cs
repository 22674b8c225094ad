using System.Text;
using Slub.Cli.Replay;
using Slub.Trace;

namespace Slub.Tests.Replay;

/// <summary>The tables say how many frees the trace missed (allocations of a pointer still live), not only the JSON.</summary>
public class ReplayReportUnseenFreesTests
{
    private static string Alloc(string ptr, string cache) =>
        $"  t-1 [000] ..... 1.000000: kmem_cache_alloc: call_site=f+0x1/0x2 ptr={ptr} name={cache} bytes_req=192 bytes_alloc=192 gfp_flags=GFP_KERNEL node=-1 accounted=false";

    [Fact]
    public void TheTablesReportFreesTheTraceMissed()
    {
        string text = string.Join("\n", Alloc("01", "dentry"), Alloc("01", "dentry"), Alloc("02", "pid"), Alloc("02", "dentry"), Alloc("03", "pid")) + "\n";
        using var reader = new TraceLineReader(new MemoryStream(Encoding.UTF8.GetBytes(text)), "missed.trace");
        using var replayer = new TraceReplayer(new TraceReplayOptions { Cpus = 1 });
        var r = replayer.Run(reader);
        var output = new StringWriter();
        ReplayReportWriter.WriteTables(r, output);
        Assert.Contains("2 frees the trace missed", output.ToString());
    }
}
