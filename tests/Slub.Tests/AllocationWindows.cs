namespace Slub.Tests;

/// <summary>
/// The managed bytes a piece of work allocates on this thread, measured over up to a few windows. Test classes run
/// in parallel in this process, and beside them the counter of this thread now and then grows once by bytes the
/// work did not ask for: 160 to 7,544 bytes, in one call of about 25,600 (an Alloc, a Free or a FlushAll alike),
/// with no collection in the window, in about one filtered run of eight. One known source is a lock's first
/// contended entry, which allocates its wait event. Work that allocates per operation allocates in every window,
/// so a clean window shows the work itself allocates nothing.
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
