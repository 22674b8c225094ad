namespace Slub;

/// <summary>Constructor for typed caches: put a free object into its constructed state.</summary>
public delegate void ObjectConstructor<T>(ref T obj) where T : unmanaged;

/// <summary>
/// A typed view of a <see cref="KmemCache"/> whose objects are <typeparamref name="T"/>. Same thread-safety
/// as the raw cache; no managed allocation per operation.
/// </summary>
public sealed unsafe class KmemCache<T> where T : unmanaged
{
    /// <summary>The underlying raw cache.</summary>
    public KmemCache Cache { get; }

    internal KmemCache(KmemCache cache) => Cache = cache;

    /// <summary>Allocates one <typeparamref name="T"/>; throws <see cref="SlabOutOfMemoryException"/> when memory runs out. Thread-safe.</summary>
    public T* Alloc() => (T*)Cache.Alloc();

    /// <summary>Allocates on a node (-1: any). Thread-safe.</summary>
    public T* AllocNode(int node) => (T*)Cache.AllocNode(node);

    /// <summary>Allocates and returns a reference (for code that avoids pointers). Thread-safe.</summary>
    public ref T AllocRef() => ref *(T*)Cache.Alloc();

    /// <summary>Frees an object of this cache. Thread-safe.</summary>
    public void Free(T* obj) => Cache.Free((nint)obj);

    /// <summary>Frees the object <paramref name="obj"/> refers to. Thread-safe.</summary>
    public void Free(ref T obj)
    {
        fixed (T* p = &obj) Cache.Free((nint)p);
    }
}
