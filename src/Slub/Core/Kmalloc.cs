using Slub.Pages;

namespace Slub;

/// <summary>
/// kmalloc: general-purpose allocation through size-class caches <c>kmalloc-8</c> … <c>kmalloc-8k</c>, and
/// whole page blocks above 8 KiB (<c>kmalloc_large</c>). Thread-safe.
/// </summary>
public sealed class Kmalloc
{
    /// <summary>Largest size served by a slab cache.</summary>
    public const int MaxCacheSize = 8192;

    private static readonly int[] s_sizes = [8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192];
    private readonly SlabAllocator _allocator;
    private readonly KmemCache[] _caches;
    private readonly byte[] _smallIndex = new byte[193];   // size → cache index for sizes ≤ 192 (the kernel's size_index)

    internal Kmalloc(SlabAllocator allocator)
    {
        _allocator = allocator;
        _caches = new KmemCache[s_sizes.Length];
        for (int i = 0; i < s_sizes.Length; i++)
        {
            int size = s_sizes[i];
            string name = size >= 1024 ? $"kmalloc-{size / 1024}k" : $"kmalloc-{size}";
            // Unmergeable, as in current kernels: kmalloc caches keep their own directories in the tree.
            _caches[i] = allocator.CreateCache(name, size, 0, SlabFlags.NoMerge);
        }
        for (int size = 1, i = 0; size <= 192; size++)
        {
            while (s_sizes[i] < size) i++;
            _smallIndex[size] = (byte)i;
        }
    }

    /// <summary>The kmalloc caches, smallest first.</summary>
    public IReadOnlyList<KmemCache> Caches => _caches;

    /// <summary>The cache that serves <paramref name="size"/> bytes, or null above <see cref="MaxCacheSize"/>. Thread-safe.</summary>
    public KmemCache? CacheFor(int size)
    {
        if (size <= 0) throw new ArgumentOutOfRangeException(nameof(size), size, "kmalloc size must be positive");
        if (size <= 192) return _caches[_smallIndex[size]];
        if (size > MaxCacheSize) return null;
        int i = 7;
        while (s_sizes[i] < size) i++;
        return _caches[i];
    }

    /// <summary>Allocates <paramref name="size"/> bytes; throws <see cref="SlabOutOfMemoryException"/> when memory runs out,
    /// <see cref="ArgumentOutOfRangeException"/> for a size of 0 or above the largest page block. Thread-safe.</summary>
    public nint Alloc(int size)
    {
        var cache = CacheFor(size);
        if (cache is not null) return cache.Alloc();
        int largest = OsMemory.PageSize << BuddyArena.MaxOrder;
        if (size > largest)
            throw new ArgumentOutOfRangeException(nameof(size), size, $"kmalloc: {size} bytes is more than the largest page block ({largest} bytes)");
        var block = new LargeAllocation();
        if (!_allocator.Pages.TryAllocate(BuddyArena.OrderForBytes(size), -1, block))
            throw new SlabOutOfMemoryException("kmalloc_large", -1, $"kmalloc: cannot allocate {size} bytes");
        return block.Address;
    }

    /// <summary>Frees memory from <see cref="Alloc"/>. Throws <see cref="InvalidFreeException"/> for anything else. Thread-safe.</summary>
    public void Free(nint ptr)
    {
        if (ptr == 0) return;   // kfree(NULL) is a no-op
        switch (_allocator.Pages.OwnerOf(ptr))
        {
            case Slab slab: slab.Cache.Free(ptr); break;
            case LargeAllocation large when large.Address == ptr: _allocator.Pages.Free(large); break;
            case LargeAllocation large:
                throw new InvalidFreeException("kmalloc", ptr, $"kfree: invalid pointer 0x{ptr:x}: inside the large kmalloc block at 0x{large.Address:x}, not its start");
            case null:
                throw new InvalidFreeException("kmalloc", ptr, $"kfree: invalid pointer 0x{ptr:x}: not in an allocated block (never allocated, or already freed)");
            default: throw new InvalidFreeException("kmalloc", ptr, $"kfree: invalid pointer 0x{ptr:x}: inside a page block that is not a slab or a kmalloc block");
        }
    }

    /// <summary>The usable size of an allocation (<c>ksize</c>). Thread-safe.</summary>
    public int UsableSize(nint ptr) => _allocator.Pages.OwnerOf(ptr) switch
    {
        Slab slab => slab.Cache.ObjectSize,
        LargeAllocation large => large.Bytes,
        _ => throw new InvalidFreeException("kmalloc", ptr, $"ksize: invalid pointer 0x{ptr:x}"),
    };

    private sealed class LargeAllocation : PageBlock { }
}
