using System.CommandLine;

namespace Slub.Cli.Demo;

/// <summary><c>slub demo</c>: the embedded default workload.</summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of tables." };
        var cmd = new Command("demo", "Fragment a few caches with a churn workload, then defragment them and report.") { json };
        cmd.SetAction(pr => 0);
        return cmd;
    }
}
