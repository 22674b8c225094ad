using Slub.Cli.Slabinfo;

namespace Slub.Tests.Slabinfo;

/// <summary>Messages and exit codes for bad options, bad patterns and missing or broken sources.</summary>
public class SlabinfoErrorTests
{
    [Fact]
    public void MissingKernelSourcePrintsTheToolsLine()
    {
        var r = SlabinfoFixtures.Run([], _ => null);
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("SYSFS support for SLUB not active\n", r.Err);
        Assert.Equal("", r.Out);
    }

    [Fact]
    public void MissingSnapshotDirectoryIsOneClearLine()
    {
        var r = SlabinfoFixtures.Run("--sysfs", "/nonexistent/slab");
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("slabinfo: no slab directory at '/nonexistent/slab' (--sysfs expects an exported /sys/kernel/slab tree)\n", r.Err);
    }

    [Fact]
    public void UnreadableSourceIsOneClearLine()
    {
        var broken = new BrokenSource();
        var r = SlabinfoFixtures.Run([], _ => broken);
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("slabinfo: cannot list slab directory /broken: Permission denied\n", r.Err);
        Assert.Single(r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void HelpAndErrorsComeBeforeTheSourceIsOpened()
    {
        var opened = false;
        SlabinfoTool.SourceFactory factory = _ => { opened = true; return null; };
        Assert.Equal(0, SlabinfoFixtures.Run(["-h"], factory).ExitCode);
        Assert.Equal(1, SlabinfoFixtures.Run(["-Q"], factory).ExitCode);
        Assert.Equal(1, SlabinfoFixtures.Run(["[x"], factory).ExitCode);
        Assert.False(opened);
    }

    [Fact]
    public void OptionsAfterHelpAreNotLookedAt()
    {
        var r = SlabinfoFixtures.Run(["-h", "-Q"], _ => null);
        Assert.Equal(0, r.ExitCode);
        Assert.StartsWith("slabinfo 4/15/2017.", r.Out);
    }

    [Fact]
    public void InvalidDebugLetter()
    {
        var r = SlabinfoFixtures.Run(["-dq"], _ => null);
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("Invalid debug option 'q'\n", r.Err);
    }

    [Fact]
    public void SmoOnlyOptionsAreInvalidInTheCurrentDialectAndViceVersa()
    {
        var current = SlabinfoFixtures.Run(["--compat", "current", "-M"], _ => null);
        Assert.Equal("slabinfo: invalid option -- 'M'\nslabinfo: Invalid option 'M'\n", current.Err);
        var smo = SlabinfoFixtures.Run(["-P"], _ => null);
        Assert.Equal("slabinfo: invalid option -- 'P'\nslabinfo: Invalid option 'P'\n", smo.Err);
        Assert.Equal(1, smo.ExitCode);
    }

    [Fact]
    public void PortOptionsAreValidated()
    {
        Assert.Equal("slabinfo: unknown --compat 'v4' (use 'smo' or 'current')\n", SlabinfoFixtures.Run(["--compat", "v4"], _ => null).Err);
        Assert.Equal("slabinfo: --pid expects a process id\n", SlabinfoFixtures.Run(["--pid=abc"], _ => null).Err);
        Assert.Equal("slabinfo: --sysfs and --pid name two different sources; give one\n",
            SlabinfoFixtures.Run(["--sysfs", "/tmp", "--pid", "1"], _ => null).Err);
        Assert.Equal("slabinfo: --json describes listings; it cannot be combined with -s, -v or -d\n",
            SlabinfoFixtures.Run(["--json", "-s"], _ => null).Err);
    }

    private sealed class BrokenSource : ISlabSource
    {
        public string Description => "/broken";
        public IReadOnlyList<SlabEntry> ListEntries() =>
            throw new SlabSourceException("EACCES", "cannot list slab directory /broken: Permission denied");
        public string? ReadAttribute(string cache, string attribute) => null;
        public void WriteAttribute(string cache, string attribute, string text) { }
    }
}
