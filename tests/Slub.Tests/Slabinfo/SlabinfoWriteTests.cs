namespace Slub.Tests.Slabinfo;

/// <summary>
/// -s, -v and -d write to the source. Each test works on a temporary copy of the synthetic snapshot. The expected
/// files and messages are those the C tools produced on a copy of the same snapshot.
/// </summary>
public sealed class SlabinfoWriteTests : IDisposable
{
    private readonly string _copy = SlabinfoFixtures.CopyToTemp("smo-2node");

    public void Dispose() => Directory.Delete(_copy, recursive: true);

    private string Read(string cache, string attr) => File.ReadAllText(Path.Combine(_copy, cache, attr));

    private SlabinfoFixtures.Result Run(params string[] args) =>
        SlabinfoFixtures.Run(["--sysfs", _copy, .. args], null);

    [Theory]
    [InlineData("-s", "shrink")]
    [InlineData("-v", "validate")]
    [InlineData("--shrink", "shrink")]
    public void WritesOneToEveryListedCache(string option, string file)
    {
        var r = Run(option);
        Assert.Equal((0, "", ""), (r.ExitCode, r.Out, r.Err));
        foreach (var cache in new[] { ":0000064", ":A-0000128", "ctor_only", "empty_cache", "kmalloc-8k", "smo_test" })
            Assert.Equal("1\n", Read(cache, file));
        Assert.Equal("", Read(":t-0000256", file)); // a merged cache without aliases is "*", never written
    }

    [Fact]
    public void AWriteThatFailsAfterTheOpenIsIgnoredAsTheCToolIgnoresFclose()
    {
        // sysfs refuses a value in write(2) (validate on a cache without slub_debug: EINVAL); the C tool only
        // checks fopen(), so it goes on. /dev/full opens fine and fails every write, like such a file.
        var validate = Path.Combine(_copy, "ctor_only", "validate");
        File.Delete(validate);
        File.CreateSymbolicLink(validate, "/dev/full");
        var r = Run("-v");
        Assert.Equal((0, "", ""), (r.ExitCode, r.Out, r.Err));
        Assert.Equal("1\n", Read("smo_test", "validate"));   // sorted after ctor_only
    }

    [Fact]
    public void ShrinkHonoursThePattern()
    {
        Assert.Equal(0, Run("-s", "^smo").ExitCode);
        Assert.Equal("1\n", Read("smo_test", "shrink"));
        Assert.Equal("", Read("ctor_only", "shrink"));
    }

    [Fact]
    public void DebugOffReportsCachesThatAreNotEmptyAndWritesTraceOne()
    {
        var r = Run("-d");
        Assert.Equal(0, r.ExitCode);
        Assert.Equal(
            "ctor_only not empty cannot disable sanity checks\n" +
            "ctor_only not empty cannot disable redzoning\n" +
            "ctor_only not empty cannot disable poisoning\n" +
            "ctor_only not empty cannot disable tracking\n", r.Err);
        Assert.Equal("1\n", Read("kmalloc-8k", "trace")); // [quirk] "trace off" writes 1
        Assert.Equal("1\n", Read("ctor_only", "sanity_checks"));
    }

    [Fact]
    public void CurrentDialectDebugAllWritesSanityChecksAndFlagsOfEmptyCaches()
    {
        var r = Run("--compat", "current", "-da");
        Assert.Equal(0, r.ExitCode);
        Assert.Equal(12, r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.StartsWith(":0000064 not empty cannot enable redzoning\n", r.Err);
        foreach (var cache in new[] { ":0000064", ":A-0000128", "empty_cache", "kmalloc-8k", "smo_test" })
            Assert.Equal("1\n", Read(cache, "sanity_checks"));
        foreach (var attr in new[] { "poison", "red_zone", "store_user" })
            Assert.Equal("1\n", Read("empty_cache", attr));
        Assert.Equal("0\n", Read("smo_test", "poison"));
    }

    [Fact]
    public void SmoDialectDebugSanityWritesAFileSysfsDoesNotHave()
    {
        // The series' tool writes "<cache>/sanity"; like sysfs, a snapshot does not let a new file be created.
        var r = Run("-df");
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("Cannot write to :0000064/sanity\n", r.Err);
        Assert.False(File.Exists(Path.Combine(_copy, ":0000064", "sanity")));
    }

    [Fact]
    public void TraceCanOnlyBeEnabledWhenOneCacheWasRead()
    {
        var many = Run("-dt", "^empty");
        Assert.Equal("empty_cache can only enable trace for one slab at a time\n", many.Err);
        Assert.Equal("0\n", Read("empty_cache", "trace"));
    }

    [Fact]
    public void MapAfterShrinkWritesShrinkAndDrawsTwice()
    {
        var r = Run("-s", "--map", "smo_test");
        Assert.Equal(0, r.ExitCode);
        Assert.Equal("1\n", Read("smo_test", "shrink"));
        Assert.Contains("Occupancy of smo_test", r.Out);
        Assert.Contains("After shrink: smo_test", r.Out);
    }
}
