namespace Slub;

/// <summary>A free (or other operation on an object) named a pointer that is not a live object of the cache.</summary>
public class InvalidFreeException : InvalidOperationException
{
    /// <summary>The cache the operation was made on.</summary>
    public string CacheName { get; }
    /// <summary>The offending pointer.</summary>
    public nint Object { get; }

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

    public SlabCorruptionException(string cacheName, nint obj, string problem, string report)
        : base(cacheName, obj, report) => Problem = problem;
}

/// <summary>A cache could not get memory for a new slab (the arena is exhausted or fault injection said no).</summary>
public sealed class SlabOutOfMemoryException : OutOfMemoryException
{
    public string CacheName { get; }
    public int Node { get; }

    public SlabOutOfMemoryException(string cacheName, int node, string message) : base(message)
    {
        CacheName = cacheName;
        Node = node;
    }
}

/// <summary>The cache still has objects, so it cannot be destroyed (the kernel's "Objects remaining ... on __kmem_cache_shutdown()").</summary>
public sealed class CacheBusyException : InvalidOperationException
{
    public string CacheName { get; }
    public long Objects { get; }

    public CacheBusyException(string cacheName, long objects)
        : base($"kmem_cache_destroy {cacheName}: Slab cache still has objects ({objects} remaining)")
    {
        CacheName = cacheName;
        Objects = objects;
    }
}
