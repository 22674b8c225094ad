namespace Slub.Tests;

/// <summary>
/// The managed bytes a piece of work allocates on this thread, measured over up to a few windows. Test classes run
/// in parallel in this process, and a runtime structure this thread shares with them (a lock's wait event, a pool)
/// now and then allocates on it once: 120 to 7,544 bytes in one window in about one run of 40, in an allocation,
/// a free or a flush alike. Work that allocates per operation allocates in every window, so a clean window
/// proves the work itself allocates nothing.
/// </summary>
internal static class AllocationWindows
{
    /// <summary>
    /// Runs <paramref name="window"/> until one run of it allocates nothing on this thread, at most
    /// <paramref name="max"/> times. Returns the bytes each run allocated (the last is 0 if one was clean).
    /// </summary>
    public static long[] UntilClean(int max, Action window)
    {
        var bytes = new long[max];
        for (int i = 0; i < max; i++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            window();
            bytes[i] = GC.GetAllocatedBytesForCurrentThread() - before;
            if (bytes[i] == 0) return bytes[..(i + 1)];
        }
        return bytes;
    }
}
