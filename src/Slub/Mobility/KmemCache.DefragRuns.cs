namespace Slub;

// Defrag runs started by users of the cache (Shrink, DefragmentNode, MoveNode, MoveToNode, Balance) against
// SlabAllocator.DestroyCache. Runs of the allocator's defragmenters (DefragSlabs, the background defragmenter)
// hold SlabMutex, as DestroyCache does, and never overlap it; these hold nothing, so DestroyCache waits for them.
//
// Handshake (Dekker style; both sides use full fences, so the store-load reordering cannot hide either write):
//   run:     Interlocked.Increment(_defragRuns)  [full fence]  then read _destroying;
//            set → Interlocked.Decrement, wait for the destroy's decision, retry (or throw if it destroyed the cache).
//   destroy: Interlocked.Exchange(_destroying, 1) [full fence]  then wait until _defragRuns == 0.
// Either the run sees the flag (and backs off before touching the cache) or the destroy sees the run's count
// (and waits until the run has released its targets and returned its old objects). Allocation and free are
// untouched: they check only _destroyed, on their slow paths, as before.
public sealed partial class KmemCache
{
    private int _defragRuns;   // user-started defrag runs of this cache in progress (any thread)
    private int _destroying;   // 1 while DestroyCache waits for them and decides

    /// <summary>A user-started defrag run of this cache: leaving it lets a waiting <see cref="SlabAllocator.DestroyCache"/> go on.</summary>
    internal readonly struct DefragRun(KmemCache cache) : IDisposable
    {
        public void Dispose() => Interlocked.Decrement(ref cache._defragRuns);
    }

    /// <summary>
    /// Enters a user-started defrag run (dispose the result when the run is over: targets released, old objects
    /// returned, sources put back). While a destroy of this cache is deciding, waits for its decision (spin,
    /// then sleep). A run nested in a migrate callback of a run of this cache on this thread does not wait: the
    /// destroy is already waiting for the outer run.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The cache is destroyed (or its allocator disposed).</exception>
    internal DefragRun EnterDefragRun()
    {
        var spin = new SpinWait();
        while (true)
        {
            Interlocked.Increment(ref _defragRuns);   // full fence before reading _destroying
            if (Volatile.Read(ref _destroying) == 0 || MigrationContext.IsRunning(this))
            {
                if (!Volatile.Read(ref _destroyed)) return new DefragRun(this);
                Interlocked.Decrement(ref _defragRuns);
                ThrowDisposed();
            }
            Interlocked.Decrement(ref _defragRuns);
            while (Volatile.Read(ref _destroying) != 0) spin.SpinOnce(sleep1Threshold: 30);
        }
    }

    /// <summary>
    /// Called by <see cref="SlabAllocator.DestroyCache"/> under <c>SlabMutex</c>: stops new user-started defrag
    /// runs of this cache and waits (spin, then sleep) until those in flight have finished. End with
    /// <see cref="EndDestroy"/>, whatever the outcome.
    /// </summary>
    /// <exception cref="InvalidOperationException">Called from a migrate callback of a run of this cache (it would wait for itself).</exception>
    internal void BeginDestroy()
    {
        if (MigrationContext.IsRunning(this))
            throw new InvalidOperationException($"kmem_cache_destroy({Name}): called from a migrate callback of a defrag run of this cache, which would wait for itself");
        Interlocked.Exchange(ref _destroying, 1);   // full fence before reading _defragRuns
        var spin = new SpinWait();
        while (Volatile.Read(ref _defragRuns) != 0) spin.SpinOnce(sleep1Threshold: 30);
    }

    /// <summary>Lets runs waiting in <see cref="EnterDefragRun"/> go on: they find the cache destroyed if <see cref="MarkDestroyed"/> came first, else proceed.</summary>
    internal void EndDestroy() => Volatile.Write(ref _destroying, 0);
}
