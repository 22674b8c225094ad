using System.Diagnostics.CodeAnalysis;

namespace Slub;

// What a cache does when its allocator is disposed (its memory is about to be unmapped, so every fast path
// is emptied and every later operation lands on a slow path that throws ObjectDisposedException) or it is destroyed.
public sealed partial class KmemCache
{
    /// <summary>
    /// Called by <see cref="SlabAllocator.Dispose"/> after it marked itself disposed, before it releases the
    /// memory: drains the thread magazines (which then stay bypassed) and the CPU slabs, so no fast path can
    /// hand out or take back an object of the unmapped memory.
    /// </summary>
    internal void RetireFastPaths()
    {
        FlushMagazines();
        foreach (var c in _cpus) FlushCpu(c);
    }

    /// <summary>Throws for an allocation from a destroyed cache (its slabs would leak: it is on no list) or any use after the allocator's disposal.</summary>
    [DoesNotReturn]
    private void ThrowDisposed()
    {
        if (_destroyed && !_allocator.IsDisposed)
            throw new ObjectDisposedException(Name, $"{Name}: the cache has been destroyed (kmem_cache_destroy); allocate from a new one");
        SlabAllocator.ThrowDisposed(Name);
    }
}
