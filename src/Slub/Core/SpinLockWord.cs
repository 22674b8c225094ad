using System.Runtime.CompilerServices;

namespace Slub;

/// <summary>
/// A one-word spin lock (the kernel's bit spinlock on a slab, and the per-CPU lock). Held only for a few
/// dozen instructions, never across a callback or an allocation, so spinning beats parking — except for a
/// background thread (<see cref="MarkBackgroundThread"/>), which sleeps after a short spin.
/// </summary>
internal static class SpinLockWord
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Enter(ref int word)
    {
        if (Interlocked.CompareExchange(ref word, 1, 0) != 0) EnterContended(ref word);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool TryEnter(ref int word) => Interlocked.CompareExchange(ref word, 1, 0) == 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Exit(ref int word) => Volatile.Write(ref word, 0);

    /// <summary>Spins of a background thread before it sleeps instead (SpinWait's count: ~10 busy spins, then yields).</summary>
    private const int BackgroundSleepAfter = 20;

    [ThreadStatic] private static bool t_background;

    /// <summary>
    /// Marks the calling thread as a background worker (the defragmenter): when it finds a lock word held for
    /// longer than a short spin, it sleeps (1 ms steps) instead of spinning and yielding. In user space a lock
    /// holder can be preempted; if it was preempted by the waiter itself, a waiter that only yields can keep
    /// it off that CPU for milliseconds, and the holder is usually an allocating thread. The background thread's
    /// own latency does not matter.
    /// </summary>
    public static void MarkBackgroundThread() => t_background = true;

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void EnterContended(ref int word)
    {
        var spinner = new SpinWait();
        do spinner.SpinOnce(sleep1Threshold: t_background ? BackgroundSleepAfter : -1);
        while (Volatile.Read(ref word) != 0 || Interlocked.CompareExchange(ref word, 1, 0) != 0);
    }
}
