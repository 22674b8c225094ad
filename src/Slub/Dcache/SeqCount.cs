namespace Slub.Dcache;

/// <summary>
/// A sequence counter (the kernel's <c>seqcount_t</c>) over a <see cref="uint"/> word: writers, already
/// serialised by a lock, make it odd before a change and even after; lock-free readers sample it, read the
/// data, and accept what they read only if the word is still the same even value. Used for each dentry's
/// <see cref="DentryData.Seq"/> (<c>d_seq</c>: around every change of the dentry a lock-free walker could read —
/// rename, unhash, kill, instantiation, delete in place) and for the cache-wide rename sequence (<c>rename_lock</c>'s
/// counter: around every <c>d_move</c>, and nothing else).
/// </summary>
/// <remarks>
/// Fences: <see cref="WriteBegin"/> is a full fence, so no store of the change becomes visible before the odd
/// value; <see cref="WriteEnd"/> is a release store, so every store of the change is visible before the even
/// value. A reader samples with <see cref="ReadBegin"/> (an acquire load: its data loads cannot move above it)
/// and must order its data loads before the final read of the counter: <see cref="Recheck"/> does that with a read
/// barrier (the kernel's <c>read_seqcount_retry</c>, whose <c>smp_rmb</c> it is); <see cref="Unchanged"/> alone
/// needs a full fence before it (taking a spin lock with an interlocked exchange is one, so is an atomic add),
/// or it may validate before the data loads are done.
/// </remarks>
internal static class SeqCount
{
    /// <summary>Starts a change (odd). The caller holds the lock that serialises writers of this counter.</summary>
    public static void WriteBegin(ref uint seq) => Interlocked.Increment(ref seq);

    /// <summary>Ends a change (even again). Same lock held as for <see cref="WriteBegin"/>.</summary>
    public static void WriteEnd(ref uint seq) => Volatile.Write(ref seq, seq + 1);

    /// <summary>The counter's value for a later <see cref="Unchanged"/>; odd means a change is in progress (the reader should give up).</summary>
    public static uint ReadBegin(ref uint seq) => Volatile.Read(ref seq);

    /// <summary>True if the counter is odd: a writer is inside its change.</summary>
    public static bool IsWriting(uint sample) => (sample & 1) != 0;

    /// <summary>True if no change began since <paramref name="sample"/> was taken (an odd sample never validates). The caller fenced its data loads.</summary>
    public static bool Unchanged(ref uint seq, uint sample) => (sample & 1) == 0 && Volatile.Read(ref seq) == sample;

    /// <summary>
    /// <see cref="Unchanged"/> after a read barrier (<c>read_seqcount_retry</c>): true if every load the caller made
    /// since <paramref name="sample"/> was taken saw the data of no change. A compiler barrier on x64, a load fence on Arm64.
    /// </summary>
    public static bool Recheck(ref uint seq, uint sample)
    {
        Volatile.ReadBarrier();
        return Unchanged(ref seq, sample);
    }
}
