using Slub.Cli.Slabinfo;

namespace Slub.Tests.Slabinfo;

/// <summary>The --pid client against a fake endpoint that serves a copy of the synthetic snapshot.</summary>
public sealed class LiveSlabSourceTests : IDisposable
{
    private readonly string _copy = SlabinfoFixtures.CopyToTemp("smo-2node");
    private readonly FakeLiveEndpoint _server;

    public LiveSlabSourceTests()
    {
        _server = new FakeLiveEndpoint(new DirectorySlabSource(_copy), FakeLiveEndpoint.UnusedPid());
    }

    public void Dispose()
    {
        _server.Dispose();
        Directory.Delete(_copy, recursive: true);
    }

    [Fact]
    public void ListingThroughTheEndpointMatchesTheCToolsOutputForTheSameTree()
    {
        var r = SlabinfoFixtures.Run("--pid", _server.Pid.ToString());
        Assert.Equal(0, r.ExitCode);
        Assert.Equal(File.ReadAllText(SlabinfoFixtures.Golden("smo-2node", "smo", "s_default", "out")), r.Out);
        Assert.Equal(1, _server.Connections); // one connection carries every request
        Assert.True(_server.Requests > 100);
    }

    [Fact]
    public void ReportAndAliasesThroughTheEndpoint()
    {
        Assert.Equal(File.ReadAllText(SlabinfoFixtures.Golden("smo-2node", "smo", "s_r", "out")),
            SlabinfoFixtures.Run("--pid", _server.Pid.ToString(), "-r").Out);
        Assert.Equal(File.ReadAllText(SlabinfoFixtures.Golden("smo-2node", "smo", "s_a", "out")),
            SlabinfoFixtures.Run("--pid", _server.Pid.ToString(), "-a").Out);
    }

    [Fact]
    public void ShrinkIsWrittenThroughTheEndpoint()
    {
        var r = SlabinfoFixtures.Run("--pid", _server.Pid.ToString(), "-s", "smo");
        Assert.Equal(0, r.ExitCode);
        Assert.Equal("1\n", File.ReadAllText(Path.Combine(_copy, "smo_test", "shrink")));
    }

    [Fact]
    public void ClientMapsTheProtocol()
    {
        using var client = new LiveSlabSource(_server.Pid);
        var entries = client.ListEntries();
        Assert.Contains(new SlabEntry("smo_test", SlabEntryKind.Cache), entries);
        Assert.Contains(new SlabEntry("fs_cache", SlabEntryKind.Alias, ":A-0000128"), entries);
        Assert.Equal("40 N0=30 N1=10\n", client.ReadAttribute("smo_test", "slabs"));
        Assert.Null(client.ReadAttribute("smo_test", "no_such_file"));
        client.WriteAttribute("smo_test", "validate", "1\n");
        Assert.Equal("1\n", File.ReadAllText(Path.Combine(_copy, "smo_test", "validate")));
        var missing = Assert.Throws<SlabSourceException>(() => client.WriteAttribute("smo_test", "nope", "1\n"));
        Assert.Equal("ENOENT", missing.Code);
    }

    [Fact]
    public void EndpointErrorsBecomeOneClearLine()
    {
        _server.Failures["smo_test/objects"] = "EIO device went away";
        var r = SlabinfoFixtures.Run("--pid", _server.Pid.ToString());
        Assert.Equal(1, r.ExitCode);
        Assert.Equal($"slabinfo: process {_server.Pid} ({_server.SocketPath}): READ smo_test/objects: EIO device went away\n", r.Err);
    }

    [Fact]
    public void RefusedWriteUsesTheToolsMessage()
    {
        _server.Failures["smo_test/shrink"] = "EPERM read-only endpoint";
        var r = SlabinfoFixtures.Run("--pid", _server.Pid.ToString(), "-s", "^smo");
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("Cannot write to smo_test/shrink\n", r.Err);
    }

    [Fact]
    public void AValueTheCacheRefusesDoesNotStopTheRun()
    {
        // The C tool's set_obj() dies only when fopen() fails; a write(2) the kernel refuses (validate on a
        // cache without slub_debug: EINVAL) surfaces at fclose(), unchecked, and the tool goes on to the next cache.
        _server.Failures["ctor_only/validate"] = "EINVAL validate needs a debug cache";
        var r = SlabinfoFixtures.Run("--pid", _server.Pid.ToString(), "-v");
        Assert.Equal((0, "", ""), (r.ExitCode, r.Out, r.Err));
        Assert.Equal("1\n", File.ReadAllText(Path.Combine(_copy, "smo_test", "validate")));   // sorted after ctor_only
    }

    [Fact]
    public void NoEndpointIsOneClearLine()
    {
        var pid = FakeLiveEndpoint.UnusedPid();
        var r = SlabinfoFixtures.Run("--pid", pid.ToString());
        Assert.Equal(1, r.ExitCode);
        Assert.StartsWith($"slabinfo: cannot connect to process {pid}: no live endpoint at {LiveSlabSource.SocketPathFor(pid)}", r.Err);
        Assert.Single(r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }
}
