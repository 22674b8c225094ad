using CsCheck;

namespace Slub.Tests.Mobility;

public class SlabAddressOrderTests
{
    [Fact]
    public void SortsAnyOrderOfSlabsByAddressAndKeepsEverySlab()
    {
        // Slabs of mixed orders (4 KiB objects: order-3 slabs; 64-byte objects: order 0) spread over the arena.
        using var a = TestAllocator.Create(cpus: 1);
        var small = a.CreateCache("order_small", 64, flags: SlabFlags.NoMerge);
        var large = a.CreateCache("order_large", 4096, flags: SlabFlags.NoMerge);
        var objects = new List<nint>();
        for (int i = 0; i < 3000; i++) { objects.Add(small.Alloc()); if (i % 4 == 0) objects.Add(large.Alloc()); }
        var slabs = objects.Select(p => (Slab)a.Pages.OwnerOf(p)!).Distinct().ToList();
        Assert.True(slabs.Count >= 64);
        Gen.Int.Sample(seed =>
        {
            var rng = new Random(seed);
            var list = slabs.OrderBy(_ => rng.Next()).Take(rng.Next(64, slabs.Count + 1)).ToList();
            var before = list.ToList();
            SlabAddressOrder.Sort(list, list.Select(s => s.Address).ToList());
            Assert.Equal(before.OrderBy(s => s.Address), list);
        }, iter: 50);
        foreach (var p in objects) (a.Pages.OwnerOf(p) is Slab { Cache: var c } ? c : null)!.Free(p);
    }

    [Fact]
    public void LeavesAShortListAsItIs()
    {
        using var a = TestAllocator.Create(cpus: 1);
        var c = a.CreateCache("order_short", 2048, flags: SlabFlags.NoMerge);
        var objects = Enumerable.Range(0, 200).Select(_ => c.Alloc()).ToList();
        var slabs = objects.Select(p => (Slab)a.Pages.OwnerOf(p)!).Distinct().Reverse().Take(20).ToList();
        var before = slabs.ToList();
        SlabAddressOrder.Sort(slabs, slabs.Select(s => s.Address).ToList());
        Assert.Equal(before, slabs);
        foreach (var p in objects) c.Free(p);
    }
}
