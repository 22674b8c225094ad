namespace Slub.Tests.TestModules;

/// <summary>The life of a <c>slub test-module smo</c> process: ways to end it, clean-up, and the interactive console.</summary>
[Collection("test-module processes")]
public sealed class SmoModuleProcessTests
{
    [Fact]
    public void Unload_FreesTheListedObjects_DestroysTheCache_RemovesTheSocket()
    {
        using var m = ModuleProcess.Start();
        Assert.True(m.Callfn("alloc 50").Ok);
        Assert.True(m.Callfn("enable").Ok);
        Assert.Equal(0, m.Unload());
        Assert.Contains("smo: Test module removed", m.Stderr);
        Assert.Contains("exiting (unloaded through smo/unload)", m.Stderr);
        Assert.False(File.Exists(m.SocketPath));
    }

    [Fact]
    public void Sigterm_UnloadsAndExits()
    {
        using var m = ModuleProcess.Start();
        Assert.True(m.Callfn("alloc 3").Ok);
        m.SendSignal(15);
        Assert.Equal(0, m.WaitForExit());
        Assert.Contains("exiting (SIGTERM)", m.Stderr);
        Assert.Contains("smo: Test module removed", m.Stderr);
        Assert.False(File.Exists(m.SocketPath));
    }

    [Fact]
    public void EndOfFileOnAPipedStdin_UnloadsAndExits()
    {
        using var m = ModuleProcess.Start();
        Assert.True(m.Callfn("alloc 3").Ok);
        m.StandardInput.Close();
        Assert.Equal(0, m.WaitForExit());
        Assert.Contains("exiting (end of file on stdin)", m.Stderr);
        Assert.False(File.Exists(m.SocketPath));
    }

    [Fact]
    public void Quiet_KeepsTheLogOffStderr_ButInSmoLog()
    {
        using var m = ModuleProcess.Start("--quiet");
        Assert.Contains("smo: Test module loaded", m.LogLines());
        Assert.Equal(0, m.Unload());
        Assert.DoesNotContain("smo:", m.Stderr);
    }

    [Fact]
    public void BadOption_IsAParseError()
    {
        // Checked by the parser (usage, exit 1, as for every subcommand), not after the command started.
        var (code, _, err) = Slub.Tests.Cli.CliRunner.Run("test-module", "smo", "--nodes", "0");
        Assert.Equal(1, code);
        Assert.Contains("--nodes must be a whole number in 1..64, not '0'", err);
        var bad = Slub.Cli.Program.BuildRoot().Parse(["test-module", "smo", "--slub-debug", "Q"]);
        Assert.Single(bad.Errors, e => e.Message.StartsWith("--slub-debug: ", StringComparison.Ordinal));
    }

    /// <summary>The console runs the same commands as callfn and shows the figures; the endpoint sees the same module.</summary>
    [Fact]
    public void Interactive_TypedCommandsShowMessagesAndFigures()
    {
        using var m = ModuleProcess.Start("--interactive");
        long ops = m.SysfsValue("objs_per_slab");
        var input = m.StandardInput;
        input.WriteLine($"alloc {ops + 1}");
        input.WriteLine("free 1");
        input.WriteLine("enable");
        input.WriteLine("shrink");
        input.WriteLine("frob");
        input.WriteLine("alloc 1 2 3");
        input.Flush();
        input.WriteLine("help");
        input.WriteLine("quit");
        input.Flush();
        Assert.Equal(0, m.WaitForExit());
        string output = m.Stdout;
        Assert.Contains($"objects {ops + 1} of {2 * ops} slots, slabs 2 (full 1, partial 1, cpu 0)", output);
        Assert.Contains($"objects {ops} of {2 * ops} slots, slabs 2 (full 0, partial 2, cpu 0)", output);
        Assert.Contains("log: smo: kmem_cache smo_test defrag enabled", output);
        Assert.Contains($"objects {ops} of {ops} slots, slabs 1 (full 1, partial 0, cpu 0)", output);
        Assert.Contains("error EINVAL: smo/callfn: failed to call function for cmd: frob", output);
        Assert.Contains("smo: alloc takes at most 2 arguments, got 3", output);
        Assert.Contains("test [NR [KEEP]]", output);
        Assert.False(File.Exists(m.SocketPath));
    }
}
