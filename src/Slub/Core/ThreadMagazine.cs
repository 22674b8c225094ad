namespace Slub;

/// <summary>
/// A thread's private stack of free objects of one cache, in front of the per-CPU slab (like the
/// magazines of Bonwick's allocator, the per-CPU sheaves of Linux 6.18, or the per-thread stacks of
/// .NET's shared ArrayPool). Popping and pushing need no atomic instruction.
/// </summary>
/// <remarks>
/// <para><b>Why it is safe to drain from another thread.</b> Shrink and defragmentation must be able to
/// take the objects back while the owner keeps running. The owner brackets each use with
/// <see cref="Busy"/> = 1 … 0 (plain volatile stores) and checks <see cref="FlushRequest"/> after raising
/// Busy. A flusher sets FlushRequest, issues <see cref="Interlocked.MemoryBarrierProcessWide"/> — which makes
/// every thread execute a full fence at some point synchronised with it — and then waits for Busy to be 0.
/// Whichever side of that fence the owner's check falls on, either the owner sees the request and goes
/// around the magazine, or the flusher sees Busy and waits. While the request stands the owner uses the
/// per-CPU path; the flusher empties the magazine and clears the request. A drain can also complete
/// between the owner's Busy store and its check (the flusher saw Busy still 0); the owner then reads the
/// cleared request, so it must read Count and Slots only after that acquiring read, never before.</para>
/// <para><b>Accounting.</b> Objects in a magazine are allocated as far as their slabs know, exactly as
/// objects in a kernel sheaf are; <see cref="KmemCache.FlushAll"/> returns them first.</para>
/// <para><b>Trimming.</b> A magazine holds at most <see cref="Capacity"/> objects; a full one hands half back
/// to the CPU slab layer, an empty one refills half. Magazines of threads that exited keep their objects
/// until the next flush, which also forgets those magazines.</para>
/// </remarks>
internal sealed class ThreadMagazine
{
    public readonly nint[] Slots;
    public int Count;
    public int Busy;
    public int FlushRequest;
    public readonly WeakReference<Thread> Owner = new(Thread.CurrentThread);
    /// <summary>The owner thread has exited: the flush that found it emptied it and drops it from the cache's list. Flush lock.</summary>
    public bool Dead;

    public ThreadMagazine(int capacity) => Slots = new nint[capacity];

    public int Capacity => Slots.Length;

    /// <summary>Magazine size for a slot size: about 16 KiB of objects, between 4 and 64.</summary>
    public static int CapacityFor(int slotSize) => Math.Clamp(16384 / slotSize, 4, 64);
}
