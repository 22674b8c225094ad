namespace Slub.Trace;

/// <summary>The slab events of the kernel's <c>kmem</c> trace system that the replayer understands.</summary>
public enum TraceEventKind : byte
{
    /// <summary><c>kmem:kmem_cache_alloc</c> (and the older <c>kmem_cache_alloc_node</c>).</summary>
    CacheAlloc,
    /// <summary><c>kmem:kmem_cache_free</c>.</summary>
    CacheFree,
    /// <summary><c>kmem:kmalloc</c> (and the older <c>kmalloc_node</c>).</summary>
    Kmalloc,
    /// <summary><c>kmem:kfree</c>.</summary>
    Kfree,
}

/// <summary>What one line of ftrace text turned out to be.</summary>
public enum TraceLineKind : byte
{
    /// <summary>A slab event; the <see cref="TraceEvent"/> is filled in.</summary>
    Event,
    /// <summary>Blank, or a header/comment line starting with '#'.</summary>
    Comment,
    /// <summary>A well-formed line of some other event (e.g. <c>sched_switch</c>).</summary>
    OtherEvent,
    /// <summary><c>CPU:N [LOST M EVENTS]</c>: the ring buffer overflowed; <see cref="TraceEvent.Lost"/> holds M.</summary>
    LostEvents,
    /// <summary>Not ftrace text; <see cref="FtraceParser.TryParse"/> returned the reason.</summary>
    Malformed,
}

/// <summary>
/// One parsed slab event. The spans point into the line that was parsed and are valid only as long as it is.
/// </summary>
/// <remarks>
/// Fields of the kernel's format (<c>include/trace/events/kmem.h</c>), e.g.
/// <code>python3-3890 [001] ..... 4160.226149: kmem_cache_alloc: call_site=__d_alloc+0x2d/0x230 ptr=00000000c4f58dfb name=dentry bytes_req=192 bytes_alloc=192 gfp_flags=GFP_KERNEL node=-1 accounted=true</code>
/// </remarks>
public ref struct TraceEvent
{
    /// <summary>Which slab event this is.</summary>
    public TraceEventKind Kind;
    /// <summary>The CPU column.</summary>
    public int Cpu;
    /// <summary>The PID after the task name.</summary>
    public int Pid;
    /// <summary>The timestamp column in nanoseconds (seconds.fraction scaled; a raw counter as is).</summary>
    public long TimestampNs;
    /// <summary>The <c>ptr</c> field: the kernel's hashed (or raw) object address; 0 for <c>(null)</c>.</summary>
    public ulong Ptr;
    /// <summary><c>bytes_req</c> (allocations; -1 when absent).</summary>
    public int BytesReq;
    /// <summary><c>bytes_alloc</c>: the slot size the object got (allocations; -1 when absent).</summary>
    public int BytesAlloc;
    /// <summary><c>node</c>: the requested NUMA node, -1 for any (allocations; -1 when absent).</summary>
    public int Node;
    /// <summary><c>accounted=true</c> (memcg-accounted allocation).</summary>
    public bool Accounted;
    /// <summary>For <see cref="TraceLineKind.LostEvents"/>: how many events the kernel dropped.</summary>
    public long Lost;
    /// <summary>The task name (comm).</summary>
    public ReadOnlySpan<byte> Task;
    /// <summary>The event name as printed.</summary>
    public ReadOnlySpan<byte> EventName;
    /// <summary><c>name</c>: the cache (kmem_cache_* events; empty for kmalloc/kfree).</summary>
    public ReadOnlySpan<byte> CacheName;
    /// <summary><c>call_site</c>, possibly empty.</summary>
    public ReadOnlySpan<byte> CallSite;
    /// <summary><c>gfp_flags</c>, possibly empty.</summary>
    public ReadOnlySpan<byte> GfpFlags;

    /// <summary>True for allocations (<see cref="TraceEventKind.CacheAlloc"/>, <see cref="TraceEventKind.Kmalloc"/>).</summary>
    public readonly bool IsAlloc => Kind is TraceEventKind.CacheAlloc or TraceEventKind.Kmalloc;
}
