using System.Runtime.InteropServices;

namespace Slub;

/// <summary>Scheduling class of the calling thread (Linux <c>sched_setscheduler</c>).</summary>
internal static unsafe partial class OsThreadScheduling
{
    /// <summary>Linux SCHED_BATCH.</summary>
    public const int SchedBatch = 3;

    [StructLayout(LayoutKind.Sequential)]
    private struct SchedParam { public int Priority; }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int sched_setscheduler(int pid, int policy, SchedParam* param);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int sched_getscheduler(int pid);

    /// <summary>
    /// Puts the calling thread in SCHED_BATCH: same share of the CPU as any normal thread (nice unchanged, so a
    /// lock holder that loses its CPU gets it back as soon as any thread would), but its wake-ups never preempt
    /// the running thread. A background worker that wakes hundreds of times a second then waits for the next
    /// scheduling point or an idle CPU instead of kicking a busy application thread off its CPU (which, on a
    /// loaded machine, can hand that CPU to a third process for a whole time slice). Returns false where
    /// unsupported (not Linux, or refused); the thread then keeps its class.
    /// </summary>
    public static bool TryMakeCurrentThreadBatch()
    {
        if (!OperatingSystem.IsLinux()) return false;
        SchedParam p = default;
        return sched_setscheduler(0, SchedBatch, &p) == 0;
    }

    /// <summary>The scheduling policy of thread <paramref name="tid"/> (0: the calling thread), or -1 (not Linux, or an error).</summary>
    public static int PolicyOf(int tid) => OperatingSystem.IsLinux() ? sched_getscheduler(tid) : -1;
}
