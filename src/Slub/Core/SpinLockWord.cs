using System.Runtime.CompilerServices;

namespace Slub;

/// <summary>
/// A one-word spin lock (the kernel's bit spinlock on a slab, and the per-CPU lock). Held only for a few
/// dozen instructions, never across a callback or an allocation, so spinning beats parking.
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

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void EnterContended(ref int word)
    {
        var spinner = new SpinWait();
        do spinner.SpinOnce(sleep1Threshold: -1);
        while (Volatile.Read(ref word) != 0 || Interlocked.CompareExchange(ref word, 1, 0) != 0);
    }
}
