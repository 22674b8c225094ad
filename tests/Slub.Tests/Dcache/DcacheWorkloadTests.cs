using Slub.Dcache;
using Xunit.Abstractions;

namespace Slub.Tests.Dcache;

public class DcacheWorkloadTests(ITestOutputHelper output)
{
    [Fact]
    public void WorkloadOnARealTreeVerifiesEveryPath()
    {
        using var t = new TempTree();
        for (int d = 0; d < 30; d++)
            for (int f = 0; f < 60; f++)
                t.File($"dir{d}/sub{f % 3}/file-{f}" + (f % 10 == 0 ? new string('L', 45) : ""));
        using var a = TestAllocator.Create();
        foreach (var mode in new[] { PartialShrinkMode.WholeSlabsOnly, PartialShrinkMode.EvictAllUnused })
        {
            var r = DcacheWorkload.Run(a, new DcacheWorkloadOptions { Root = t.Root, MaxEntries = 5000, Mode = mode, Seed = 7 });
            output.WriteLine($"{mode}:\n{r}");
            Assert.Equal(0, r.Mismatches);
            Assert.Equal(r.Paths, r.Verified);
            Assert.True(r.MissingPaths > 0);
            Assert.True(r.SlabsAfterSmo <= r.SlabsAfterPressure);
            Assert.True(r.SlabsAfterPressure > r.OptimalAfterPressure);
            Assert.True(r.SmoSlabsFreed > 0);
        }
        Assert.Null(a.FindCache("dentry"));
    }
}
