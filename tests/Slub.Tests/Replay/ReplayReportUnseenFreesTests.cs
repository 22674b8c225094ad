using System.Text;
using Slub.Cli.Replay;
using Slub.Trace;

namespace Slub.Tests.Replay;

/// <summary>The tables say how many frees the trace missed (allocations of a pointer still live), not only the JSON.</summary>
public class ReplayReportUnseenFreesTests
{
    private static string Alloc(string ptr, string cache) => FtraceLines.Alloc(ptr, cache);

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
