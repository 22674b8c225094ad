using System.Text.Json;

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
            double ms = after.GetProperty("milliseconds").GetDouble(), jit = after.GetProperty("compile_milliseconds").GetDouble();
            Assert.True(jit >= 0 && jit <= ms, $"{jit} ms of {ms} compiling");   // a part of the shrink's time
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
