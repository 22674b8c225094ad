namespace Slub.Tests.Core;

/// <summary>
/// Arguments a caller can get wrong are refused with an <see cref="ArgumentException"/> of the .NET kind that names the
/// parameter, before anything is created or allocated, instead of a crash deeper down (a divide by zero, an overflow)
/// or a silent reinterpretation.
/// </summary>
public class ArgumentValidationTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    public void ACpuCountBelowOneIsRefusedOnTheMachinesTopologyToo(int cpus)
    {
        // With EmulatedNodes the count was checked; on the machine's own topology 0 was a DivideByZeroException
        // and -1 an OverflowException.
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new SlabAllocator(new SlabOptions { Cpus = cpus, BytesPerNode = 4 << 20 }));
        Assert.Equal("cpus", e.ParamName);
        Assert.Contains("at least 1 CPU", e.Message);
    }

    [Fact]
    public void ANegativeMinObjectsIsRefused()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new SlabAllocator(new SlabOptions { MinObjects = -1, BytesPerNode = 4 << 20 }));
        Assert.Equal("options", e.ParamName);
        Assert.Contains("MinObjects", e.Message);
    }

    [Fact]
    public void ANullCacheNameIsAnArgumentNullException()
    {
        using var a = TestAllocator.Create();
        var e = Assert.Throws<ArgumentNullException>(() => a.CreateCache(null!, 64));
        Assert.Equal("name", e.ParamName);
        Assert.Throws<ArgumentNullException>(() => a.CreateCache<long>(null!));
    }

    [Fact]
    public void UndefinedFlagBitsAreRefused()
    {
        using var a = TestAllocator.Create();
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => a.CreateCache("bad_flags", 64, 0, (SlabFlags)(1 << 20)));
        Assert.Equal("flags", e.ParamName);
        Assert.Null(a.FindCache("bad_flags"));
        Assert.NotNull(a.CreateCache("good_flags", 64, 0, SlabFlags.HwCacheAlign | SlabFlags.NoMerge));
    }

    [Theory]
    [InlineData(-2)]
    [InlineData(int.MinValue)]
    public void ANodeBelowMinusOneIsRefusedNotTakenAsAnyNode(int node)
    {
        using var a = TestAllocator.Create(nodes: 2);
        var c = a.CreateCache("nodes", 64);
        Assert.Equal("node", Assert.Throws<ArgumentOutOfRangeException>(() => c.AllocNode(node)).ParamName);
        Assert.Equal("node", Assert.Throws<ArgumentOutOfRangeException>(() => c.TryAllocNode(node)).ParamName);
        Assert.Equal("node", Assert.Throws<ArgumentOutOfRangeException>(() => c.AllocBulk(new nint[4], node)).ParamName);
        Assert.Equal("node", Assert.Throws<ArgumentOutOfRangeException>(() => c.TryAllocOnCpu(0, node)).ParamName);
        Assert.Equal("node", Assert.Throws<ArgumentOutOfRangeException>(() => a.DefragSlabs(node)).ParamName);
        Assert.Equal(0, c.GetStatistics().Objects);   // nothing was allocated on the way
        nint p = c.AllocNode(-1);                     // -1 (NUMA_NO_NODE) still means any node
        c.Free(p);
    }
}
