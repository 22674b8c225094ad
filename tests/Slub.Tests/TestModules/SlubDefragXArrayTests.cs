namespace Slub.Tests.TestModules;

/// <summary>
/// The XArray test module of the series (tools/testing/slab/slub_defrag_xarray.c, patch 11/15) as
/// <c>slub test-module xarray</c>, out of process: its load-time test (<c>test_smo_xarray</c>), the manual
/// procedure of its commit message (shrink the node cache and the test cache with slabinfo and watch the
/// partial slabs go), and our control file <c>smo_xarray/callfn</c>. Driven only through the endpoint:
/// <c>smo_xarray/{callfn,log,things}</c> and the slab attribute tree (<c>xa_node/*</c>, <c>smox_test/*</c>).
/// </summary>
[Collection("test-module processes")]
public sealed class SlubDefragXArrayTests
{
    private const int NrItems = 10000, Keep = 6;   // the module's constants

    private static long Ceil(long a, long b) => (a + b - 1) / b;

    /// <summary>Nodes of an XArray holding exactly <paramref name="indices"/> (64 slots a node): leaves, then each level above, up to one root.</summary>
    private static long NodesFor(IReadOnlyCollection<long> indices)
    {
        if (indices.Count == 0 || indices.Max() == 0) return 0;   // empty, or the single entry at 0 lives in the head
        long nodes = 0;
        for (int shift = 6; ; shift += 6)
        {
            int level = indices.Select(i => i >> shift).Distinct().Count();
            nodes += level;
            if (level == 1 && indices.Max() >> shift == 0) return nodes;
        }
    }

    private static long[] Kept(int nr, int keep) => Enumerable.Range(0, nr).Where(i => i % keep == 0).Select(i => (long)i).ToArray();

