using Slub.Cli.Slabinfo;

namespace Slub.Tests.Slabinfo;

public class OccupancyMapTests
{
    private static SlabinfoFixtures.Result Map(string cache) =>
        SlabinfoFixtures.Run("--sysfs", SlabinfoFixtures.Sysfs("smo-2node"), "--map", cache);

    [Fact]
    public void DrawsOneCellPerSlabWithASummary()
    {
        var r = Map("smo_test");
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("40 slabs, 21 objects per slab, 700 objects in use (83% of slots)", r.Out);
        Assert.Contains("31 full, 8 partial, 1 empty", r.Out);
        // 40 cells: 32 on the first row, 8 on the second; glyphs follow the slab_occupancy file.
        Assert.Contains("██░·▓██░████████████████████████", r.Out);
        Assert.Contains("███░░░▒░ ", r.Out);
    }

    [Fact]
    public void TheSummaryCountsInTheSingularForOne()
    {
        Assert.Equal(["1 slab, 1 object per slab, 1 object in use (100% of slots)", "1 full, 0 partial, 0 empty"],
            OccupancyMap.Summary([1], 1));
        Assert.Equal(["2 slabs, 21 objects per slab, 0 objects in use (0% of slots)", "0 full, 0 partial, 2 empty"],
            OccupancyMap.Summary([0, 0], 21));
    }

    [Theory]
    [InlineData(0, 21, '·')]
    [InlineData(3, 21, '░')]
    [InlineData(7, 21, '▒')]
    [InlineData(17, 21, '▓')]
    [InlineData(21, 21, '█')]
    public void ShadeFollowsTheFill(int inUse, int capacity, char glyph)
    {
        Assert.Equal(glyph, OccupancyMap.Shade(inUse, capacity).Glyph);
    }

    [Fact]
    public void AliasIsResolvedAndMissingPerSlabDataIsSaid()
    {
        var r = Map("fs_cache");
        Assert.Equal(1, r.ExitCode);
        Assert.EndsWith("does not expose per-slab data for :A-0000128 (no slab_occupancy attribute)\n", r.Err);
    }

    [Fact]
    public void UnknownCacheIsAnError()
    {
        var r = Map("nope");
        Assert.Equal(1, r.ExitCode);
        Assert.StartsWith("slabinfo: no cache named 'nope' in ", r.Err);
    }

    [Fact]
    public void MalformedOccupancyIsAnError()
    {
        var e = Assert.Throws<SlabinfoFatalException>(() => OccupancyMap.ParseOccupancy("3 x 4", "c"));
        Assert.Equal("slabinfo: c/slab_occupancy: 'x' is not an object count\n", e.Message);
    }
}
