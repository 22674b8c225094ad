namespace Slub.Benchmarks.Allocators;

/// <summary>
/// The single-thread workloads, written once and compiled per allocator (see <see cref="IBenchAllocator{THandle}"/>).
/// The objects are not touched: this measures the allocator, as the kernel's slab_bulk_test01 does.
/// </summary>
public static class AllocScenarios
{
    /// <summary><paramref name="count"/> alloc+free pairs of the same object: the hottest path there is.</summary>
    public static void Pairs<TAlloc, THandle>(ref TAlloc allocator, int count)
        where TAlloc : struct, IBenchAllocator<THandle>
    {
        for (int i = 0; i < count; i++) allocator.Free(allocator.Alloc());
    }

    /// <summary>Fills <paramref name="objects"/>, then frees them in allocation order: refills and list moves, not just one slot.</summary>
    public static void Batch<TAlloc, THandle>(ref TAlloc allocator, THandle[] objects)
        where TAlloc : struct, IBenchAllocator<THandle>
    {
        for (int i = 0; i < objects.Length; i++) objects[i] = allocator.Alloc();
        for (int i = 0; i < objects.Length; i++) allocator.Free(objects[i]);
    }

    /// <summary>Bulk alloc then bulk free of <paramref name="bulkSize"/> objects, repeated until <paramref name="total"/> objects went through.</summary>
    public static void Bulk<TAlloc, THandle>(ref TAlloc allocator, THandle[] buffer, int bulkSize, int total)
        where TAlloc : struct, IBenchAllocator<THandle>
    {
        var span = buffer.AsSpan(0, bulkSize);
        for (int done = 0; done < total; done += bulkSize)
        {
            allocator.AllocBulk(span);
            allocator.FreeBulk(span);
        }
    }
}
