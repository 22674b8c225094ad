using System.Runtime.InteropServices;

namespace Slub.Benchmarks.Infrastructure;

/// <summary>
/// CPU time of the calling thread (Linux CLOCK_THREAD_CPUTIME_ID). On a machine shared with other builds a
/// thread can lose the CPU for tens of milliseconds; wall time then measures the neighbours, CPU time does not.
/// </summary>
public static unsafe partial class ThreadCpuClock
{
    private const int ClockThreadCpuTimeId = 3;

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clockId, Timespec* time);

    /// <summary>True where the clock exists (Linux).</summary>
    public static bool IsAvailable => OperatingSystem.IsLinux();

    /// <summary>Nanoseconds of CPU time this thread has used.</summary>
    public static long NowNanoseconds()
    {
        Timespec t;
        if (ClockGetTime(ClockThreadCpuTimeId, &t) != 0) throw new InvalidOperationException("clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
        return t.Seconds * 1_000_000_000 + t.Nanoseconds;
    }
}
