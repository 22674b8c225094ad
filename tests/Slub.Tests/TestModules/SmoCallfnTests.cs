namespace Slub.Tests.TestModules;

/// <summary>
/// The control file <c>smo/callfn</c> of <c>slub test-module smo</c>, out of process: bad input is refused
/// with the module's message (in the reply and in <c>smo/log</c>) and changes nothing; the commands'
/// arguments, defaults and positions behave as the series' module's do.
/// </summary>
[Collection("test-module processes")]
public sealed class SmoCallfnTests
{
    /// <summary>Everything a command could change, as seen from outside: the cache's figures, its ops and the module's list.</summary>
    private static string Snapshot(ModuleProcess m) =>
        string.Join("|", new[] { "objects", "total_objects", "slabs", "partial", "ops" }.Select(a => m.Client.Read($"smo_test/{a}")))
        + "|" + m.Client.Read("smo/objects");

    private static void AssertRefused(ModuleProcess m, string payload, string code, string message)
    {
        string before = Snapshot(m);
        int logBefore = m.LogLines().Length;
        var reply = m.Client.Write("smo/callfn", payload);
        Assert.False(reply.Ok, $"'{payload.ReplaceLineEndings("\\n")}' was accepted");
        Assert.Equal(code, reply.Code);
        Assert.Contains(message, reply.Message);
        string[] log = m.LogLines();
        Assert.True(log.Length > logBefore, $"'{payload}': nothing logged");
        Assert.Contains(log.Skip(logBefore), l => l.Contains(message));
        Assert.Equal(before, Snapshot(m));
    }

    private static ModuleProcess StartWithObjects(int n, params string[] args)
    {
        var m = ModuleProcess.Start(args);
        Assert.True(m.Callfn($"alloc {n}").Ok);
        return m;
    }

    [Fact]
    public void UnknownCommand_IsRefusedWithTheModulesMessage()
    {
        using var m = StartWithObjects(5);
        AssertRefused(m, "frob 1\n", "EINVAL", "failed to call function for cmd: frob");
        AssertRefused(m, "allocate 3\n", "EINVAL", "failed to call function for cmd: allocate");
        AssertRefused(m, "Alloc 3\n", "EINVAL", "failed to call function for cmd: Alloc");
        AssertRefused(m, " alloc 3\n", "EINVAL", "failed to call function for cmd: ");   // words split on single spaces
        AssertRefused(m, "\n", "EINVAL", "failed to call function for cmd: ");          // echo "" > callfn
        Assert.Equal(0, m.Unload());
    }

    [Fact]
    public void EmptyWrite_IsInvalid()
    {
        using var m = StartWithObjects(2);
        AssertRefused(m, "", "EINVAL", "empty command");
        Assert.Equal(0, m.Unload());
    }

    [Fact]
    public void WrongArgumentCount_IsRefused()
    {
        using var m = StartWithObjects(5);
        AssertRefused(m, "enable 1\n", "EINVAL", "smo: enable takes at most 0 arguments, got 1, command not run");
        AssertRefused(m, "alloc 1 0 0\n", "EINVAL", "smo: alloc takes at most 2 arguments, got 3, command not run. Usage: alloc [N [NODE]]");
        AssertRefused(m, "free 1 0 0\n", "EINVAL", "smo: free takes at most 2 arguments, got 3");
        AssertRefused(m, "test 10 2 0\n", "EINVAL", "smo: test takes at most 2 arguments, got 3");
        Assert.Equal(0, m.Unload());
    }

    [Fact]
    public void NumberOutOfRange_IsRefused()
    {
        using var m = StartWithObjects(5);
        AssertRefused(m, "alloc 2147483648\n", "ERANGE", "smo: alloc: number out of range, command not run. (2147483648)");
        AssertRefused(m, "free -2147483649\n", "ERANGE", "smo: free: number out of range, command not run. (-2147483649)");
        AssertRefused(m, "alloc 99999999999999999999\n", "ERANGE", "number out of range, command not run. (99999999999999999999)");
        AssertRefused(m, "alloc 1 1\n", "ERANGE", "smo: alloc: NODE out of range: 1 (0..0, or -1 for any node), command not run");
        AssertRefused(m, "alloc -2\n", "ERANGE", "smo: alloc: N out of range: -2");
        AssertRefused(m, "free -5\n", "ERANGE", "smo: free: N out of range: -5");
        AssertRefused(m, "free 1 -7\n", "ERANGE", "smo: free: POS out of range: -7");
        AssertRefused(m, "test -3\n", "ERANGE", "smo: test: NR out of range: -3");
        AssertRefused(m, "test 10 -4\n", "ERANGE", "smo: test: KEEP out of range: -4");
        Assert.Equal(0, m.Unload());
    }