    /// <summary>The <c>smo_xarray/things</c> file parsed: (index, id) per entry, in index order.</summary>
    private static (long Index, long Id)[] Things(ModuleProcess m) =>
        m.Client.Read("smo_xarray/things").Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(' ')).Select(w => (long.Parse(w[0]), long.Parse(w[1]))).ToArray();

    /// <summary>(objects, slabs, partial, objs_per_slab) of a cache.</summary>
    private static (long Objects, long Slabs, long Partial, long Ops) State(ModuleProcess m, string cache) =>
        (m.SysfsValue(cache, "objects"), m.SysfsValue(cache, "slabs"), m.SysfsValue(cache, "partial"), m.SysfsValue(cache, "objs_per_slab"));

    private static void Shrink(ModuleProcess m, string cache)
    {
        var reply = m.Client.Write($"{cache}/shrink", "1");
        Assert.True(reply.Ok, $"shrink {cache}: {reply}");
    }

    private static void AssertEveryKeepTh((long Index, long Id)[] things, int nr, int keep)
    {
        Assert.Equal(Kept(nr, keep).Length, things.Length);
        for (int k = 0; k < things.Length; k++)
        {
            Assert.Equal((long)k * keep, things[k].Index);
            Assert.Equal((long)k * keep, things[k].Id);
        }
    }

    [Fact]
    public void TestSmoXArray_AtLoad_KeepsEveryKeepThThingAndLeavesTheCachesSparse()
    {
        using var m = ModuleProcess.StartModule("xarray");
        string[] log = m.LogLines();
        Assert.Contains("smo_xarray: created kmem_cache: smox_test", log);
        Assert.Contains("smo_xarray: kmem_cache smox_test defrag enabled", log);
        Assert.Contains("smo_xarray: module loaded successfully", log);
        Assert.DoesNotContain(log, l => l.Contains("failed") || l.Contains("smox: error"));
        Assert.Contains("migrate :", m.Client.Read("smox_test/ops"));
        Assert.Contains("migrate :", m.Client.Read("xa_node/ops"));

        AssertEveryKeepTh(Things(m), NrItems, Keep);
        var things = State(m, "smox_test");
        Assert.Equal(Kept(NrItems, Keep).Length, things.Objects);
        // 5 of every 6 things freed: far more slabs than the survivors need, all of them partial.
        Assert.True(things.Slabs > Ceil(things.Objects, things.Ops), $"smox_test not sparse: {things}");
        Assert.Equal(things.Slabs, things.Partial);
        // The nodes: no leaf of 64 indices lost all its multiples of 6, so every node is still used.
        Assert.Equal(NodesFor(Kept(NrItems, Keep)), m.SysfsValue("xa_node", "objects"));
        Assert.Equal(0, m.Unload());
    }

    [Fact]
    public void ManualProcedure_ShrinkBothCaches_ObjectsMoveAndTheArraySurvives()
    {
        using var m = ModuleProcess.StartModule("xarray");
        var before = Things(m);
        var nodes = State(m, "xa_node");

        // slabinfo xa_node --shrink: the nodes are dense already (see above), so nothing is left to gain.
        Shrink(m, "xa_node");
        var nodesAfter = State(m, "xa_node");
        Assert.Equal(nodes.Objects, nodesAfter.Objects);
        Assert.Equal(Ceil(nodes.Objects, nodes.Ops), nodesAfter.Slabs);
        Assert.True(nodesAfter.Partial <= 1, $"xa_node: {nodesAfter}");

        // slabinfo smox_test --shrink: the things move into as few slabs as they need ("the single remaining partial slab").
        var sparse = State(m, "smox_test");
        Shrink(m, "smox_test");
        var packed = State(m, "smox_test");
        Assert.Equal(sparse.Objects, packed.Objects);
        Assert.Equal(Ceil(sparse.Objects, sparse.Ops), packed.Slabs);
        Assert.True(packed.Slabs < sparse.Slabs);
        Assert.Equal(sparse.Objects % sparse.Ops == 0 ? 0 : 1, packed.Partial);

        // Every moved thing was re-stored at its index: same indices, same ids.
        Assert.Equal(before, Things(m));
        Assert.DoesNotContain(m.LogLines(), l => l.Contains("failed to exchange new/old"));
        Assert.Equal(0, m.Unload());
    }

    [Fact]
    public void XaNodesMove_WhenErasingEmptiesLeaves()
    {
        using var m = ModuleProcess.StartModule("xarray");
        Assert.True(m.Callfn("clear").Ok);
        Assert.Empty(Things(m));
        Assert.Equal(0, m.SysfsValue("xa_node", "objects"));
        Assert.Equal(0, m.SysfsValue("smox_test", "objects"));
        Shrink(m, "xa_node");
        Assert.Equal(0, m.SysfsValue("xa_node", "slabs"));

        // Keep every 128th: every other leaf loses all its entries and is deleted, punching holes in xa_node.
        const int nr = 10000, keep = 128;
        var reply = m.Callfn($"test {nr} {keep}");
        Assert.True(reply.Ok, reply.ToString());
        Assert.Contains($"smox: test using nr_items: {nr} keep: {keep} passed, {Kept(nr, keep).Length} things left", m.LogLines());
        var before = Things(m);
        AssertEveryKeepTh(before, nr, keep);

        var sparse = State(m, "xa_node");
        Assert.Equal(NodesFor(Kept(nr, keep)), sparse.Objects);
        Assert.True(sparse.Slabs > Ceil(sparse.Objects, sparse.Ops), $"xa_node not sparse: {sparse}");

        Shrink(m, "xa_node");
        var packed = State(m, "xa_node");
        Assert.Equal(sparse.Objects, packed.Objects);
        Assert.Equal(Ceil(sparse.Objects, sparse.Ops), packed.Slabs);
        Assert.True(packed.Partial < sparse.Partial, $"xa_node partial slabs: {sparse.Partial} before, {packed.Partial} after");
        Assert.Equal(before, Things(m));   // lookups through the moved nodes still find every thing

        // And the things themselves, whose migrate stores into the array that now uses the moved nodes.
        var things = State(m, "smox_test");
        Shrink(m, "smox_test");
        var thingsPacked = State(m, "smox_test");
        Assert.Equal(things.Objects, thingsPacked.Objects);
        Assert.Equal(Ceil(things.Objects, things.Ops), thingsPacked.Slabs);
        Assert.Equal(before, Things(m));

        Assert.True(m.Callfn("clear").Ok);
        Assert.Contains($"smox: cleared {before.Length} things", m.LogLines());
        Assert.Equal(0, m.SysfsValue("xa_node", "objects"));
        Assert.Equal(0, m.SysfsValue("smox_test", "objects"));
        Assert.Equal(0, m.Unload());
    }

    // ------------------------------------------------------------------ bad input on smo_xarray/callfn

    private static string Snapshot(ModuleProcess m) =>
        string.Join("|", new[] { "smox_test", "xa_node" }.SelectMany(c =>
            new[] { "objects", "total_objects", "slabs", "partial" }.Select(a => m.Client.Read($"{c}/{a}"))))
        + "|" + m.Client.Read("smo_xarray/things");

    private static void AssertRefused(ModuleProcess m, string payload, string code, string message)
    {
        string before = Snapshot(m);
        int logBefore = m.LogLines().Length;
        var reply = m.Client.Write("smo_xarray/callfn", payload);
        Assert.False(reply.Ok, $"'{payload.ReplaceLineEndings("\\n")}' was accepted");
        Assert.Equal(code, reply.Code);
        Assert.Contains(message, reply.Message);
        Assert.Contains(m.LogLines().Skip(logBefore), l => l.Contains(message));
        Assert.Equal(before, Snapshot(m));
    }

    [Fact]
    public void BadInput_IsRefusedWithTheModulesMessageAndChangesNothing()
    {
        using var m = ModuleProcess.StartModule("xarray");
        // Unknown commands (matched exactly, words split on single spaces).
        AssertRefused(m, "frob\n", "EINVAL", "failed to call function for cmd: frob");
        AssertRefused(m, "Test\n", "EINVAL", "failed to call function for cmd: Test");
        AssertRefused(m, " test\n", "EINVAL", "failed to call function for cmd: ");
        AssertRefused(m, "", "EINVAL", "empty command");
        // Wrong argument counts.
        AssertRefused(m, "test 1 2 3\n", "EINVAL", "smox: test takes at most 2 arguments, got 3, command not run. Usage: test [NR [KEEP]]");
        AssertRefused(m, "clear 1\n", "EINVAL", "smox: clear takes at most 0 arguments, got 1, command not run. Usage: clear");
        // Not numbers.
        AssertRefused(m, "test x\n", "EINVAL", "failed to convert arg, command not run. (x)");
        AssertRefused(m, "test 0x10\n", "EINVAL", "failed to convert arg, command not run. (0x10)");
        AssertRefused(m, "test  5\n", "EINVAL", "failed to convert arg, command not run. ()");
        // Out of range: beyond int, and beyond each argument's range.
        AssertRefused(m, "test 2147483648\n", "ERANGE", "smox: test: number out of range, command not run. (2147483648)");
        AssertRefused(m, "test 1048577\n", "ERANGE", "smox: test: NR out of range: 1048577 (0..1048576, or -1 for 10000), command not run");
        AssertRefused(m, "test -5\n", "ERANGE", "smox: test: NR out of range: -5 (0..1048576, or -1 for 10000), command not run");
        AssertRefused(m, "test 100 0\n", "ERANGE", "smox: test: KEEP out of range: 0 (1..2147483647, or -1 for 6), command not run");
        // A well-formed test while the load test's things are still there.
        AssertRefused(m, "test 100 2\n", "EBUSY", "smox: test requires clean module state");
        Assert.Equal(0, m.Unload());
    }

    [Fact]
    public void Defaults_TestWithoutArgumentsRepeatsTheLoadTest()
    {
        using var m = ModuleProcess.StartModule("xarray");
        var atLoad = Things(m);
        Assert.True(m.Callfn("clear").Ok);
        Assert.True(m.Callfn("test -1 -1").Ok);   // -1: the defaults
        Assert.Equal(atLoad, Things(m));
        Assert.True(m.Callfn("clear").Ok);
        Assert.True(m.Callfn("test").Ok);
        AssertEveryKeepTh(Things(m), NrItems, Keep);
        Assert.True(m.Callfn("clear").Ok);
        Assert.True(m.Callfn("test 0").Ok);        // nothing stored, nothing to check
        Assert.Empty(Things(m));
        Assert.Equal(0, m.Unload());
    }

    [Fact]
    public void Unload_FreesEverythingAndExitsZero()
    {
        using var m = ModuleProcess.StartModule("xarray");
        Assert.Equal(0, m.Unload());
        Assert.Contains("smo_xarray: module removed", m.Stderr);
        Assert.Contains("exiting (unloaded through smo_xarray/unload)", m.Stderr);
    }

    [Fact]
    public void Interactive_ShowsBothCaches_AndShrinkMovesThings()
    {
        using var m = ModuleProcess.StartModule("xarray", "--interactive");
        var input = m.StandardInput;
        input.WriteLine("shrink");
        input.WriteLine("frob");
        input.WriteLine("help");
        input.WriteLine("quit");
        input.Flush();
        Assert.Equal(0, m.WaitForExit());
        string output = m.Stdout;
        Assert.Contains("SMO XArray test module", output);
        Assert.Contains("smox_test: objects 1667 of ", output);
        Assert.Contains("xa_node: objects 161 of ", output);
        Assert.Contains("things in the array 1667", output);
        Assert.Contains("ok (xa_node/shrink)", output);
        Assert.Contains("ok (smox_test/shrink)", output);
        // 1667 objects at 46 a slab under FZPU (the red zone's padding word makes the slot 88 bytes).
        Assert.Contains("slabs 37 (full 36, partial 1, cpu 0)", output);
        Assert.Contains("error EINVAL: smo_xarray/callfn: failed to call function for cmd: frob", output);
        Assert.Contains("test [NR [KEEP]]", output);
        Assert.False(File.Exists(m.SocketPath));
    }
}
