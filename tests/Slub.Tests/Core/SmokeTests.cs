namespace Slub.Tests.Core;

public unsafe class SmokeTests
{
    [Fact]
    public void AllocFreeCountsAndShrink()
    {
        using var a = TestAllocator.Create();
        var c = a.CreateCache("smoke", 64, flags: SlabFlags.NoMerge);
        var objs = new List<nint>();
        for (int i = 0; i < 10000; i++) { nint p = c.Alloc(); *(long*)p = i; objs.Add(p); }
        Assert.Equal(10000, objs.Distinct().Count());
        for (int i = 0; i < objs.Count; i++) Assert.Equal(i, *(long*)objs[i]);
        foreach (var p in objs) c.Free(p);
        c.Shrink();
        var st = c.GetStatistics();
        Assert.Equal(0, st.Objects);
        Assert.Equal(0, st.Slabs);
    }
}
