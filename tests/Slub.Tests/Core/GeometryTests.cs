namespace Slub.Tests.Core;

public class GeometryTests
{
    // Figures of real caches on a 2-CPU Linux 6.18 machine (sample-churn.before and /sys/kernel/slab).
    [Theory]
    [InlineData(192, 21, 0)]   // dentry
    [InlineData(752, 21, 2)]   // shmem_inode_cache
    [InlineData(1128, 14, 2)]  // ext4_inode_cache
    [InlineData(584, 14, 1)]   // radix_tree_node
    [InlineData(624, 13, 1)]   // inode_cache
    [InlineData(64, 64, 0)]    // kmalloc-64
    [InlineData(8192, 4, 3)]   // kmalloc-8k
    public void OrderAndObjectsMatchTheKernel(int size, int objects, int order)
    {
        var g = CacheGeometry.Compute(size, 0, SlabFlags.None, hasCtor: false, cpus: 2);
        Assert.Equal(size, g.Size);
        Assert.Equal(objects, g.ObjectsPerSlab);
        Assert.Equal(order, g.Order);
    }

    [Fact]
    public void ConstructorMovesTheFreePointerOutsideTheObject()
    {
        var plain = CacheGeometry.Compute(192, 0, SlabFlags.None, hasCtor: false, cpus: 2);
        var ctor = CacheGeometry.Compute(192, 0, SlabFlags.None, hasCtor: true, cpus: 2);
        Assert.False(plain.FreePointerOutside);
        Assert.Equal(96, plain.FreePointerOffset);   // middle of the object
        Assert.True(ctor.FreePointerOutside);
        Assert.Equal(200, ctor.Size);
        Assert.Equal(20, ctor.ObjectsPerSlab);
    }

    [Fact]
    public void ConstructorCacheCanNameAWordOfTheObjectForTheFreePointer()
    {
        var outside = CacheGeometry.Compute(158, 8, SlabFlags.None, hasCtor: true, cpus: 2);
        var inside = CacheGeometry.Compute(158, 8, SlabFlags.None, hasCtor: true, cpus: 2, freePointerOffset: 0);
        Assert.Equal(168, outside.Size);
        Assert.Equal(24, outside.ObjectsPerSlab);
        Assert.Equal(0, inside.FreePointerOffset);
        Assert.False(inside.FreePointerOutside);
        Assert.Equal(160, inside.Size);
        Assert.Equal(25, inside.ObjectsPerSlab);
        // Poisoning needs the whole object: the named word is ignored.
        Assert.True(CacheGeometry.Compute(158, 8, SlabFlags.Poison, hasCtor: true, cpus: 2, freePointerOffset: 0).FreePointerOutside);
        // Without a constructor or RCU the pointer goes in the middle as always.
        Assert.Equal(72, CacheGeometry.Compute(158, 8, SlabFlags.None, hasCtor: false, cpus: 2, freePointerOffset: 0).FreePointerOffset);
        Assert.Throws<ArgumentOutOfRangeException>(() => CacheGeometry.Compute(158, 8, SlabFlags.None, true, 2, freePointerOffset: 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => CacheGeometry.Compute(158, 8, SlabFlags.None, true, 2, freePointerOffset: 152));
    }

    [Fact]
    public void DebugFlagsAddRedZonesAndTracks()
    {
        var g = CacheGeometry.Compute(64, 0, SlabFlags.RedZone | SlabFlags.StoreUser | SlabFlags.Poison, hasCtor: false, cpus: 2);
        Assert.Equal(8, g.RedLeftPad);
        Assert.Equal(72, g.Inuse);                       // one word of right red zone
        Assert.Equal(72, g.FreePointerOffset);           // poison keeps the object intact
        Assert.Equal(80, g.TrackOffset);
        // Left red zone, object and right red zone, free pointer, tracks, and one word of padding that a
        // write before the next object's left red zone hits instead of these tracks (as calculate_sizes).
        Assert.Equal(8 + 72 + 8 + 2 * CacheGeometry.TrackSize + 8, g.Size);
        Assert.Equal(80 + 2 * CacheGeometry.TrackSize, g.PaddingOffset);
    }

    [Theory]
    [InlineData(20, 32)]
    [InlineData(40, 64)]
    [InlineData(100, 64)]
    [InlineData(8, 8)]
    public void HardwareCacheAlignmentHalvesForSmallObjects(int size, int align)
    {
        Assert.Equal(align, CacheGeometry.CalculateAlignment(SlabFlags.HwCacheAlign, 0, size));
    }

    [Fact]
    public void AMinimumOrderAboveTheMaximumRaisesTheMaximum()
    {
        // slub_min_order=4 with the default slub_max_order=3: the kernel raises the maximum, so slabs are order 4
        // (this used to fall through to get_order(size), order 0 for small objects).
        Assert.Equal(4, CacheGeometry.CalculateOrder(64, 2, 0, minOrder: 4, maxOrder: 3));
        Assert.Equal(4, CacheGeometry.Compute(64, 0, SlabFlags.None, false, 2, minOrder: 4).Order);
    }

    [Theory]
    [InlineData(0, 11)]
    [InlineData(11, 3)]
    [InlineData(-1, 3)]
    [InlineData(0, -1)]
    public void SlabOrderOptionsOutsideThePageAllocatorAreRefused(int minOrder, int maxOrder)
    {
        // An order-11 slab used to be computed, then every allocation threw from inside the buddy arena.
        var e = Assert.Throws<ArgumentOutOfRangeException>(() =>
            new SlabAllocator(new SlabOptions { BytesPerNode = 4 << 20, EmulatedNodes = 1, Cpus = 1, SlubDebug = "-", MinOrder = minOrder, MaxOrder = maxOrder }));
        Assert.Contains("order", e.Message);
    }

    [Fact]
    public void BadArgumentsAreRefused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => CacheGeometry.Compute(0, 0, SlabFlags.None, false, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => CacheGeometry.Compute(64, 3, SlabFlags.None, false, 2));
        // An alignment beyond the largest page block would overflow the slot size (it came out negative with a red zone).
        Assert.Throws<ArgumentOutOfRangeException>(() => CacheGeometry.Compute(64, 1 << 30, SlabFlags.RedZone, false, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => CacheGeometry.Compute(64, 1 << 23, SlabFlags.None, false, 2));
    }
}
