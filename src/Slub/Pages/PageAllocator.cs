namespace Slub.Pages;

/// <summary>
/// The page allocator: one <see cref="BuddyArena"/> per NUMA node, allocation with node preference and
/// fallback, buddyinfo, and free page reporting (giving freed memory back to the OS after a delay).
/// Thread-safety: every member may be called from any thread.
/// </summary>
/// <remarks>
/// <b>Free page reporting.</b> With a positive <see cref="ReportingDelay"/>, frees leave their memory resident
/// and the first free after a report arms a one-shot timer; when it fires, a thread-pool thread gives every
/// unreported free block back to the OS (<see cref="ReportFreePages"/>), in batches, as the kernel reports free
/// pages to a hypervisor two seconds after they were freed. Slab churn then reuses resident frames without a
/// page fault, and the cost of <c>madvise</c> leaves the freeing thread — a defragmentation pass frees thousands of
/// slabs. <see cref="TimeSpan.Zero"/> gives memory back inside every free; <see cref="Timeout.InfiniteTimeSpan"/>
/// only when <see cref="ReportFreePages"/> is called.
/// </remarks>
public sealed class PageAllocator : IDisposable
{
    private readonly BuddyArena[] _arenas;
    private readonly Timer? _reportTimer;
    private int _reportArmed, _disposed;

    /// <summary>The node layout this allocator serves.</summary>
    public NumaTopology Topology { get; }

    /// <summary>The per-node arenas, indexed by node id.</summary>
    public IReadOnlyList<BuddyArena> Arenas => _arenas;

    /// <summary>Optional fault injection: return true to make an allocation of that order on that node fail.</summary>
    public Func<int, int, bool>? FailAllocation { get; set; }

    /// <summary>
    /// The owner-aware fault hook the slab layer installs (<see cref="FaultInjection.Page"/>): asked once per
    /// attempt, with the block's future owner, the order and the node. True makes that attempt fail.
    /// </summary>
    internal Func<PageBlock, int, int, bool>? FaultHook { get; set; }

    /// <summary>How long freed memory stays resident before it is given back to the OS (see remarks).</summary>
    public TimeSpan ReportingDelay { get; }

    /// <summary>Free memory still resident, in bytes (0 when <see cref="ReportingDelay"/> is zero).</summary>
    public long UnreportedBytes => _arenas.Sum(a => a.UnreportedFrames) << OsMemory.PageShift;

    /// <summary>Bytes given back to the OS by free page reporting so far.</summary>
    public long ReportedBytes => _arenas.Sum(a => a.ReportedFrames) << OsMemory.PageShift;

    /// <summary>One arena of <paramref name="bytesPerNode"/> per node of <paramref name="topology"/>; every free gives its memory back to the OS at once (zero <see cref="ReportingDelay"/>).</summary>
    public PageAllocator(NumaTopology topology, long bytesPerNode) : this(topology, bytesPerNode, TimeSpan.Zero) { }

