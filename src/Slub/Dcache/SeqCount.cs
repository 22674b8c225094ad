namespace Slub.Dcache;

/// <summary>
/// A sequence counter (the kernel's <c>seqcount_t</c>) over a <see cref="uint"/> word: writers, already
/// serialised by a lock, make it odd before a change and even after; lock-free readers sample it, read the
/// data, and accept what they read only if the word is still the same even value. Used for each dentry's
/// <see cref="DentryData.Seq"/> (<c>d_seq</c>) and for the cache-wide rename sequence (<c>rename_lock</c>'s counter).
/// </summary>
/// <remarks>
/// Fences: <see cref="WriteBegin"/> is a full fence, so no store of the change becomes visible before the odd
/// value; <see cref="WriteEnd"/> is a release store, so every store of the change is visible before the even
/// value. A reader samples with <see cref="ReadBegin"/> (an acquire load: its data loads cannot move above it)
/// and must put a full fence between its data loads and <see cref="Unchanged"/> (taking a spin lock with an
/// interlocked exchange is one), or it may validate before its data loads are done.
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

    /// <summary>True if no change began since <paramref name="sample"/> was taken (an odd sample never validates).</summary>
    public static bool Unchanged(ref uint seq, uint sample) => (sample & 1) == 0 && Volatile.Read(ref seq) == sample;
}
