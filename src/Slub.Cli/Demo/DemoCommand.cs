using System.CommandLine;
using System.Runtime.InteropServices;
using System.Text.Json;
using Spectre.Console;

namespace Slub.Cli.Demo;

/// <summary><c>slub demo</c>: the embedded default workload — fragment, defragment, verify, report.</summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of tables." };
        var seed = NumberOptions.Int("--seed", "Random seed of the workload.", defaultValue: 7);
        var scale = NumberOptions.Double("--scale", "Multiply the object counts (1 = 300k + 60k + 200k objects), in (0, 20].", defaultValue: 1.0, exclusiveMin: 0, max: 20);
        var nodes = NumberOptions.NullableInt("--nodes", "Emulate this many NUMA nodes, 1..64 (default: the machine's).", min: 1, max: 64);
        var hold = new Option<bool>("--hold")
        {
            Description = "After the report, keep running with the live endpoint open (slub slabinfo --pid) and the Slub meter published (dotnet-counters; series tagged slub.allocator.name=demo) until Ctrl+C or SIGTERM.",
        };
        var cmd = new Command("demo", "Fragment a few caches with a churn workload, defragment them with SMO and report.") { json, seed, scale, nodes, hold };
        cmd.SetAction(pr => Run(pr.GetValue(json), pr.GetValue(seed), pr.GetValue(scale), pr.GetValue(nodes), pr.GetValue(hold)));
        return cmd;
    }

    private static bool AllVerified(DemoReport r) =>
        r.Caches.All(c => (c.AfterDefrag?.Verified ?? true) && (c.AfterMove?.Verified ?? true) && (c.AfterBalance?.Verified ?? true));

    private static int Run(bool json, int seed, double scale, int? nodes, bool hold)
    {
        using var allocator = new SlabAllocator(new SlabOptions { EmulatedNodes = nodes, BytesPerNode = 2L << 30, Name = "demo" });
        // Published from the start, so a watcher's counters include the demo's own defragmentation.
        using var metrics = hold ? new Slub.Diagnostics.SlubMetrics(allocator) : null;
        int code = Report(allocator, json, seed, scale);
        return hold ? Hold(allocator, code) : code;
    }

    private static int Report(SlabAllocator allocator, bool json, int seed, double scale)
    {
        var workload = new DemoWorkload(allocator, seed, scale);
        DemoReport report;
        if (json || Console.IsOutputRedirected)
        {
            report = workload.Run((_, _) => { });
        }
        else
        {
            report = null!;
            AnsiConsole.Progress().AutoClear(true).Start(ctx =>
            {
                var tasks = new Dictionary<string, ProgressTask>();
                report = workload.Run((name, fraction) =>
                {
                    if (!tasks.TryGetValue(name, out var t)) tasks[name] = t = ctx.AddTask(name, maxValue: 1);
                    t.Value = fraction;
                });
            });
        }
        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(report, DemoJsonContext.Default.DemoReport));
            return AllVerified(report) ? 0 : 2;
        }
        // Spectre.Console assumes 80 columns when the output is not a terminal, and wraps the tables' cells;
        // a file or a pipe gets the whole rows instead (as replay's report does).
        if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 200;
        DemoRenderer.Render(report);
        return AllVerified(report) ? 0 : 2;
    }

    /// <summary>
    /// Keeps the process and its caches alive for other tools: the live endpoint (writes allowed: the socket is
    /// the user's own, mode 0600) and the meter. The hint goes to stderr, so <c>--json</c> output stays one object.
    /// </summary>
    private static int Hold(SlabAllocator allocator, int code)
    {
        Slub.Sysfs.LiveEndpoint endpoint;
        try { endpoint = allocator.OpenLiveEndpoint(allowWrites: true); }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"slub demo: --hold: cannot open the live endpoint: {e.Message}");
            return 1;
        }
        var exit = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; exit.TrySetResult("SIGTERM"); });
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; exit.TrySetResult("SIGINT"); });
        int pid = Environment.ProcessId;
        Console.Error.WriteLine($"slub demo: holding, pid {pid}, live endpoint {endpoint.SocketPath}");
        Console.Error.WriteLine($"  slub slabinfo --pid {pid}    dotnet-counters monitor --process-id {pid} --counters Slub    (allocator {allocator.Name}; Ctrl+C to exit)");
        Console.Error.Flush();
        exit.Task.Wait();
        return code;
    }
}