    [Fact]
    public void NotANumber_IsRefused()
    {
        using var m = StartWithObjects(5);
        AssertRefused(m, "alloc x\n", "EINVAL", "failed to convert arg, command not run. (x)");
        AssertRefused(m, "alloc 0x10\n", "EINVAL", "failed to convert arg, command not run. (0x10)");
        AssertRefused(m, "alloc 1.5\n", "EINVAL", "failed to convert arg, command not run. (1.5)");
        AssertRefused(m, "free +\n", "EINVAL", "failed to convert arg, command not run. (+)");
        AssertRefused(m, "alloc  5\n", "EINVAL", "failed to convert arg, command not run. ()");   // two spaces: an empty word
        AssertRefused(m, "alloc 5 \n", "EINVAL", "failed to convert arg, command not run. ()");
        AssertRefused(m, "alloc 1\nfree 1\n", "EINVAL", "failed to convert arg, command not run. (1");   // one command per write
        Assert.Equal(0, m.Unload());
    }

    [Fact]
    public void Test_NeedsACleanModuleAndANonZeroKeep()
    {
        using var m = StartWithObjects(3);
        AssertRefused(m, "test\n", "EBUSY", "smo: test requires clean module state");
        Assert.True(m.Callfn("free 0").Ok);
        AssertRefused(m, "test 10 0\n", "EINVAL", "Usage: test <nr_objs> <keep>");
        Assert.Contains("smo: test using nr_objs: 10 keep: 0", m.LogLines());
        Assert.Equal(0, m.Unload());
    }

    [Fact]
    public void Callfn_IsWriteOnly_AndUnloadTakesOnlyOne()
    {
        using var m = StartWithObjects(1);
        var e = Assert.Throws<EndpointErrorException>(() => m.Client.Read("smo/callfn"));
        Assert.Equal("EACCES", e.Code);
        var reply = m.Client.Write("smo/unload", "2\n");
        Assert.Equal("EINVAL", reply.Code);
        Assert.False(m.HasExited);
        Assert.Equal("1 N0=1\n", m.Client.Read("smo_test/objects"));
        Assert.Equal(0, m.Unload());
    }

    [Fact]
    public void AllocAndFree_DefaultsPositionsAndTheWholeList()
    {
        using var m = ModuleProcess.Start();
        Assert.True(m.Client.Write("smo/callfn", "alloc").Ok);           // no newline, no argument: 1 object
        Assert.Equal(1, m.SysfsValue("objects"));
        Assert.True(m.Callfn("alloc -1").Ok);                             // -1 is the default, as in the module
        Assert.True(m.Callfn("alloc +8").Ok);
        Assert.Equal(10, m.SysfsValue("objects"));
        Assert.Equal(10, m.Client.Read("smo/objects").Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.True(m.Callfn("free 2 3").Ok);                             // positions 3 and 4
        Assert.Equal(8, m.SysfsValue("objects"));
        Assert.True(m.Callfn("free 0 5").Ok);                             // N = 0: everything from position 5 on
        Assert.Equal(5, m.SysfsValue("objects"));
        Assert.True(m.Callfn("free 100").Ok);                             // more than listed: up to the end
        Assert.Equal(0, m.SysfsValue("objects"));
        Assert.True(m.Callfn("free").Ok);                                 // nothing listed: nothing to do
        Assert.Equal("", m.Client.Read("smo/objects"));
        Assert.Equal(0, m.Unload());
    }

    [Fact]
    public void Alloc_OnANode()
    {
        using var m = ModuleProcess.Start("--nodes", "2");
        Assert.True(m.Callfn("alloc 3 1").Ok);
        Assert.Equal("3 N1=3\n", m.Client.Read("smo_test/objects"));
        Assert.True(m.Callfn("alloc 2 0").Ok);
        Assert.Equal("5 N0=2 N1=3\n", m.Client.Read("smo_test/objects"));
        Assert.All(m.Client.Read("smo/objects").Split('\n', StringSplitOptions.RemoveEmptyEntries).Take(3), l => Assert.EndsWith(" -1 1", l));
        Assert.Equal(0, m.Unload());
    }

    [Fact]
    public void Test_WithArguments_LeavesTheCacheMovableAndEmpty()
    {
        using var m = ModuleProcess.Start();
        Assert.DoesNotContain("migrate : ", m.Client.Read("smo_test/ops"));
        var reply = m.Callfn("test 300 7");
        Assert.True(reply.Ok, reply.ToString());
        string[] log = m.LogLines();
        Assert.Contains("smo: test using nr_objs: 300 keep: 7", log);
        Assert.Equal("smo: Module tests completed successfully", log[^1]);
        Assert.Contains("migrate : ", m.Client.Read("smo_test/ops"));
        Assert.Equal(0, m.SysfsValue("objects"));
        Assert.Equal(0, m.SysfsValue("slabs"));
        Assert.True(m.Client.Read("smo_test/defrag_objects_moved").Trim() != "0");
        Assert.Equal(0, m.Unload());
    }
}
