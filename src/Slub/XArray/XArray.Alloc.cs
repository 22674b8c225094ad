namespace Slub.XArray;

// ID allocation for arrays created with XaFlags.Alloc / Alloc1 (xa_alloc, xa_alloc_cyclic).
public sealed unsafe partial class XArray
{
    /// <summary>
    /// <c>xa_alloc</c>: stores <paramref name="entry"/> (null: a reservation) at the lowest free index in
    /// <paramref name="limit"/> and returns that index in <paramref name="id"/> (0 on failure).
    /// <see cref="XaError.Busy"/> when no index in the limit is free (or Min &gt; Max);
    /// <see cref="XaError.Invalid"/> on a non-allocating array or an internal entry.
    /// Thread-safe: takes the array's lock.
    /// </summary>
    public XaError TryAlloc(XaEntry entry, XaLimit limit, out uint id)
    {
        id = 0;
        if (XaCodec.IsAdvanced(entry.Raw) || !_trackFree) return XaError.Invalid;
        lock (_lock)
        {
            CheckWritable();
            return AllocLocked(entry, limit.Min, limit.Max, out id);
        }
    }

    /// <summary><see cref="TryAlloc"/>, throwing <see cref="XArrayException"/> on any error. Thread-safe: takes the array's lock.</summary>
    public uint Alloc(XaEntry entry, XaLimit limit)
    {
        var error = TryAlloc(entry, limit, out uint id);
        if (error != XaError.None) XArrayException.ThrowAlloc(error, nameof(Alloc), limit);
        return id;
    }

    /// <summary><see cref="Alloc(XaEntry, XaLimit)"/> over [0, uint.MaxValue]. Thread-safe: takes the array's lock.</summary>
    public uint Alloc(XaEntry entry) => Alloc(entry, XaLimit.Limit32);

    private XaError AllocLocked(XaEntry entry, uint min, uint max, out uint id)
    {
        id = 0;
        if (_zeroBusy && min == 0) min = 1;
        if (!FindFree(min, max, out ulong index)) return XaError.Busy;
        ulong e = entry.Raw == 0 ? XaCodec.ZeroEntry : entry.Raw;
        var err = StoreCore(index, 0, e, out _);
        if (err == XaError.None) id = (uint)index;
        return err;
    }

    /// <summary>
    /// <c>xa_alloc_cyclic</c>: like <see cref="TryAlloc"/>, but searches from <paramref name="next"/> (at least
    /// limit.Min) to limit.Max first and then wraps to limit.Min. On success <paramref name="next"/> becomes
    /// id + 1, and <paramref name="wrapped"/> tells that this allocation wrapped — including the first
    /// allocation after <paramref name="next"/> itself overflowed past <see cref="uint.MaxValue"/> (the kernel's
    /// return value 1). As in the kernel, the search from limit.Min also follows a <see cref="XaError.NoMemory"/>
    /// above <paramref name="next"/>.
    /// Thread-safe: takes the array's lock. <paramref name="next"/> is the caller's: share it between threads only under the caller's own lock.
    /// </summary>
    public XaError TryAllocCyclic(XaEntry entry, XaLimit limit, ref uint next, out uint id, out bool wrapped)
    {
        id = 0;
        wrapped = false;
        if (XaCodec.IsAdvanced(entry.Raw) || !_trackFree) return XaError.Invalid;
        lock (_lock)
        {
            CheckWritable();
            uint from = Math.Max(limit.Min, next);
            var err = AllocLocked(entry, from, limit.Max, out id);
            if (err == XaError.None && _allocWrapped)
            {
                _allocWrapped = false;
                wrapped = true;
            }
            if (err != XaError.None && from > limit.Min)
            {
                // Nothing free between next and the top of the limit, or no node for the index found there
                // (the kernel retries after any error): start over at the bottom.
                err = AllocLocked(entry, limit.Min, limit.Max, out id);
                if (err == XaError.None) wrapped = true;
            }
            if (err != XaError.None) return err;
            next = unchecked(id + 1);
            if (next == 0) _allocWrapped = true;
            return XaError.None;
        }
    }

    /// <summary><see cref="TryAllocCyclic"/>, throwing <see cref="XArrayException"/> on any error. Returns the id. Thread-safe: takes the array's lock. <paramref name="next"/> as in <see cref="TryAllocCyclic"/>.</summary>
    public uint AllocCyclic(XaEntry entry, XaLimit limit, ref uint next, out bool wrapped)
    {
        var error = TryAllocCyclic(entry, limit, ref next, out uint id, out wrapped);
        if (error != XaError.None) XArrayException.ThrowAlloc(error, nameof(AllocCyclic), limit);
        return id;
    }
}
