using CsCheck;

namespace Slub.Tests.Mobility;

public class SlabAddressOrderTests
{
    private const int Page = 4096;

    /// <summary>Checks that <paramref name="order"/> is a permutation putting <paramref name="addresses"/> in ascending order.</summary>
    private static void AssertAscendingPermutation(nint[] addresses, int[] order)
    {
        Assert.Equal(Enumerable.Range(0, addresses.Length), order.OrderBy(i => i));
        for (int k = 1; k < order.Length; k++) Assert.True(addresses[order[k - 1]] < addresses[order[k]], $"position {k}");
    }

    [Fact]
    public void OrdersDenseAndSparseSetsOfSlabStartsByAddress()
    {
        // Dense: most pages of the range are slab starts (the page table); sparse: a few over a wide range (the
        // radix sort, one to three passes); slabs of several pages (higher orders) in between.
        var gen = Gen.Select(Gen.Int[64, 3000], Gen.Int[1, 64], Gen.Int[0, 1 << 20], Gen.Int);
        gen.Sample((count, spread, origin, seed) =>
        {
            var rng = new Random(seed);
            var pages = new HashSet<long>();
            while (pages.Count < count) pages.Add(rng.NextInt64((long)count * spread));
            nint[] addresses = pages.Select(p => (nint)((origin + p) * Page)).ToArray();
            var order = new int[count];
            SlabAddressOrder.Fill(addresses, order);
            AssertAscendingPermutation(addresses, order);
        }, iter: 200);
    }

    [Fact]
    public void KeepsAShortListInTheOrderChosen()
    {
        nint[] addresses = Enumerable.Range(0, 20).Select(i => (nint)((100 - i) * Page)).ToArray();
        var order = new int[addresses.Length];
        SlabAddressOrder.Fill(addresses, order);
        Assert.Equal(Enumerable.Range(0, 20), order);
    }

    [Fact]
    public void OrdersTheSlabsOfARealCache()
    {
        // Real slabs of two caches (order-0 and order-3 slabs) spread over an arena, in a random order.
        using var a = TestAllocator.Create(cpus: 1);
        var small = a.CreateCache("order_small", 64, flags: SlabFlags.NoMerge);
        var large = a.CreateCache("order_large", 4096, flags: SlabFlags.NoMerge);
        var objects = new List<(KmemCache Cache, nint Obj)>();
        for (int i = 0; i < 3000; i++)
        {
            objects.Add((small, small.Alloc()));
            if (i % 4 == 0) objects.Add((large, large.Alloc()));
        }
        var rng = new Random(5);
        var slabs = objects.Select(o => (Slab)a.Pages.OwnerOf(o.Obj)!).Distinct().OrderBy(_ => rng.Next()).ToArray();
        Assert.True(slabs.Length >= 64);
        nint[] addresses = slabs.Select(s => s.Address).ToArray();
        var order = new int[slabs.Length];
        SlabAddressOrder.Fill(addresses, order);
        AssertAscendingPermutation(addresses, order);
        foreach (var (cache, obj) in objects) cache.Free(obj);
    }

    [Fact]
    public void RejectsAnOrderBufferOfAnotherLength() =>
        Assert.Throws<ArgumentException>(() => SlabAddressOrder.Fill(new nint[3], new int[2]));
}
