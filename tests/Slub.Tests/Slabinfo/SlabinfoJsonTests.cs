using System.Text.Json;

namespace Slub.Tests.Slabinfo;

public class SlabinfoJsonTests
{
    private static JsonElement Json(params string[] args)
    {
        var r = SlabinfoFixtures.Run(["--sysfs", SlabinfoFixtures.Sysfs("smo-2node"), "--json", .. args], null);
        Assert.Equal(0, r.ExitCode);
        Assert.EndsWith("}\n", r.Out);
        return JsonDocument.Parse(r.Out).RootElement.Clone(); // throws if the output is not one valid JSON value
    }

    [Fact]
    public void ListingHasTheCachesOfTheTextListingInItsOrder()
    {
        var text = SlabinfoFixtures.Run("--sysfs", SlabinfoFixtures.Sysfs("smo-2node")).Out;
        var textNames = text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(l => l.Split(' ')[0]);
        var json = Json();
        Assert.Equal("caches", json.GetProperty("mode").GetString());
        Assert.Equal("smo", json.GetProperty("dialect").GetString());
        Assert.Equal(textNames, json.GetProperty("caches").EnumerateArray().Select(c => c.GetProperty("name").GetString()));
        var smo = json.GetProperty("caches").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "smo_test");
        Assert.Equal("CMa", smo.GetProperty("flags").GetString());
        Assert.Equal(163840UL, smo.GetProperty("size").GetUInt64());
        Assert.Equal(82UL, smo.GetProperty("efficiencyPercent").GetUInt64());
        Assert.Equal([30, 10], smo.GetProperty("numaSlabs").EnumerateArray().Select(e => e.GetInt32()));
        Assert.True(smo.GetProperty("movable").GetBoolean());
    }

    [Fact]
    public void TotalsAliasesAndExtendedTotals()
    {
        var totals = Json("-T").GetProperty("totals");
        Assert.Equal(6, totals.GetProperty("active").GetInt32());
        Assert.Equal(7300UL, totals.GetProperty("perCache").GetProperty("objects").GetProperty("total").GetUInt64());

        var aliases = Json("-a").GetProperty("aliases").EnumerateArray().Select(a => a.GetProperty("alias").GetString()).ToList();
        Assert.Equal(["kmalloc-64", "task_delay_info", "dma-kmalloc-64-long"], aliases);

        var sections = Json("-X").GetProperty("sections").EnumerateArray().ToList();
        Assert.Equal(["size", "loss"], sections.Select(s => s.GetProperty("sort").GetString()));
        Assert.Equal("kmalloc-8k", sections[0].GetProperty("caches")[0].GetProperty("name").GetString());
    }

    [Fact]
    public void EmptyResultIsStillAnObject()
    {
        // Two caches are selected (kmalloc-8k and fs_cache, the renamed :A-0000128); neither is movable.
        var json = Json("-M", "kmalloc-8k\\|fs_cache");
        Assert.Equal(0, json.GetProperty("caches").GetArrayLength());
        // A pattern that leaves one cache gives its report in the text, so the JSON lists that cache.
        Assert.Equal(1, Json("-M", "^ctor").GetProperty("caches").GetArrayLength());
    }
}
