using Slub.XArray;
using XA = Slub.XArray.XArray;

namespace Slub.Tests.XArray;

/// <summary><see cref="XaReader.LoadMany"/> must return exactly what one <see cref="XA.Load"/> per index returns.</summary>
public class LoadManyTests : XaTest
{
    /// <summary>
    /// Random arrays of every height the lockstep walk takes (1–4 levels) and taller ones: value and pointer
    /// entries, multi-index entries (siblings inside a leaf and entries covering whole nodes), reservations and
    /// holes; looked up with random batches (lengths not multiples of four, keys in and out of range, in random
    /// and in key order) and compared key by key with <see cref="XA.Load"/>.
    /// </summary>
    [Theory]
    [InlineData(64UL)]            // one level
    [InlineData(4096UL)]          // two
    [InlineData(100_000UL)]       // three
    [InlineData(1UL << 24)]       // four
    [InlineData(1UL << 40)]       // seven: the general path for every key
    public void MatchesPerKeyLoads(ulong range)
    {
        var rnd = new Random((int)(range % 1_000_003));
        for (int round = 0; round < 6; round++)
        {
            var xa = New();
            int stores = 3000;
            for (int s = 0; s < stores; s++)
            {
                ulong i = (ulong)rnd.NextInt64((long)range);
                switch (rnd.Next(10))
                {
                    case < 5: xa.StoreValue(i, (ulong)rnd.NextInt64(long.MaxValue)); break;
                    case 5: xa.Store(i, XaEntry.FromPointer((nint)(rnd.NextInt64(1, 1L << 40) << 2))); break;
                    case 6:
                    {
                        int order = rnd.Next(1, 9);   // 2..256 indices: siblings in a leaf, or whole leaves
                        xa.StoreOrder(i & ~((1UL << order) - 1), order, XaEntry.FromValue((ulong)s));
                        break;
                    }
                    case 7: xa.TryReserve(i); break;
                    default: xa.Erase(i); break;   // holes, and shrinking
                }
            }
            using var r = xa.BeginRead();
            int batch = 0;
            foreach (int len in new[] { 0, 1, 3, 4, 5, 7, 64, 257, 1000 })
            {
                var keys = new ulong[len];
                for (int k = 0; k < len; k++)
                    keys[k] = rnd.Next(8) switch
                    {
                        0 => (ulong)rnd.NextInt64(),                                   // mostly out of range
                        1 => range + (ulong)rnd.Next(1000),                            // just above
                        _ => (ulong)rnd.NextInt64((long)range),
                    };
                switch (batch++ % 3)
                {
                    case 1: Array.Sort(keys); break;                                   // key order: leaf reuse
                    case 2: FillWithRuns(keys, range, rnd); break;                     // consecutive runs: the run copy
                }
                var got = new XaEntry[len + 2];
                got[len] = got[len + 1] = XaEntry.FromValue(12345);   // beyond the batch: untouched
                r.LoadMany(keys, got);
                for (int k = 0; k < len; k++) Is(xa.Load(keys[k]), got[k]);
                Is(XaEntry.FromValue(12345), got[len]);
                Is(XaEntry.FromValue(12345), got[len + 1]);
            }
            xa.Validate();
        }
    }

    /// <summary>
    /// Runs of consecutive indices (1 to 150 long, so starting anywhere in a leaf and crossing leaf boundaries),
    /// most in range, some running past the end of the array and beyond the root's reach.
    /// </summary>
    private static void FillWithRuns(ulong[] keys, ulong range, Random rnd)
    {
        for (int k = 0; k < keys.Length;)
        {
            ulong first = rnd.Next(6) == 0 ? range - (ulong)rnd.Next(1, 80) : (ulong)rnd.NextInt64((long)range);
            int len = rnd.Next(1, 151);
            for (int j = 0; j < len && k < keys.Length; j++) keys[k++] = first + (ulong)j;
        }
    }

