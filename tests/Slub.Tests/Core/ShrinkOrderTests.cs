namespace Slub.Tests.Core;

/// <summary>
/// The partial-list order a shrink leaves on a cache without mobility: mainline <c>__kmem_cache_shrink</c> promotes
/// slabs with 1..32 free objects (<c>SHRINK_PROMOTE_MAX</c>) to the head, fewest free first, and leaves sparser
/// slabs behind them in the order they had. Allocation takes the head, so this decides which slabs fill next.
/// </summary>
public class ShrinkOrderTests
{
    [Fact]
    public void SlabsWithMoreThan32FreeObjectsKeepTheirOrderBehindThePromotedOnes()
    {
        using var a = TestAllocator.Create(cpus: 1);
        var c = a.CreateCache("shrink_order", 64, flags: SlabFlags.NoMerge);
        Assert.Equal(64, c.ObjectsPerSlab);
        a.Sysfs.Write("shrink_order/cpu_partial", "0");   // a full slab's first free puts it on the node list's tail
        var slabs = new List<List<nint>>();
        for (int s = 0; s < 6; s++)
        {
            var objs = new List<nint>();
            for (int i = 0; i < 64; i++) objs.Add(c.TryAllocOnCpu(0));
            slabs.Add(objs);
        }
        c.FlushAll();   // all six full, on no list
        // First frees in this order put the slabs on the partial list in this order; they keep these objects in use.
        int[] keep = [5, 10, 60, 40, 30, 63];
        for (int s = 0; s < slabs.Count; s++)
            for (int i = keep[s]; i < 64; i++) c.FreeOnCpu(0, slabs[s][i]);
        Assert.Equal(new[] { 5, 10, 60, 40, 30, 63 }, Partial(c));

        c.Shrink();

        // Free 59, 54, 4, 24, 34 (> 32), 1: those with at most 32 promoted fewest free first, the rest as they were.
        Assert.Equal(new[] { 63, 60, 40, 5, 10, 30 }, Partial(c));
        for (int s = 0; s < slabs.Count; s++)
            for (int i = 0; i < keep[s]; i++) c.FreeOnCpu(0, slabs[s][i]);
    }

    private static int[] Partial(KmemCache c) =>
        c.SlabOccupancy().Where(t => t.Inuse < t.Objects).Select(t => t.Inuse).ToArray();
}
