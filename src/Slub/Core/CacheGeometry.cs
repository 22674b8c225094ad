using System.Numerics;
using Slub.Pages;

namespace Slub;

/// <summary>
/// Where things are inside a slab of a cache, computed as SLUB's <c>calculate_sizes</c> and
/// <c>calculate_order</c> do. Pure arithmetic, so the trace replayer can size caches it never creates.
/// </summary>
/// <remarks>
/// Slot layout (offsets from the object pointer):
/// <code>
/// [-RedLeftPad, 0)        left red zone            (RedZone)
/// [0, ObjectSize)         the object
/// [ObjectSize, Inuse)     right red zone / padding (RedZone: at least one word)
/// [FreePointerOffset, +8) free pointer, when it must not live inside the object (ctor, RCU, poison;
///                         unless the cache named a word of the object for it, KmemCacheArgs.FreePointerOffset)
/// [TrackOffset, +2*Track) alloc and free tracks    (StoreUser)
/// [PaddingOffset, ...)    padding up to the next slot (RedZone: at least one word), Size aligned to Align
/// </code>
/// Without a constructor, RCU or poisoning the free pointer sits in the middle of the free object, as
/// current SLUB does, so an overflow off the end of one object does not hit the next one's link.
/// <para>An immutable value (pure arithmetic): every member is thread-safe.</para>
/// </remarks>
public readonly record struct CacheGeometry
{
    /// <summary>Bytes of a word: the free pointer's size, and the unit that slot sizes and alignments are rounded up to.</summary>
    public const int WordSize = 8;
    /// <summary>Bytes of one alloc/free track record.</summary>
    public const int TrackSize = 24;
    /// <summary>Upper bound of objects in one slab (MAX_OBJS_PER_PAGE).</summary>
    public const int MaxObjsPerPage = 32767;

    /// <summary>Requested object size in bytes (the kernel's <c>s->object_size</c>, sysfs <c>object_size</c>).</summary>
    public int ObjectSize { get; init; }
    /// <summary>Bytes per slot (the kernel's <c>s->size</c>, sysfs <c>slab_size</c>).</summary>
    public int Size { get; init; }
    /// <summary>Slot alignment in bytes, at least <see cref="WordSize"/> (<c>calculate_alignment</c>, sysfs <c>align</c>).</summary>
    public int Align { get; init; }
    /// <summary>Offset of the free pointer from the object start.</summary>
    public int FreePointerOffset { get; init; }
    /// <summary>End of the object plus right red zone: where metadata begins (the kernel's <c>s->inuse</c>).</summary>
    public int Inuse { get; init; }
    /// <summary>Bytes of left red zone before each object (the kernel's <c>red_left_pad</c>); 0 without <see cref="SlabFlags.RedZone"/>.</summary>
    public int RedLeftPad { get; init; }
    /// <summary>Offset of the alloc track from the object start, or -1.</summary>
    public int TrackOffset { get; init; }
    /// <summary>Offset of the padding after all metadata, up to the next slot's left red zone (checked for <see cref="SlabFlags.Poison"/>'s fill, the kernel's <c>check_pad_bytes</c>).</summary>
    public int PaddingOffset { get; init; }
    /// <summary>Slab order: each slab is 2^Order pages (sysfs <c>order</c>).</summary>
    public int Order { get; init; }
    /// <summary>Objects in a slab of <see cref="Order"/> (sysfs <c>objs_per_slab</c>).</summary>
    public int ObjectsPerSlab { get; init; }
    /// <summary>Smallest order that holds one object (the fallback when the preferred order cannot be had).</summary>
    public int MinOrderFallback { get; init; }
    /// <summary>True if the free pointer has a word of its own past <see cref="Inuse"/> instead of living inside the free object.</summary>
    public bool FreePointerOutside => FreePointerOffset >= Inuse;
    /// <summary>Bytes of one slab: the page size shifted by <see cref="Order"/>.</summary>
    public int SlabBytes => OsMemory.PageSize << Order;

    /// <summary>Computes the geometry of a cache.</summary>
    /// <param name="objectSize">Requested object size in bytes (1..2 MiB).</param>
    /// <param name="align">Requested alignment (0 or a power of two).</param>
    /// <param name="flags">Creation flags, debug flags included.</param>
    /// <param name="hasCtor">Whether the cache has a constructor.</param>
    /// <param name="cpus">CPU count, for the minimum-objects rule.</param>
    /// <param name="minObjects">slub_min_objects (0 = derived).</param>
    /// <param name="minOrder">slub_min_order.</param>
    /// <param name="maxOrder">slub_max_order.</param>
    /// <param name="freePointerOffset">A word inside the object for the free pointer of a constructor or RCU cache (see <see cref="KmemCacheArgs.FreePointerOffset"/>), or -1.</param>
    public static CacheGeometry Compute(int objectSize, int align, SlabFlags flags, bool hasCtor, int cpus,
        int minObjects = 0, int minOrder = 0, int maxOrder = 3, int freePointerOffset = -1)
    {
        if (objectSize < 1 || objectSize > (OsMemory.PageSize << BuddyArena.MaxOrder) / 2)
            throw new ArgumentOutOfRangeException(nameof(objectSize), objectSize, "object size must be 1..2 MiB");
        if (align < 0 || (align & (align - 1)) != 0 || align > OsMemory.PageSize << BuddyArena.MaxOrder)
            throw new ArgumentOutOfRangeException(nameof(align), align,
                $"alignment must be 0 or a power of two up to the largest page block ({OsMemory.PageSize << BuddyArena.MaxOrder} bytes)");

        int alignment = CalculateAlignment(flags, align, objectSize);
        int size = AlignUp(objectSize, WordSize);
        bool redZone = (flags & SlabFlags.RedZone) != 0;
        if (redZone && size == objectSize) size += WordSize;   // room for a right red zone
        int inuse = size;

        if (freePointerOffset >= 0 && (freePointerOffset % WordSize != 0 || freePointerOffset > objectSize - WordSize))
            throw new ArgumentOutOfRangeException(nameof(freePointerOffset), freePointerOffset,
                $"free pointer offset must be word-aligned and leave the word inside the {objectSize}-byte object");
        int fpOffset;
        if (freePointerOffset >= 0 && (hasCtor || (flags & SlabFlags.TypesafeByRcu) != 0) && (flags & SlabFlags.Poison) == 0)
        {
            fpOffset = freePointerOffset;   // a word of the object the cache's user gave up while it is free
        }
        else if ((flags & (SlabFlags.TypesafeByRcu | SlabFlags.Poison)) != 0 || hasCtor
            || (redZone && objectSize < WordSize))
        {
            fpOffset = size;        // the object must stay intact while free
            size += WordSize;
        }
        else
        {
            fpOffset = AlignDown(objectSize / 2, WordSize);
        }

        int trackOffset = -1;
        if ((flags & SlabFlags.StoreUser) != 0)
        {
            trackOffset = size;
            size += 2 * TrackSize;
        }

        int paddingOffset = size;
        int redLeftPad = 0;
        if (redZone)
        {
            size += WordSize;   // an underflow of the next object lands here, not in our tracks or free pointer
            redLeftPad = AlignUp(WordSize, alignment);
            size += redLeftPad;
        }
        size = AlignUp(size, alignment);

        int order = CalculateOrder(size, cpus, minObjects, minOrder, maxOrder);
        return new CacheGeometry
        {
            ObjectSize = objectSize,
            Size = size,
            Align = alignment,
            FreePointerOffset = fpOffset,
            Inuse = inuse,
            RedLeftPad = redLeftPad,
            TrackOffset = trackOffset,
            PaddingOffset = paddingOffset,
            Order = order,
            ObjectsPerSlab = OrderObjects(order, size),
            MinOrderFallback = GetOrder(size),
        };
    }

    /// <summary>
    /// This geometry with the slab order fixed to <paramref name="order"/> instead of the one
    /// <c>calculate_order</c> chose, e.g. the order a real kernel used (read from /sys/kernel/slab).
    /// The slot layout is unchanged; objects per slab follow from the new order.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">No object fits in a slab of that order, too many would, or the order exceeds the page allocator's.</exception>
    public CacheGeometry WithOrder(int order)
    {
        if (order < 0 || order > BuddyArena.MaxOrder)
            throw new ArgumentOutOfRangeException(nameof(order), order, $"slab order must be 0..{BuddyArena.MaxOrder}");
        int objects = OrderObjects(order, Size);
        if (objects < 1)
            throw new ArgumentOutOfRangeException(nameof(order), order, $"a slab of order {order} cannot hold one {Size}-byte slot");
        if (objects > MaxObjsPerPage)
            throw new ArgumentOutOfRangeException(nameof(order), order, $"a slab of order {order} would hold {objects} objects, more than {MaxObjsPerPage}");
        return this with { Order = order, ObjectsPerSlab = objects };
    }

    /// <summary>Objects that fit in a slab of <paramref name="order"/>.</summary>
    public static int OrderObjects(int order, int size) => (OsMemory.PageSize << order) / size;

    /// <summary>SLUB's <c>calculate_alignment</c>: hardware cache-line alignment halves while objects fit twice.</summary>
    public static int CalculateAlignment(SlabFlags flags, int align, int size)
    {
        const int cacheLine = 64;
        if ((flags & SlabFlags.HwCacheAlign) != 0)
        {
            int ralign = cacheLine;
            while (size <= ralign / 2) ralign /= 2;
            align = Math.Max(align, ralign);
        }
        return AlignUp(Math.Max(align, WordSize), WordSize);
    }

    /// <summary>SLUB's <c>calculate_order</c>: the smallest order within limits whose leftover is at most 1/16, 1/8, 1/4, 1/2 of the slab. A <paramref name="minOrder"/> above <paramref name="maxOrder"/> raises the maximum.</summary>
    public static int CalculateOrder(int size, int cpus, int minObjects, int minOrder, int maxOrder)
    {
        maxOrder = Math.Max(maxOrder, minOrder);   // as the kernel's slub_min_order= raises slub_max_order
        if (minObjects == 0)
            minObjects = 4 * (Fls(Math.Max(cpus, 1)) + 1);
        int maxObjects = Math.Max(OrderObjects(maxOrder, size), 1);
        minObjects = Math.Min(minObjects, maxObjects);
        int lowest = Math.Max(minOrder, GetOrder((long)minObjects * size));
        if (OrderObjects(lowest, size) > MaxObjsPerPage)
            return GetOrder((long)size * MaxObjsPerPage) - 1;
        for (int fraction = 16; fraction > 1; fraction /= 2)
        {
            int order = lowest;
            for (; order <= maxOrder; order++)
            {
                int slab = OsMemory.PageSize << order;
                if (slab % size <= slab / fraction) break;
            }
            if (order <= maxOrder) return order;
        }
        int fallback = GetOrder(size);
        if (fallback <= BuddyArena.MaxOrder) return fallback;
        throw new ArgumentOutOfRangeException(nameof(size), size, "object too large for any slab order");
    }

    /// <summary>The kernel's <c>get_order</c>: smallest order whose block holds <paramref name="bytes"/>.</summary>
    public static int GetOrder(long bytes)
    {
        long pages = (bytes - 1) >> OsMemory.PageShift;
        return pages <= 0 ? 0 : BitOperations.Log2((ulong)pages) + 1;
    }

    /// <summary>The kernel's <c>fls</c>: 1-based index of the highest set bit, 0 for 0.</summary>
    public static int Fls(int x) => x == 0 ? 0 : BitOperations.Log2((uint)x) + 1;

    internal static int AlignUp(int x, int a) => (x + a - 1) & ~(a - 1);
    internal static int AlignDown(int x, int a) => x & ~(a - 1);
}
