namespace Slub.Benchmarks.Allocators;

/// <summary>Our allocator: a dedicated 64-byte <see cref="KmemCache"/> (Alloc/Free and the real AllocBulk/FreeBulk).</summary>
public readonly struct KmemCacheAllocator : IBenchAllocator<nint>
{
    private readonly KmemCache _cache;

    public KmemCacheAllocator(KmemCache cache) => _cache = cache;

    /// <summary>
    /// A private allocator (1 GiB of address space, only touched pages are resident) with slub_debug forced
    /// off, so a SLUB_DEBUG variable in the environment cannot silently put the cache on the debug path.
    /// </summary>
    public static SlabAllocator CreateAllocator(int? cpus = null, TimeSpan? freePageReportingDelay = null) =>
        new(new SlabOptions
        {
            BytesPerNode = 1L << 30, SlubDebug = "-", Cpus = cpus,
            FreePageReportingDelay = freePageReportingDelay ?? new SlabOptions().FreePageReportingDelay,
        });

    /// <summary>NoMerge keeps the cache from being aliased into kmalloc-64, so its statistics are its own.</summary>
    public static KmemCacheAllocator Create(SlabAllocator allocator, string name = "bench-64") =>
        new(allocator.CreateCache(name, ObjectSize.Bytes, flags: SlabFlags.NoMerge));

    public KmemCache Cache => _cache;

    public nint Alloc() => _cache.Alloc();

    public void Free(nint obj) => _cache.Free(obj);

    public void AllocBulk(Span<nint> objects)
    {
        if (_cache.AllocBulk(objects) != objects.Length) throw new OutOfMemoryException("bench-64: bulk allocation came up short");
    }

    public void FreeBulk(ReadOnlySpan<nint> objects) => _cache.FreeBulk(objects);
}
