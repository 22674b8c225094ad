using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Slub;

/// <summary>CPU time consumed by the calling thread (<c>clock_gettime(CLOCK_THREAD_CPUTIME_ID)</c>) and its kernel thread id.</summary>
internal static unsafe partial class OsThreadClock
{
    private const int ClockThreadCpuTimeId = 3;

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec { public long Seconds; public long Nanoseconds; }

    [LibraryImport("libc")]
    private static partial int clock_gettime(int clock, Timespec* ts);

    [LibraryImport("libc")]
    private static partial int gettid();

    /// <summary>Nanoseconds of CPU time the calling thread has used. Off Linux, the process's total processor time (coarser, an over-estimate).</summary>
    public static long NowNanoseconds()
    {
        if (OperatingSystem.IsLinux())
        {
            Timespec ts;
            if (clock_gettime(ClockThreadCpuTimeId, &ts) == 0) return ts.Seconds * 1_000_000_000 + ts.Nanoseconds;
        }
        return Process.GetCurrentProcess().TotalProcessorTime.Ticks * 100;
    }

    /// <summary>The kernel's id of the calling thread (Linux), or the managed thread id elsewhere.</summary>
    public static int CurrentThreadId() => OperatingSystem.IsLinux() ? gettid() : Environment.CurrentManagedThreadId;
}
