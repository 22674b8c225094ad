using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Slub.Cli.Slabinfo;

namespace Slub.Tests.Cli;

public class DemoCommandTests
{
    [Fact]
    public void JsonReportShowsDefragRecoveringSlabsAndVerifies()
    {
        var (code, stdout, stderr) = CliRunner.Run("demo", "--json", "--scale", "0.05");
        Assert.True(code == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var root = doc.RootElement;
        Assert.True(root.GetProperty("rss_bytes").GetInt64() > 0);
        Assert.Equal(11, root.GetProperty("buddyinfo")[0].GetProperty("free_blocks").GetArrayLength());
        foreach (var c in root.GetProperty("caches").EnumerateArray())
        {
            foreach (var field in new[] { "name", "object_size", "objs_per_slab", "order", "objects", "slabs", "partial", "optimal_slabs", "nodes" })
                Assert.True(c.TryGetProperty(field, out _), field);
            var after = c.GetProperty("after_defrag");
            Assert.True(after.GetProperty("verified").GetBoolean());
            foreach (var field in new[] { "milliseconds", "compile_milliseconds" })   // values are timings: shown, not asserted
                Assert.Equal(JsonValueKind.Number, after.GetProperty(field).ValueKind);
            long slabs = c.GetProperty("slabs").GetInt64(), optimal = c.GetProperty("optimal_slabs").GetInt64();
            Assert.True(slabs > optimal);   // the churn fragmented every cache
            if (c.GetProperty("name").GetString() == "dentry")
            {
                // Partial shrink only frees unused dentries: fewer slabs, never a wrong lookup.
                Assert.True(after.GetProperty("slabs").GetInt64() < slabs);
                Assert.True(after.GetProperty("objects_freed").GetInt64() > 0);
                Assert.Equal(0, root.GetProperty("dcache").GetProperty("mismatches").GetInt32());
            }
            else if (c.GetProperty("movable").GetBoolean())
            {
                Assert.True(after.GetProperty("slabs").GetInt64() <= after.GetProperty("optimal_slabs").GetInt64() + 1);
                Assert.True(after.GetProperty("objects_moved").GetInt64() > 0);
            }
            else
            {
                Assert.Equal(0, after.GetProperty("objects_moved").GetInt64());
            }
        }
    }

    [Fact]
    public void TheDcacheLineCountsInTheSingularForOne()
    {
        var one = new Slub.Cli.Demo.DcacheReport("/r", 1, 1, 1, 1, 1, 1, 0, 1, 1);
        Assert.Equal("dentry: 1 path of /r walked, LRU pressure, then SMO partial shrink; hot paths still cached 1/1 (before SMO 1); "
                     + "1 path re-resolved, [red]1 mismatch[/].", Slub.Cli.Demo.DemoRenderer.DcacheLine(one));
        var many = new Slub.Cli.Demo.DcacheReport("/r", 1200, 1, 1, 10, 9, 8, 0, 1200, 0);
        Assert.Equal("dentry: 1,200 paths of /r walked, LRU pressure, then SMO partial shrink; hot paths still cached 8/10 (before SMO 9); "
                     + "1,200 paths re-resolved, [green]0 mismatches[/].", Slub.Cli.Demo.DemoRenderer.DcacheLine(many));
    }

    [Fact]
    public void NodesOptionMovesAndBalances()
    {
        var (code, stdout, stderr) = CliRunner.Run("demo", "--json", "--scale", "0.05", "--nodes", "3");
        Assert.True(code == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var first = doc.RootElement.GetProperty("caches")[0];
        var move = first.GetProperty("after_move");
        Assert.Equal(2, move.GetProperty("to").GetInt32());
        var moved = move.GetProperty("nodes").EnumerateArray().Select(n => n.GetProperty("objects").GetInt64()).ToArray();
        Assert.Equal(0, moved[0] + moved[1]);
        var balanced = first.GetProperty("after_balance").GetProperty("nodes").EnumerateArray().Select(n => n.GetProperty("objects").GetInt64()).ToArray();
        Assert.True(balanced.Max() - balanced.Min() <= first.GetProperty("objs_per_slab").GetInt64());
        Assert.True(move.GetProperty("verified").GetBoolean());
    }

    [Fact]
    public void HoldServesTheCachesUntilSigterm()
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(CliRunner.DllPath);
        foreach (var a in new[] { "demo", "--json", "--scale", "0.05", "--hold" }) psi.ArgumentList.Add(a);
        psi.Environment.Remove("SLUB_DEBUG");
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var err = new StringBuilder();
        string? line;
        while ((line = p.StandardError.ReadLine()) is not null && !line.StartsWith("slub demo: holding", StringComparison.Ordinal))
            err.AppendLine(line);
        try
        {
            Assert.True(line is not null, $"the demo exited without holding:\n{err}");
            using (var live = new LiveSlabSource(p.Id))   // the default per-process path, as slabinfo --pid finds it
            {
                Assert.Contains(live.ListEntries(), e => e.Name == "smo_object_192");
                Assert.NotNull(live.ReadAttribute("smo_object_192", "objects"));
            }
            Assert.Equal(0, sys_kill(p.Id, 15));   // SIGTERM
            Assert.True(p.WaitForExit(TimeSpan.FromMinutes(1)), "the demo did not exit on SIGTERM");   // hang guard
            Assert.Equal(0, p.ExitCode);
            using var doc = JsonDocument.Parse(stdout.Result);   // stdout stays one JSON object: the hint went to stderr
            Assert.True(doc.RootElement.GetProperty("caches").GetArrayLength() > 0);
        }
        finally
        {
            if (!p.HasExited) p.Kill(entireProcessTree: true);
        }
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill")]
    private static extern int sys_kill(int pid, int sig);

    [Fact]
    public void BadOptionsGiveAClearErrorAndExitCode()
    {
        var (code, _, stderr) = CliRunner.Run("demo", "--scale", "0");
        Assert.Equal(1, code);
        Assert.Contains("--scale", stderr);
        (code, _, stderr) = CliRunner.Run("demo", "--nodes", "99");
        Assert.Equal(1, code);
        Assert.Contains("--nodes", stderr);
    }
}
