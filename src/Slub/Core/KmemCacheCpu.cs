namespace Slub;

/// <summary>
/// Per-CPU state of a cache (the kernel's <c>struct kmem_cache_cpu</c>): the CPU slab with its private
/// free list, and the chain of per-CPU partial slabs.
/// </summary>
/// <remarks>
/// Everything here is guarded by <see cref="LockWord"/>. A thread takes the lock of the CPU it runs on
/// (or of the CPU it names), so the lock is almost never contended: it is the user-space stand-in for
/// disabling preemption. Flushing (shrink, defrag) takes each CPU's lock in turn from another thread,
/// which is what lets shrink empty every CPU's state while those CPUs keep allocating.
/// </remarks>
internal sealed class KmemCacheCpu
{
    // Padding keeps two CPUs' hot words off one cache line.
#pragma warning disable CS0169
    private long _pad0, _pad1, _pad2, _pad3, _pad4, _pad5, _pad6;
#pragma warning restore CS0169
    public int LockWord;
    /// <summary>Free objects of <see cref="Slab"/> reserved for this CPU (linked through the free pointer).</summary>
    public nint Freelist;
    public Slab? Slab;
    /// <summary>Head of the per-CPU partial chain (linked through <see cref="Slub.Slab.Next"/>).</summary>
    public Slab? Partial;
    public int PartialSlabs;
    public int PartialObjects;
    public readonly int Cpu;
    public readonly int Node;

    public KmemCacheCpu(int cpu, int node) { Cpu = cpu; Node = node; }
}
