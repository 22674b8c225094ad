namespace Slub;

/// <summary>A free (or other operation on an object) named a pointer that is not a live object of the cache.</summary>
public class InvalidFreeException : InvalidOperationException
{
    /// <summary>The cache the operation was made on.</summary>
    public string CacheName { get; }
    /// <summary>The offending pointer.</summary>
    public nint Object { get; }

    /// <summary>Creates the exception.</summary>
    /// <param name="cacheName">The cache the operation was made on.</param>
    /// <param name="obj">The offending pointer.</param>
    /// <param name="message">The error message, saying what is wrong with the pointer.</param>
    public InvalidFreeException(string cacheName, nint obj, string message) : base(message)
    {
        CacheName = cacheName;
        Object = obj;
    }
}

/// <summary>slub_debug found damaged memory: an overwritten red zone or poison, a corrupt free pointer, a double free. The message reads like the kernel's report.</summary>
public sealed class SlabCorruptionException : InvalidFreeException
{
    /// <summary>What was wrong, e.g. "Right Redzone overwritten" or "Object already free".</summary>
    public string Problem { get; }

    /// <summary>Creates the exception.</summary>
    /// <param name="cacheName">The cache the damaged object belongs to.</param>
    /// <param name="obj">The object where the damage was found.</param>
    /// <param name="problem">What was wrong, in a few words (<see cref="Problem"/>).</param>
    /// <param name="report">The full kernel-style report, used as the message.</param>
    public SlabCorruptionException(string cacheName, nint obj, string problem, string report)
        : base(cacheName, obj, report) => Problem = problem;
}

/// <summary>A cache could not get memory for a new slab (the arena is exhausted or fault injection said no).</summary>
public sealed class SlabOutOfMemoryException : OutOfMemoryException
{
    /// <summary>The cache that needed a slab (<c>kmalloc_large</c> for a kmalloc above the kmalloc caches).</summary>
    public string CacheName { get; }
    /// <summary>The NUMA node asked for, or -1 when any node would do.</summary>
    public int Node { get; }

    /// <summary>Creates the exception.</summary>
    /// <param name="cacheName">The cache that needed a slab.</param>
    /// <param name="node">The NUMA node asked for, or -1 for any.</param>
    /// <param name="message">The error message.</param>
    public SlabOutOfMemoryException(string cacheName, int node, string message) : base(message)
    {
        CacheName = cacheName;
        Node = node;
    }
}

/// <summary>The cache still has objects, so it cannot be destroyed (the kernel's "Objects remaining ... on __kmem_cache_shutdown()").</summary>
public sealed class CacheBusyException : InvalidOperationException
{
    /// <summary>The cache that could not be destroyed.</summary>
    public string CacheName { get; }
    /// <summary>Objects still in use; 0 when none were but slabs remained.</summary>
    public long Objects { get; }

    /// <summary>Creates the exception with the kernel's message.</summary>
    /// <param name="cacheName">The cache that could not be destroyed.</param>
    /// <param name="objects">Objects still in use.</param>
    public CacheBusyException(string cacheName, long objects)
        : base($"kmem_cache_destroy {cacheName}: Slab cache still has objects ({objects} remaining)")
    {
        CacheName = cacheName;
        Objects = objects;
    }
}
