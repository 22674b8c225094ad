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
/// merges with free buddies as far up as possible.
/// <para><b>Giving memory back to the OS.</b> Either at once (each free discards its frames with <c>madvise</c>
/// before the block joins the free lists) or later, like the kernel's free page reporting
/// (<c>mm/page_reporting.c</c>): a free only marks its frames <i>unreported</i> (free but still resident), and
/// <see cref="ReportBatch"/> later takes unreported free blocks off the free lists, discards them in coalesced
/// runs without the zone lock, and puts them back. Allocating an unreported frame just clears its mark: it is
/// reused without a page fault, with its old contents (as the kernel's page allocator, it does not zero).
/// While a batch is out, its blocks still count as free (buddyinfo, <see cref="CanAllocate"/>); an allocation
/// that finds nothing else waits for the batch to come back.</para>
/// Thread-safety: all public members are safe to call from any thread; one lock per arena (the zone lock).
/// </remarks>
public sealed class BuddyArena : IDisposable
{
    /// <summary>Largest order (4 MiB blocks), as the kernel's MAX_PAGE_ORDER.</summary>
    public const int MaxOrder = 10;

    private const byte Allocated = 0xFF;   // _freeOrder value of a frame that is not the head of a free block
    private const byte Reporting = 0xFE;   // _freeOrder value of the head of a free block a report batch has taken out

    /// <summary>Most frames one report batch takes off the free lists (4 MiB, one <c>madvise</c> pass of well under a
    /// millisecond): an allocation that needs one of them waits for at most that.</summary>
    internal const int ReportBatchFrames = 1024;

    private readonly Lock _lock = new();
    private readonly int _frames;
    private readonly byte[] _freeOrder;    // order of the free block starting here, or Allocated
    private readonly int[] _next, _prev;   // free-list links (frame numbers, -1 = none)
    private readonly int[] _head = new int[MaxOrder + 1];
    private readonly long[] _freeCount = new long[MaxOrder + 1];
    private readonly PageBlock?[] _owner;  // per-frame descriptor of the allocated block covering it
    private long _freeFrames;
    private bool _disposed;
    private readonly bool _deferDiscard;
    private readonly ulong[] _unreported;   // bit per frame: free, not yet given back to the OS (deferred mode only)
    private long _unreportedFrames, _reportedFrames;
    private readonly long[] _reportingCount = new long[MaxOrder + 1];   // blocks per order out in a report batch
    private readonly List<(int Pfn, int Order)> _batch = new();         // the batch out now (zone lock)
    private readonly List<(int From, int To)> _runs = new();            // its unreported frame runs, to discard
    private int _batchOut;                                               // 1 while a batch is off the free lists
    private int _reportCursor;                                           // word of _unreported where the next batch starts looking

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

    /// <summary>Free frames still resident: freed since the last report (always 0 when frees discard at once).</summary>
    public long UnreportedFrames { get { lock (_lock) return _unreportedFrames; } }

    /// <summary>Frames given back to the OS by report batches so far.</summary>
    public long ReportedFrames => Volatile.Read(ref _reportedFrames);

