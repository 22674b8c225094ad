using Slub.XArray;

namespace Slub.Tests.XArray;

/// <summary>Helpers mirroring lib/test_xarray.c's (xa_mk_index, xa_store_index, xa_erase_index, …).</summary>
public abstract class XaTest : IDisposable
{
    protected readonly SlabAllocator Alloc = TestAllocator.Create(mbPerNode: 256);
    private readonly List<Slub.XArray.XArray> _arrays = new();

    protected Slub.XArray.XArray New(XaFlags flags = XaFlags.None)
    {
        var xa = new Slub.XArray.XArray(flags, Alloc);
        _arrays.Add(xa);
        return xa;
    }

    protected static XaEntry V(ulong i) => XaEntry.FromValue(i & long.MaxValue);

    /// <summary>Assert.Equal for entries without xUnit's per-call cost in hot loops.</summary>
    protected static void Is(XaEntry expected, XaEntry actual)
    {
        if (expected.Raw != actual.Raw) Assert.Equal(expected, actual);
    }

    protected static void Is(ulong expected, ulong actual)
    {
        if (expected != actual) Assert.Equal(expected, actual);
    }

    protected static void StoreIndex(Slub.XArray.XArray xa, ulong i) => Is(XaEntry.Null, xa.Store(i, V(i)));

    protected static void EraseIndex(Slub.XArray.XArray xa, ulong i)
    {
        Is(V(i), xa.Erase(i));
        Is(XaEntry.Null, xa.Load(i));
    }

    protected static void StoreOrder(Slub.XArray.XArray xa, ulong i, int order, XaEntry e) =>
        Assert.Equal(XaError.None, xa.TryStoreOrder(i, order, e, out _));

    protected static void AssertEmpty(Slub.XArray.XArray xa)
    {
        Assert.True(xa.IsEmpty, "array should be empty");
        xa.Validate();
    }

    public virtual void Dispose()
    {
        foreach (var xa in _arrays) xa.Dispose();
        Alloc.Dispose();
        GC.SuppressFinalize(this);
    }
}
