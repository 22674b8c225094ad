using Slub.XArray;

namespace Slub.Benchmarks;

/// <summary>
/// The data of the XArray load probes: keys 0..n-1 stored as value entries in an <see cref="XArray.XArray"/>
/// and in a <see cref="Dictionary{TKey,TValue}"/>, and the keys in a fixed random order and in key order.
/// </summary>
public sealed class DenseKeySet : IDisposable
{
    private readonly SlabAllocator _alloc;
    public XArray.XArray Xa { get; }
    public Dictionary<ulong, ulong> Dictionary { get; } = new();
    public ulong[] Random { get; }
    public ulong[] Sequential { get; }

    public DenseKeySet(int n)
    {
        _alloc = new SlabAllocator(new SlabOptions { BytesPerNode = 1L << 30, EmulatedNodes = 1, Cpus = 2, SlubDebug = "-" });
        Xa = new XArray.XArray(XaFlags.None, _alloc);
        for (ulong i = 0; i < (ulong)n; i++) { Xa.StoreValue(i, i); Dictionary[i] = i; }
        Sequential = Enumerable.Range(0, n).Select(i => (ulong)i).ToArray();
        Random = (ulong[])Sequential.Clone();
        new Random(1).Shuffle(Random);
    }

    public void Dispose()
    {
        Xa.Dispose();
        _alloc.Dispose();
    }
}
