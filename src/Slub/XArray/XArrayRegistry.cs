using System.Collections.Concurrent;

namespace Slub.XArray;

/// <summary>
/// Maps the id stored in each node's <c>array</c> field to its <see cref="XArray"/>. Ids are never reused, so
/// a stale id read from a node can at worst fail to resolve; it can never name a different array. Weak
/// references: an array that is neither disposed nor reachable may be collected (its nodes then stay
/// allocated, like any native memory that was never freed).
/// </summary>
/// <remarks>
/// This is what keeps node migration safe against the array going away between reading <c>node-&gt;array</c>
/// and taking the array's lock (a flaw of the kernel series): resolution yields a strong reference, which pins
/// the managed object, and a disposed array is recognised under its own lock.
/// </remarks>
internal static class XArrayRegistry
{
    private static long s_nextId = 2;   // 0 = no array, 1 = retired (XaNode.NoArray / RetiredArray)
    private static readonly ConcurrentDictionary<long, WeakReference<XArray>> s_arrays = new();

    public static long Register(XArray xa)
    {
        long id = Interlocked.Increment(ref s_nextId);
        s_arrays[id] = new WeakReference<XArray>(xa);
        return id;
    }

    public static void Unregister(long id) => s_arrays.TryRemove(id, out _);

    /// <summary>The arrays still registered and alive.</summary>
    public static List<XArray> Snapshot()
    {
        var list = new List<XArray>();
        foreach (var (_, w) in s_arrays)
            if (w.TryGetTarget(out var xa)) list.Add(xa);
        return list;
    }

    public static XArray? Resolve(long id) =>
        id > XaNode.RetiredArray && s_arrays.TryGetValue(id, out var w) && w.TryGetTarget(out var xa) ? xa : null;
}