    /// <summary>One arena of <paramref name="bytesPerNode"/> per node of <paramref name="topology"/>; freed memory goes back
    /// to the OS after <paramref name="reportingDelay"/> (zero, positive, or <see cref="Timeout.InfiniteTimeSpan"/>; see <see cref="ReportingDelay"/>).</summary>
    public PageAllocator(NumaTopology topology, long bytesPerNode, TimeSpan reportingDelay)
    {
        if (reportingDelay < TimeSpan.Zero && reportingDelay != Timeout.InfiniteTimeSpan)
            throw new ArgumentOutOfRangeException(nameof(reportingDelay), reportingDelay, "the reporting delay must be zero, positive or infinite");
        Topology = topology;
        ReportingDelay = reportingDelay;
        bool defer = reportingDelay != TimeSpan.Zero;
        _arenas = new BuddyArena[topology.NodeCount];
        try
        {
            for (int n = 0; n < _arenas.Length; n++)
                _arenas[n] = new BuddyArena(n, bytesPerNode, topology.IsReal, defer);
            if (defer && reportingDelay != Timeout.InfiniteTimeSpan)
                _reportTimer = new Timer(static s => ((PageAllocator)s!).ReportFromTimer(), this, Timeout.Infinite, Timeout.Infinite);
        }
        catch
        {
            foreach (var a in _arenas) a?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Allocates 2^<paramref name="order"/> frames for <paramref name="owner"/>, preferring
    /// <paramref name="node"/> (-1: no preference) and falling back to other nodes unless
    /// <paramref name="exactNode"/>. Returns false when no node can satisfy it.
    /// </summary>
    public bool TryAllocate(int order, int node, PageBlock owner, bool exactNode = false)
    {
        if (node >= _arenas.Length) throw new ArgumentOutOfRangeException(nameof(node), node, $"no node {node} (nodes: {_arenas.Length})");
        int first = node < 0 ? 0 : node;
        for (int i = 0; i < _arenas.Length; i++)
        {
            int n = (first + i) % _arenas.Length;
            if (FailAllocation?.Invoke(order, n) == true || FaultHook?.Invoke(owner, order, n) == true)
            {
                if (exactNode && node >= 0) return false;
                continue;   // this node's attempt failed; fall back to the next one, as a real shortage would
            }
            if (_arenas[n].TryAllocate(order, owner)) return true;
            if (exactNode && node >= 0) return false;
        }
        return false;
    }

    /// <summary>Frees a block to the arena it came from.</summary>
    public void Free(PageBlock block)
    {
        _arenas[block.Node].Free(block);
        ArmReport();
    }

    /// <summary>
    /// Gives the free memory that is still resident back to the OS now, batch by batch (one <c>madvise</c> per run
    /// of adjacent free blocks): what was unreported when it was called (<see cref="BuddyArena.ReportAll"/>).
    /// Returns the bytes given back. Runs on the calling thread; safe beside allocation and free on others (what a
    /// batch has taken out counts as free, and allocations that need it wait for it).
    /// </summary>
    public long ReportFreePages()
    {
        long frames = 0;
        foreach (var a in _arenas) frames += a.ReportAll();
        return frames << OsMemory.PageShift;
    }

    /// <summary>Arms the one-shot report timer unless it is armed already (cheap: one read when it is).</summary>
    private void ArmReport()
    {
        if (_reportTimer is null || Volatile.Read(ref _reportArmed) != 0) return;
        if (Interlocked.Exchange(ref _reportArmed, 1) != 0) return;
        try { _reportTimer.Change(ReportingDelay, Timeout.InfiniteTimeSpan); }
        catch (ObjectDisposedException) { }   // the allocator is being disposed
    }

    private void ReportFromTimer()
    {
        // Disarm first: frees that land during the report arm the next one.
        Volatile.Write(ref _reportArmed, 0);
        if (Volatile.Read(ref _disposed) != 0) return;
        ReportFreePages();
    }

    /// <summary>Frees several blocks (any nodes): one <c>madvise</c> per run of adjacent blocks (<see cref="BuddyArena.FreeMany"/>). May reorder <paramref name="blocks"/>.</summary>
    public void FreeMany(Span<PageBlock> blocks)
    {
        if (_arenas.Length == 1) { _arenas[0].FreeMany(blocks); ArmReport(); return; }
        blocks.Sort(static (a, b) => a.Node.CompareTo(b.Node));
        for (int i = 0; i < blocks.Length;)
        {
            int j = i + 1;
            while (j < blocks.Length && blocks[j].Node == blocks[i].Node) j++;
            _arenas[blocks[i].Node].FreeMany(blocks[i..j]);
            i = j;
        }
        ArmReport();
    }

    /// <summary>The descriptor of the allocated block containing <paramref name="address"/>, or null.</summary>
    public PageBlock? OwnerOf(nint address)
    {
        var arenas = _arenas;
        for (int i = 0; i < arenas.Length; i++)
            if (arenas[i].Contains(address)) return arenas[i].OwnerOf(address);
        return null;
    }

    /// <summary>The node whose arena holds <paramref name="address"/>, or -1.</summary>
    public int NodeOf(nint address)
    {
        for (int i = 0; i < _arenas.Length; i++)
            if (_arenas[i].Contains(address)) return i;
        return -1;
    }

    /// <summary>Free blocks per order for each node (the rows of /proc/buddyinfo).</summary>
    public long[][] BuddyInfo() => _arenas.Select(a => a.FreeBlocksPerOrder()).ToArray();

    /// <summary>Formats buddyinfo as the kernel's /proc/buddyinfo does (zone "Normal").</summary>
    public string FormatBuddyInfo()
    {
        var sb = new System.Text.StringBuilder();
        foreach (var a in _arenas)
        {
            sb.Append($"Node {a.Node}, zone   Normal");
            foreach (long c in a.FreeBlocksPerOrder()) sb.Append($" {c,6}");
            sb.Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>True if an order-<paramref name="order"/> block could be allocated now on <paramref name="node"/> (-1: any node).</summary>
    public bool CanAllocate(int order, int node = -1) =>
        node >= 0 ? _arenas[node].CanAllocate(order) : _arenas.Any(a => a.CanAllocate(order));

    /// <summary>Stops the reporting timer and releases every arena (see <see cref="BuddyArena.Dispose"/>). Safe to call more than once.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _reportTimer?.Dispose();
        foreach (var a in _arenas) a.Dispose();   // each waits for a report batch of its own still out
    }
}
