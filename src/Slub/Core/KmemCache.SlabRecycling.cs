namespace Slub;

// Slab descriptors are recycled: a discarded slab's descriptor serves the cache's next new slab.
public sealed partial class KmemCache
{
    /// <summary>
    /// How many discarded descriptors a cache keeps. Enough to cover the churn between a defrag step that
    /// empties slabs and the allocations that need new ones; a shrink that frees thousands keeps only these.
    /// </summary>
    private const int SpareSlabCapacity = 256;

    private readonly Slab?[] _spareSlabs = new Slab?[SpareSlabCapacity];
    private int _spareSlabCount;
    private int _spareSlabLock;

    /// <summary>
    /// A descriptor for a new slab: a recycled one when there is one, else a new object.
    /// </summary>
    /// <remarks>
    /// <para><b>Why.</b> Descriptors are managed objects. A process allocating and freeing slabs steadily (a
    /// background defragmenter emptying slabs while clients fill new ones) would otherwise feed the GC a
    /// stream of survivors, and the collections that follow pause every thread — also threads inside
    /// <see cref="Alloc"/>. Recycled, the steady state allocates no managed memory.</para>
    /// <para><b>Stale references.</b> A few scans hold descriptors they did not lock (snapshots of the page
    /// owners: the full-slab scan of a NUMA move, validate, adopting full slabs). A recycled descriptor may
    /// meanwhile describe another page block of this cache — possibly on another node. Those scans decide
    /// only under the slab lock and from the descriptor's current state and node, so a recycled descriptor
    /// is judged as the slab it now is. The descriptor is re-initialised here under its slab lock, frozen,
    /// so a scan holding that lock never sees a half-built slab; it is published to the page owners only
    /// after that (by the page allocator, in <see cref="NewSlab"/>).</para>
    /// </remarks>
    private Slab RentSlabDescriptor()
    {
        Slab? slab = null;
        if (Volatile.Read(ref _spareSlabCount) > 0)
        {
            SpinLockWord.Enter(ref _spareSlabLock);
            if (_spareSlabCount > 0)
            {
                slab = _spareSlabs[--_spareSlabCount];
                _spareSlabs[_spareSlabCount] = null;
            }
            SpinLockWord.Exit(ref _spareSlabLock);
        }
        if (slab is null) return new Slab(this) { Frozen = true };
        SpinLockWord.Enter(ref slab.LockWord);
        slab.Frozen = true;
        slab.Freelist = 0;
        slab.Inuse = 0;
        slab.List = SlabList.None;
        slab.Prev = slab.Next = null;
        slab.Bucket = 0;
        SpinLockWord.Exit(ref slab.LockWord);
        return slab;
    }

    /// <summary>Keeps the descriptor of a slab whose pages went back to the page allocator, if there is room.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]   // per slab a shrink discards: see DefragNode
    private void RecycleSlabDescriptor(Slab slab)
    {
        if (Volatile.Read(ref _spareSlabCount) >= SpareSlabCapacity) return;
        SpinLockWord.Enter(ref _spareSlabLock);
        if (_spareSlabCount < SpareSlabCapacity) _spareSlabs[_spareSlabCount++] = slab;
        SpinLockWord.Exit(ref _spareSlabLock);
    }
}