    /// <summary>
    /// Dense arrays read in key order from every alignment: runs of consecutive indices stop at siblings,
    /// reservations, retry-free holes, pointer entries and whole-leaf multi-index entries exactly as per-key loads do.
    /// </summary>
    [Fact]
    public void ConsecutiveRunsMatchPerKeyLoads()
    {
        var xa = New();
        const ulong N = 5000;
        for (ulong i = 0; i < N; i++) xa.StoreValue(i, i * 3);
        xa.StoreOrder(128, 2, XaEntry.FromValue(7));     // siblings 129..131
        xa.StoreOrder(200, 5, XaEntry.FromValue(9));     // siblings 201..223
        xa.StoreOrder(1024, 7, XaEntry.FromValue(8));    // two whole leaves under one entry
        xa.Store(70, XaEntry.FromPointer(0x1000));
        xa.Erase(300);
        xa.Reserve(300);
        for (ulong i = 400; i < 464; i++) xa.Erase(i);   // an erased leaf
        xa.Erase(513);
        for (ulong skip = 0; skip < 8; skip++)
        {
            var keys = new ulong[N + 70 - skip];
            for (int k = 0; k < keys.Length; k++) keys[k] = skip + (ulong)k;   // the last ones beyond the array
            var got = new XaEntry[keys.Length];
            using var r = xa.BeginRead();
            r.LoadMany(keys, got);
            for (int k = 0; k < keys.Length; k++) Is(xa.Load(keys[k]), got[k]);
            Is(XaEntry.FromValue(7), got[131 - (int)skip]);
            Is(XaEntry.Null, got[300 - (int)skip]);
            Is(XaEntry.FromValue(3 * 4999), got[4999 - (int)skip]);
        }
        xa.Validate();
    }

    [Fact]
    public void ReservedAndSiblingIndicesReadAsPerKey()
    {
        var xa = New();
        for (ulong i = 0; i < 5000; i++) xa.StoreValue(i, i);
        xa.StoreOrder(128, 4, XaEntry.FromValue(7));   // siblings 129..143
        xa.StoreOrder(4096, 8, XaEntry.FromValue(8));  // covers four leaves' worth of indices
        xa.Erase(300);
        xa.Reserve(300);
        xa.Erase(301);
        ulong[] keys = [128, 129, 143, 144, 4096, 4100, 4351, 4352, 300, 301, 302, 5000, 1UL << 50];
        var got = new XaEntry[keys.Length];
        using var r = xa.BeginRead();
        r.LoadMany(keys, got);
        XaEntry[] want = [XaEntry.FromValue(7), XaEntry.FromValue(7), XaEntry.FromValue(7), XaEntry.FromValue(144),
            XaEntry.FromValue(8), XaEntry.FromValue(8), XaEntry.FromValue(8), XaEntry.FromValue(4352),
            XaEntry.Null, XaEntry.Null, XaEntry.FromValue(302), XaEntry.Null, XaEntry.Null];
        Assert.Equal(want, got);
    }

    [Fact]
    public void ShortOrOverlappingOutputAndDisposedReaderThrow()
    {
        var xa = New();
        xa.StoreValue(1, 1);
        var r = xa.BeginRead();
        var ex = Assert.Throws<ArgumentException>(() =>
        {
            var rr = xa.BeginRead();
            try { rr.LoadMany(new ulong[5], new XaEntry[4]); } finally { rr.Dispose(); }
        });
        Assert.Equal("entries", ex.ParamName);
        var shared = new ulong[8];
        ex = Assert.Throws<ArgumentException>(() =>
        {
            var rr = xa.BeginRead();
            try { rr.LoadMany(shared.AsSpan(0, 4), System.Runtime.InteropServices.MemoryMarshal.Cast<ulong, XaEntry>(shared.AsSpan(2, 4))); }
            finally { rr.Dispose(); }
        });
        Assert.Equal("entries", ex.ParamName);
        r.LoadMany(new ulong[] { 1 }, new XaEntry[1]);
        r.Dispose();
        bool threw = false;
        try { r.LoadMany(new ulong[] { 1 }, new XaEntry[1]); } catch (ObjectDisposedException) { threw = true; }
        Assert.True(threw);
        threw = false;
        try { default(XaReader).LoadMany(ReadOnlySpan<ulong>.Empty, Span<XaEntry>.Empty); } catch (ObjectDisposedException) { threw = true; }
        Assert.True(threw);
    }
}