    /// <summary>Reserves the arena's address range (bound to <paramref name="node"/> when <paramref name="bindToNode"/>)
    /// and puts all of it on the free lists. <paramref name="deferDiscard"/> false: every free gives its memory back
    /// to the OS at once; true: frees leave it resident and <see cref="ReportBatch"/> gives it back later.</summary>
    internal BuddyArena(int node, long bytes, bool bindToNode, bool deferDiscard = false)
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
        _deferDiscard = deferDiscard;
        _unreported = new ulong[(_frames + 63) >> 6];
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
        var spin = new SpinWait();
        while (true)
        {
            lock (_lock)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                int k = order;
                while (k <= MaxOrder && _head[k] < 0) k++;
                if (k <= MaxOrder) { TakeBlock(k, order, owner); return true; }
                // Blocks out in a report batch still count as free, and merged back they may fit: wait for them.
                if (_batchOut == 0) return false;
            }
            spin.SpinOnce();   // a batch is out for one madvise of at most ReportBatchFrames frames
        }
    }

    /// <summary>Takes the first free block of order <paramref name="k"/> and splits it down to <paramref name="order"/>. Zone lock held.</summary>
    private void TakeBlock(int k, int order, PageBlock owner)
    {
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
        if (_unreportedFrames != 0) _unreportedFrames -= SetMarks(pfn, 1 << order, false);   // reused resident, as is
    }

    /// <summary>Frees a block allocated by <see cref="TryAllocate"/>, merging it with free buddies; gives its memory back to the OS now, or marks it for a later report (see remarks).</summary>
    public void Free(PageBlock block)
    {
        if (_deferDiscard)
        {
            lock (_lock) FreeUnreportedLocked(block);
            return;
        }
        // Give the memory back while the block is still ours: once it is on a free list another thread may
        // allocate and fill it, and a late MADV_DONTNEED would wipe that thread's data.
        if (IsOwnedBy(block))
            OsMemory.Discard(block.Address, (nuint)block.Bytes);
        lock (_lock) FreeLocked(block);
    }

    /// <summary>Frees a block and marks its frames as still resident (deferred mode). Zone lock held.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]   // a batch free calls it per block: see FreeInFrameOrderLocked
    private void FreeUnreportedLocked(PageBlock block)
    {
        FreeLocked(block);
        int n = 1 << block.Order;
        _unreportedFrames += n - SetMarks(block.Pfn, n, true);
    }

    /// <summary>Sets or clears the unreported marks of a range; returns how many were set before. Zone lock held.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]   // a batch free calls it per block: see FreeInFrameOrderLocked
    private int SetMarks(int pfn, int count, bool set)
    {
        int before = 0;
        for (int f = pfn, end = pfn + count; f < end;)
        {
            int bit = f & 63, n = Math.Min(64 - bit, end - f);
            ulong mask = (n == 64 ? ulong.MaxValue : (1UL << n) - 1) << bit;
            ref ulong word = ref _unreported[f >> 6];
            before += BitOperations.PopCount(word & mask);
            word = set ? word | mask : word & ~mask;
            f += n;
        }
        return before;
    }

    /// <summary>Clears the unreported marks of a range, adding each run of marked frames to <see cref="_runs"/>; returns how many were marked. Zone lock held.</summary>
    private int TakeUnreportedRuns(int pfn, int count)
    {
        int taken = 0, run = -1, end = pfn + count;
        for (int f = pfn; f < end; f++)
        {
            bool marked = (_unreported[f >> 6] & (1UL << f)) != 0;
            if (marked && run < 0) run = f;
            else if (!marked && run >= 0) { _runs.Add((run, f)); taken += f - run; run = -1; }
        }
        if (run >= 0) { _runs.Add((run, end)); taken += end - run; }
        SetMarks(pfn, count, false);
        return taken;
    }

    /// <summary>Returns a block to the free lists, merging buddies. Zone lock held; the memory was already discarded.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]   // a batch free calls it per block: see FreeInFrameOrderLocked
    private void FreeLocked(PageBlock block)
    {
        int pfn = block.Pfn, order = block.Order;
        if ((uint)pfn >= (uint)_frames || !ReferenceEquals(_owner[pfn], block))
            throw new InvalidOperationException($"node {Node}: free of a block that is not allocated here (pfn {pfn}, order {order})");
        _owner.AsSpan(pfn, 1 << order).Clear();
        _freeFrames += 1L << order;
        MergeAndPush(pfn, order);
    }

    /// <summary>Puts a free block on the free lists, merged with its free buddies. Zone lock held.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]   // a batch free calls it per block: see FreeInFrameOrderLocked
    private void MergeAndPush(int pfn, int order)
    {
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
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]   // one call frees thousands of blocks, and a method called a few times would run its loops unoptimized (tier 0) for a long while
    public void FreeMany(Span<PageBlock> blocks)
    {
        if (blocks.IsEmpty) return;
        if (_deferDiscard)
        {
            lock (_lock) FreeInFrameOrderLocked(blocks, unreported: true);
            return;
        }
        // Mark the frames of the blocks still ours, then madvise each run of marked frames.
        if (MarkFrames(blocks, wholeBlocks: true, out int baseWord, out int words, out _) is { } rented)
        {
            var marks = rented.AsSpan(0, words);
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
        lock (_lock) FreeInFrameOrderLocked(blocks, unreported: false);
    }

    /// <summary>
    /// Frees <paramref name="blocks"/> in frame order, whatever order they come in: in a random order every
    /// free's owner entries, buddy state and free-list links are a cache miss of their own, while in frame
    /// order neighbours share those lines and merge one after another (perf, shrink of 1M objects at 30% use,
    /// 12,500 slabs discarded, then handed over by fill: with the summed node counters of
    /// <c>KmemCache.DiscardSlabs</c>, discarding fell from 9.5% to 6.8% of the shrink). A batch that is already
    /// in frame order (a shrink now discards by address) is freed as given in one pass; from the first block
    /// out of order on, the rest goes through a bitmap of first frames. A small batch is freed as given. A
    /// block not allocated here throws, as <see cref="FreeLocked"/> does, after the others are freed. Zone lock held.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]   // one call frees thousands of blocks, and a method called a few times would run its loops unoptimized (tier 0) for a long while
    private void FreeInFrameOrderLocked(Span<PageBlock> blocks, bool unreported)
    {
        if (blocks.Length < 64)
        {
            foreach (var block in blocks) FreeOneLocked(block, unreported);
            return;
        }
        // Blocks already in frame order (a defrag run discards its sources by address) are freed as given,
        // up to the first one out of order.
        PageBlock? stranger = null;
        int prev = -1, next = 0;
        for (; next < blocks.Length; next++)
        {
            var b = blocks[next];
            if (!IsOwnedBy(b)) { stranger ??= b; continue; }
            if (b.Pfn < prev) break;
            prev = b.Pfn;
            FreeOneLocked(b, unreported);
        }
        // The rest: one bit per block's first frame, read out in frame order.
        if (MarkFrames(blocks[next..], wholeBlocks: false, out int baseWord, out int words, out var notOurs) is { } heads)
        {
            for (int w = 0; w < words; w++)
                for (ulong m = heads[w]; m != 0; m &= m - 1)
                    FreeOneLocked(_owner[((baseWord + w) << 6) + BitOperations.TrailingZeroCount(m)]!, unreported);
            ArrayPool<ulong>.Shared.Return(heads);
        }
        stranger ??= notOurs;
        if (stranger is not null) FreeLocked(stranger);   // throws the error a single free of it would
    }

    /// <summary>
    /// A bitmap over the frames the blocks of <paramref name="blocks"/> allocated here span, with each one's frames
    /// marked (<paramref name="wholeBlocks"/>) or only its first: linear in the range, no sort. The array is pooled
    /// (the background defragmenter frees through here beside allocating threads; return it) and its first
    /// <paramref name="words"/> words are the map; bit 0 of word 0 is frame <paramref name="baseWord"/> × 64. Null
    /// when no block is allocated here. <paramref name="notOurs"/> is the first block that is not.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]   // once per batch, loops over thousands of blocks: see FreeMany
    private ulong[]? MarkFrames(ReadOnlySpan<PageBlock> blocks, bool wholeBlocks, out int baseWord, out int words, out PageBlock? notOurs)
    {
        notOurs = null;
        baseWord = words = 0;
        int lo = int.MaxValue, hi = 0;
        foreach (var b in blocks)
        {
            if (IsOwnedBy(b)) { lo = Math.Min(lo, b.Pfn); hi = Math.Max(hi, b.Pfn + (1 << b.Order)); }
            else notOurs ??= b;
        }
        if (lo >= hi) return null;
        baseWord = lo >> 6;
        words = ((hi + 63) >> 6) - baseWord;
        ulong[] marks = ArrayPool<ulong>.Shared.Rent(words);
        marks.AsSpan(0, words).Clear();
        foreach (var b in blocks)
        {
            if (!IsOwnedBy(b)) continue;
            int end = wholeBlocks ? b.Pfn + (1 << b.Order) : b.Pfn + 1;
            for (int f = b.Pfn; f < end; f++) marks[(f >> 6) - baseWord] |= 1UL << f;
        }
        return marks;
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]   // a batch free calls it per block: see FreeInFrameOrderLocked
    private void FreeOneLocked(PageBlock block, bool unreported)
    {
        if (unreported) FreeUnreportedLocked(block);
        else FreeLocked(block);
    }

    /// <summary>
    /// Gives one batch of unreported free memory back to the OS (the kernel's <c>page_reporting_process_zone</c>):
    /// under the zone lock, takes free blocks holding unreported frames off the free lists (at most
    /// <see cref="ReportBatchFrames"/> frames); without it, discards them in runs of adjacent blocks; under it
    /// again, puts them back (merging) with their marks cleared. Returns the frames given back; 0 when nothing
    /// was left to report. Only one batch is out at a time: a second caller waits for it, then takes the next.
    /// </summary>
    public int ReportBatch()
    {
        var spin = new SpinWait();
        while (true)
        {
            while (Volatile.Read(ref _batchOut) != 0) spin.SpinOnce();   // never under the lock: the batch's owner needs it back
            if (TakeBatch(out int result)) break;
            if (result == 0) return 0;
        }
        return DiscardBatch();
    }

    /// <summary>
    /// Under the zone lock: takes the next batch out of the free lists. False with <paramref name="result"/> 0 when
    /// there is nothing to report, false with 1 when another caller took a batch first (wait and retry).
    /// </summary>
    private bool TakeBatch(out int result)
    {
        result = 0;
        lock (_lock)
        {
            if (_batchOut != 0) { result = 1; return false; }
            if (_disposed || _unreportedFrames == 0) return false;
            int words = _unreported.Length, taken = 0;
            for (int i = 0; i < words && taken < ReportBatchFrames; i++)
            {
                int w = (_reportCursor + i) % words;
                while (_unreported[w] != 0 && taken < ReportBatchFrames)
                {
                    int f = (w << 6) + BitOperations.TrailingZeroCount(_unreported[w]);
                    var (head, order) = FreeBlockCovering(f);
                    if (head < 0) throw new InvalidOperationException($"node {Node}: frame {f} is marked unreported but is not free");
                    RemoveFree(head, order);
                    _freeOrder[head] = Reporting;
                    _reportingCount[order]++;
                    _batch.Add((head, order));
                    taken += 1 << order;
                    // Only its unreported frames need discarding (a block may have merged with clean buddies).
                    // Clear the marks now (the block is out; nobody else sees it) so the scan moves on.
                    _unreportedFrames -= TakeUnreportedRuns(head, 1 << order);
                }
                if (taken >= ReportBatchFrames) { _reportCursor = w; break; }
            }
            if (_batch.Count == 0) return false;
            _batchOut = 1;
            return true;
        }
    }

    /// <summary>Discards the batch taken out by <see cref="TakeBatch"/> without the lock, then puts it back. Returns the frames discarded.</summary>
    private int DiscardBatch()
    {
        int given = 0;
        try
        {
            _runs.Sort();
            for (int i = 0; i < _runs.Count;)
            {
                var (from, to) = _runs[i];
                int j = i + 1;
                while (j < _runs.Count && _runs[j].From == to) to = _runs[j++].To;   // adjacent runs: one call
                DiscardFrames(from, to);
                i = j;
            }
            foreach (var (from, to) in _runs) given += to - from;
        }
        finally
        {
            lock (_lock)
            {
                foreach (var (head, order) in _batch)
                {
                    _reportingCount[order]--;
                    _freeOrder[head] = Allocated;
                    MergeAndPush(head, order);   // its frames never stopped counting as free (_freeFrames)
                }
                _batch.Clear();
                _runs.Clear();
                _batchOut = 0;
            }
        }
        Interlocked.Add(ref _reportedFrames, given);
        return given;
    }

    /// <summary>
    /// Gives the free memory that is unreported when it is called back to the OS, batch by batch; returns the frames
    /// given back. Bounded by that snapshot: frames freed meanwhile wait for the next call, so a steady stream of
    /// frees on other threads cannot keep it running (nor keep discarding frames those threads are about to reuse).
    /// </summary>
    public long ReportAll()
    {
        long budget = UnreportedFrames, total = 0;
        int n;
        while (total < budget && (n = ReportBatch()) > 0) total += n;
        return total;
    }

    /// <summary>The free block (head, order) on the free lists that covers frame <paramref name="f"/>, or (-1, -1). Zone lock held.</summary>
    private (int Head, int Order) FreeBlockCovering(int f)
    {
        for (int k = 0; k <= MaxOrder; k++)
        {
            int head = f & ~((1 << k) - 1);
            if (_freeOrder[head] == k) return (head, k);
        }
        return (-1, -1);
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
        lock (_lock)
        {
            var counts = (long[])_freeCount.Clone();
            for (int k = 0; k <= MaxOrder; k++) counts[k] += _reportingCount[k];   // out in a report batch, still free
            return counts;
        }
    }

    /// <summary>True if an order-<paramref name="order"/> block could be allocated right now.</summary>
    public bool CanAllocate(int order)
    {
        lock (_lock)
        {
            for (int k = order; k <= MaxOrder; k++)
                if (_freeCount[k] + _reportingCount[k] > 0) return true;
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
            foreach (var (head, order) in _batch)
            {
                for (int f = head; f < head + (1 << order); f++)
                {
                    if (seen[f] || _owner[f] is not null) throw new InvalidOperationException($"frame {f} out for reporting and free or owned");
                    seen[f] = true;
                }
                free += 1L << order;
            }
            if (free != _freeFrames) throw new InvalidOperationException($"free frames {_freeFrames} but lists hold {free}");
            long unreported = 0;
            for (int f = 0; f < _frames; f++)
            {
                if ((_unreported[f >> 6] & (1UL << f)) == 0) continue;
                unreported++;
                if (_owner[f] is not null) throw new InvalidOperationException($"frame {f} is allocated but marked unreported");
            }
            if (unreported != _unreportedFrames) throw new InvalidOperationException($"unreported frames {_unreportedFrames} but {unreported} marked");
            for (int f = 0; f < _frames; f++)
                if (!seen[f] && _owner[f] is null) throw new InvalidOperationException($"frame {f} neither free nor owned");
        }
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]   // a batch free calls it per block: see FreeInFrameOrderLocked
    private void PushFree(int pfn, int order)
    {
        _freeOrder[pfn] = (byte)order;
        _prev[pfn] = -1;
        _next[pfn] = _head[order];
        if (_head[order] >= 0) _prev[_head[order]] = pfn;
        _head[order] = pfn;
        _freeCount[order]++;
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]   // a batch free calls it per block: see FreeInFrameOrderLocked
    private void RemoveFree(int pfn, int order)
    {
        int n = _next[pfn], p = _prev[pfn];
        if (p >= 0) _next[p] = n; else _head[order] = n;
        if (n >= 0) _prev[n] = p;
        _freeOrder[pfn] = Allocated;
        _freeCount[order]--;
    }

    /// <summary>Waits for a report batch still out, then gives the whole address range back to the OS: every block in it becomes invalid. Safe to call more than once.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
        }
        // A report batch may be discarding frames without the lock: unmapping under it could let the range be
        // mapped again by someone else before its madvise runs.
        var spin = new SpinWait();
        while (Volatile.Read(ref _batchOut) != 0) spin.SpinOnce();
        OsMemory.Release(Base, (nuint)Bytes);
    }

    internal static int OrderForBytes(long bytes)
    {
        long frames = (bytes + OsMemory.PageSize - 1) >> OsMemory.PageShift;
        return frames <= 1 ? 0 : BitOperations.Log2((ulong)(frames - 1)) + 1;
    }
}
