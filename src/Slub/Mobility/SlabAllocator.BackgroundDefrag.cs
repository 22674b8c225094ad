namespace Slub;

// Opt-in background defragmentation of the allocator's movable caches.
public sealed partial class SlabAllocator
{
    private BackgroundDefragmenter? _backgroundDefrag;

    /// <summary>
    /// Starts the background defragmenter: one thread that watches every movable cache and defragments the
    /// fragmented ones in bounded steps within a CPU budget (see <see cref="BackgroundDefragmenter"/>; the
    /// knobs are each cache's <see cref="KmemCache.ActiveDefrag"/> settings, also the
    /// <c>active_defrag_*</c> attributes). Dispose the result to stop it. Thread-safe.
    /// </summary>
    /// <exception cref="InvalidOperationException">One is already running for this allocator.</exception>
    public BackgroundDefragmenter StartBackgroundDefrag()
    {
        lock (SlabMutex)
        {
            ThrowIfDisposed("StartBackgroundDefrag");
            if (_backgroundDefrag is not null)
                throw new InvalidOperationException("a background defragmenter is already running for this allocator");
            return _backgroundDefrag = new BackgroundDefragmenter(this, startThread: true);
        }
    }

    /// <summary>The running background defragmenter, or null.</summary>
    public BackgroundDefragmenter? BackgroundDefrag
    {
        get { lock (SlabMutex) return _backgroundDefrag; }
    }

    internal void BackgroundDefragStopped(BackgroundDefragmenter d)
    {
        lock (SlabMutex)
            if (ReferenceEquals(_backgroundDefrag, d)) _backgroundDefrag = null;
    }

    /// <summary>The cache list itself; the caller holds <see cref="SlabMutex"/>.</summary>
    internal List<KmemCache> CachesLocked => _caches;
}
