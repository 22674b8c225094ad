using System.Buffers;
using System.Numerics;

namespace Slub.Pages;

/// <summary>
/// One NUMA node's memory: a reserved range of 4 KiB frames managed by a binary buddy allocator with
/// orders 0..<see cref="MaxOrder"/> (the kernel's zone free lists).
/// </summary>
/// <remarks>
/// Free blocks are kept on one doubly linked list per order, threaded through per-frame arrays (no
/// allocation per operation). A block of order k at frame p has its buddy at p ^ (1 &lt;&lt; k); freeing
/// merges with free buddies as far up as possible. Freed memory is handed back to the OS at once.
/// Thread-safety: all public members are safe to call from any thread; one lock per arena (the zone lock).
/// </remarks>
public sealed class BuddyArena : IDisposable
{
    /// <summary>Largest order (4 MiB blocks), as the kernel's MAX_PAGE_ORDER.</summary>
    public const int MaxOrder = 10;

    private const byte Allocated = 0xFF;   // _freeOrder value of a frame that is not the head of a free block

    private readonly Lock _lock = new();
    private readonly int _frames;
    private readonly byte[] _freeOrder;    // order of the free block starting here, or Allocated
    private readonly int[] _next, _prev;   // free-list links (frame numbers, -1 = none)
    private readonly int[] _head = new int[MaxOrder + 1];
    private readonly long[] _freeCount = new long[MaxOrder + 1];
    private readonly PageBlock?[] _owner;  // per-frame descriptor of the allocated block covering it
    private long _freeFrames;
    private bool _disposed;

    /// <summary>The node this arena belongs to.</summary>
    public int Node { get; }

    /// <summary>First address of the arena.</summary>
    public nint Base { get; }

    /// <summary>Size of the arena in bytes.</summary>
    public long Bytes => (long)_frames << OsMemory.PageShift;

    /// <summary>Number of frames currently free.</summary>
    public long FreeFrames { get { lock (_lock) return _freeFrames; } }

    /// <summary>Total number of frames.</summary>
    public int TotalFrames => _frames;

    internal BuddyArena(int node, long bytes, bool bindToNode)
    {
        long block = (long)OsMemory.PageSize << MaxOrder;
        if (bytes < block || bytes % block != 0)
            throw new ArgumentOutOfRangeException(nameof(bytes), bytes, $"arena size must be a positive multiple of {block} bytes");
        Node = node;
        _frames = checked((int)(bytes >> OsMemory.PageShift));
        Base = OsMemory.Reserve((nuint)bytes, (nuint)block);
        if (bindToNode) OsMemory.BindToNode(Base, (nuint)bytes, node);
        _freeOrder = new byte[_frames];
        _next = new int[_frames];
        _prev = new int[_frames];
        _owner = new PageBlock?[_frames];
        Array.Fill(_freeOrder, Allocated);
        Array.Fill(_head, -1);
        for (int pfn = 0; pfn < _frames; pfn += 1 << MaxOrder)
            PushFree(pfn, MaxOrder);
        _freeFrames = _frames;
    }

    /// <summary>True if <paramref name="address"/> lies inside this arena.</summary>
    public bool Contains(nint address) => (nuint)(address - Base) < (nuint)Bytes;

