using Slub.XArray;

namespace Slub.Cli.Demo;

/// <summary>
/// The demo's XArray part: store a large dense range, then erase most of it at random — whole 64-index blocks
/// (freeing their leaf nodes) and most of the rest — which leaves the <c>xa_node</c> cache fragmented. After
/// defragmentation every surviving entry must still read back.
/// </summary>
internal sealed class XaNodeWorkload : IDisposable
{
    private readonly XArray.XArray _xa;
    private readonly List<ulong> _kept = new();

    public XaNodeWorkload(SlabAllocator allocator) => _xa = new XArray.XArray(XaFlags.None, allocator);

    public KmemCache Cache => _xa.NodeCache;

    public void Fill(int count, Random random, Action<string, double> progress)
    {
        for (ulong i = 0; i < (ulong)count; i++)
        {
            _xa.StoreValue(i, Value(i));
            if ((i & 0xffff) == 0) progress("fill xa_node", (double)i / count);
        }
        progress("fill xa_node", 1);
        for (ulong b = 0; b < (ulong)count; b += 64)
        {
            bool wholeBlock = random.NextDouble() < 0.75;
            for (ulong i = b; i < Math.Min(b + 64, (ulong)count); i++)
            {
                if (wholeBlock || random.NextDouble() < 0.9) _xa.Erase(i);
                else _kept.Add(i);
            }
        }
        // Retired nodes go back to the cache after a grace period: wait for it so the counts are exact.
        _xa.Reclaimer.Synchronize();
    }

    public bool Verify()
    {
        foreach (ulong i in _kept)
            if (!_xa.TryGetValue(i, out ulong v) || v != Value(i)) return false;
        _xa.Validate();
        return _xa.LongCount() == _kept.Count;
    }

    private static ulong Value(ulong i) => (i * 0x9E3779B97F4A7C15UL) >> 1;

    public void Dispose() => _xa.Dispose();
}
