using System.Runtime.Intrinsics;

namespace Slub.Tests.Core;

/// <summary>KmemCache&lt;T&gt;: typed objects, their constructor, and the alignment the runtime expects of T.</summary>
public unsafe class TypedCacheTests
{
    private struct Point3 { public long X, Y, Z; }

    private struct Particle
    {
        public Vector256<float> Position;
        public int Id;
    }

    [Fact]
    public void TypedObjectsAreConstructedAndFreedThroughBothForms()
    {
        using var a = TestAllocator.Create();
        var cache = a.CreateCache<Point3>("points", ctor: static (ref Point3 p) => p = new Point3 { X = 1, Y = 2, Z = 3 });
        Assert.Equal(sizeof(Point3), cache.Cache.ObjectSize);
        Point3* p = cache.Alloc();
        Assert.Equal((1L, 2L, 3L), (p->X, p->Y, p->Z));
        ref Point3 r = ref cache.AllocRef();
        Assert.Equal(3L, r.Z);
        r.X = 42;
        cache.Cache.FlushAll();   // objects on CPU free lists count as in use, as in the kernel
        Assert.Equal(2, cache.Cache.CountObjects());
        cache.Free(p);
        cache.Free(ref r);
        cache.Cache.FlushAll();
        Assert.Equal(0, cache.Cache.CountObjects());
        Assert.Empty(cache.Cache.Validate());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]   // a constructor puts the free pointer after the object: a 32-byte T then had 40-byte slots
    public void VectorTypesGetTheirOwnAlignment(bool withConstructor)
    {
        using var a = TestAllocator.Create();
        var cache = a.CreateCache<Particle>(withConstructor ? "particles_ctor" : "particles",
            ctor: withConstructor ? static (ref Particle p) => p = new Particle { Position = Vector256<float>.One, Id = -1 } : null);
        Assert.Equal(32, cache.Cache.Geometry.Align);
        var objects = Enumerable.Range(0, 200).Select(_ => (nint)cache.Alloc()).ToList();
        Assert.All(objects, p => Assert.Equal(0, p % 32));
        foreach (var p in objects) cache.Free((Particle*)p);
    }

    [Fact]
    public void AnExplicitAlignmentIsKept()
    {
        using var a = TestAllocator.Create();
        var cache = a.CreateCache<Point3>("points64", align: 64);
        Assert.Equal(64, cache.Cache.Geometry.Align);
        var small = a.CreateCache<Point3>("points_default");
        Assert.Equal(8, small.Cache.Geometry.Align);   // word alignment, as the kernel's default
    }
}
