using System.Diagnostics.CodeAnalysis;

namespace Slub;

// What a cache does when its allocator is disposed: its memory is about to be unmapped, so every fast path
// is emptied and every later operation lands on a slow path that throws ObjectDisposedException.
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

    [DoesNotReturn]
    private void ThrowDisposed() => SlabAllocator.ThrowDisposed(Name);
}