    /// <summary>
    /// Allocates a block of 2^<paramref name="order"/> frames and records <paramref name="owner"/> as its
    /// descriptor. Returns false when no block of that order can be formed (the arena is exhausted or too
    /// fragmented); nothing changes then.
    /// </summary>
    public bool TryAllocate(int order, PageBlock owner)
    {
        if ((uint)order > MaxOrder) throw new ArgumentOutOfRangeException(nameof(order), order, $"order must be 0..{MaxOrder}");
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            int k = order;
            while (k <= MaxOrder && _head[k] < 0) k++;
            if (k > MaxOrder) return false;
            int pfn = _head[k];
            RemoveFree(pfn, k);
            while (k > order)   // split: keep the lower half, free the upper half
            {
                k--;
                PushFree(pfn + (1 << k), k);
            }
            _freeFrames -= 1L << order;
            owner.Address = Base + ((nint)pfn << OsMemory.PageShift);
            owner.Order = order;
            owner.Node = Node;
            owner.Pfn = pfn;
            _owner.AsSpan(pfn, 1 << order).Fill(owner);
            return true;
        }
    }

    /// <summary>Frees a block allocated by <see cref="TryAllocate"/>, merging it with free buddies, and gives its memory back to the OS.</summary>
    public void Free(PageBlock block)
    {
        // Give the memory back while the block is still ours: once it is on a free list another thread may
        // allocate and fill it, and a late MADV_DONTNEED would wipe that thread's data.
        if (IsOwnedBy(block))
            OsMemory.Discard(block.Address, (nuint)block.Bytes);
        lock (_lock) FreeLocked(block);
    }

    /// <summary>Returns a block to the free lists, merging buddies. Zone lock held; the memory was already discarded.</summary>
    private void FreeLocked(PageBlock block)
    {
        int pfn = block.Pfn, order = block.Order;
        if ((uint)pfn >= (uint)_frames || !ReferenceEquals(_owner[pfn], block))
            throw new InvalidOperationException($"node {Node}: free of a block that is not allocated here (pfn {pfn}, order {order})");
        _owner.AsSpan(pfn, 1 << order).Clear();
        _freeFrames += 1L << order;
        while (order < MaxOrder)
        {
            int buddy = pfn ^ (1 << order);
            if (_freeOrder[buddy] != order) break;
            RemoveFree(buddy, order);
            pfn = Math.Min(pfn, buddy);
            order++;
        }
        PushFree(pfn, order);
    }

    /// <summary>
    /// Frees several blocks allocated here, as <see cref="Free"/> would one by one, but hands the memory back
    /// with one <c>madvise</c> per run of adjacent blocks and takes the zone lock once: a defragmentation
    /// pass frees thousands of slabs, many next to each other, and each call costs a system call and a
    /// TLB flush. Throws, like Free, on a block not allocated here (after freeing the others before it).
    /// </summary>
    public void FreeMany(Span<PageBlock> blocks)
    {
        if (blocks.IsEmpty) return;
        // Mark the frames of the blocks still ours in a bitmap over the range they span, then madvise each
        // run of marked frames: linear in the range, no sort.
        int lo = int.MaxValue, hi = 0;
        foreach (var b in blocks)
            if (IsOwnedBy(b)) { lo = Math.Min(lo, b.Pfn); hi = Math.Max(hi, b.Pfn + (1 << b.Order)); }
        if (lo < hi)
        {
            int baseWord = lo >> 6, words = ((hi + 63) >> 6) - baseWord;
            // Pooled, not allocated: the background defragmenter frees through here beside allocating threads.
            ulong[] rented = ArrayPool<ulong>.Shared.Rent(words);
            var marks = rented.AsSpan(0, words);
            marks.Clear();
            foreach (var b in blocks)
            {
                if (!IsOwnedBy(b)) continue;
                for (int f = b.Pfn, end = b.Pfn + (1 << b.Order); f < end; f++) marks[(f >> 6) - baseWord] |= 1UL << f;
            }
            int run = -1;
            for (int w = 0; w < marks.Length; w++)
            {
                ulong m = marks[w];
                for (int bit = 0; bit < 64; )
                {
                    // Skip to the next change of state within the word.
                    ulong rest = run < 0 ? m >> bit : ~m >> bit;
                    int skip = rest == 0 ? 64 - bit : BitOperations.TrailingZeroCount(rest);
                    bit += skip;
                    if (bit >= 64) break;
                    int frame = ((baseWord + w) << 6) + bit;
                    if (run < 0) run = frame;
                    else { DiscardFrames(run, frame); run = -1; }
                }
            }
            if (run >= 0) DiscardFrames(run, (baseWord + marks.Length) << 6);
            ArrayPool<ulong>.Shared.Return(rented);
        }
        lock (_lock)
        {
            foreach (var block in blocks) FreeLocked(block);
        }
    }

    private void DiscardFrames(int from, int to) =>
        OsMemory.Discard(Base + ((nint)from << OsMemory.PageShift), (nuint)((long)(to - from) << OsMemory.PageShift));

    private bool IsOwnedBy(PageBlock block) =>
        (uint)block.Pfn < (uint)_frames && ReferenceEquals(Volatile.Read(ref _owner[block.Pfn]), block);

    /// <summary>The descriptor of the allocated block covering <paramref name="address"/>, or null.</summary>
    public PageBlock? OwnerOf(nint address)
    {
        nuint offset = (nuint)(address - Base);
        if (offset >= (nuint)Bytes) return null;
        return Volatile.Read(ref _owner[(int)(offset >> OsMemory.PageShift)]);
    }

    /// <summary>A snapshot of the descriptors of all allocated blocks, in address order.</summary>
    public List<PageBlock> AllocatedBlocks()
    {
        var list = new List<PageBlock>();
        lock (_lock)
        {
            for (int pfn = 0; pfn < _frames;)
            {
                var o = _owner[pfn];
                if (o is null) { pfn++; continue; }
                list.Add(o);
                pfn += 1 << o.Order;
            }
        }
        return list;
    }

    /// <summary>Free blocks per order, as one row of /proc/buddyinfo.</summary>
    public long[] FreeBlocksPerOrder()
    {
        lock (_lock) return (long[])_freeCount.Clone();
    }

    /// <summary>True if an order-<paramref name="order"/> block could be allocated right now.</summary>
    public bool CanAllocate(int order)
    {
        lock (_lock)
        {
            for (int k = order; k <= MaxOrder; k++)
                if (_freeCount[k] > 0) return true;
            return false;
        }
    }

    /// <summary>Checks the free lists against the frame map (for tests): no overlap, counts consistent.</summary>
    internal void CheckConsistency()
    {
        lock (_lock)
        {
            long free = 0;
            var seen = new bool[_frames];
            for (int k = 0; k <= MaxOrder; k++)
            {
                long n = 0;
                for (int p = _head[k]; p >= 0; p = _next[p])
                {
                    if (_freeOrder[p] != k) throw new InvalidOperationException($"frame {p} on order-{k} list has order {_freeOrder[p]}");
                    if ((p & ((1 << k) - 1)) != 0) throw new InvalidOperationException($"order-{k} block at {p} misaligned");
                    for (int f = p; f < p + (1 << k); f++)
                    {
                        if (seen[f] || _owner[f] is not null) throw new InvalidOperationException($"frame {f} free twice or owned");
                        seen[f] = true;
                    }
                    n++;
                }
                if (n != _freeCount[k]) throw new InvalidOperationException($"order {k}: count {_freeCount[k]} but list has {n}");
                free += n << k;
            }
            if (free != _freeFrames) throw new InvalidOperationException($"free frames {_freeFrames} but lists hold {free}");
            for (int f = 0; f < _frames; f++)
                if (!seen[f] && _owner[f] is null) throw new InvalidOperationException($"frame {f} neither free nor owned");
        }
    }

    private void PushFree(int pfn, int order)
    {
        _freeOrder[pfn] = (byte)order;
        _prev[pfn] = -1;
        _next[pfn] = _head[order];
        if (_head[order] >= 0) _prev[_head[order]] = pfn;
        _head[order] = pfn;
        _freeCount[order]++;
    }

    private void RemoveFree(int pfn, int order)
    {
        int n = _next[pfn], p = _prev[pfn];
        if (p >= 0) _next[p] = n; else _head[order] = n;
        if (n >= 0) _prev[n] = p;
        _freeOrder[pfn] = Allocated;
        _freeCount[order]--;
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
        }
        OsMemory.Release(Base, (nuint)Bytes);
    }

    internal static int OrderForBytes(long bytes)
    {
        long frames = (bytes + OsMemory.PageSize - 1) >> OsMemory.PageShift;
        return frames <= 1 ? 0 : BitOperations.Log2((ulong)(frames - 1)) + 1;
    }
}
