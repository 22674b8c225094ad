using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Slub.Benchmarks;

/// <summary>
/// <c>-- --replay-cpu-time</c>: the <see cref="ReplayBenchmarks"/> workloads timed by the thread's CPU time
/// (<c>CLOCK_THREAD_CPUTIME_ID</c>) as well as wall time, best of 15 runs after 3 warm-ups. On a shared,
/// overloaded machine wall time measures the neighbours; CPU time measures the code.
/// </summary>
public static partial class ReplayCpuTimeProbe
{
    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec { public long Seconds, Nanoseconds; }

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clock, out Timespec ts);

    private static double ThreadCpuSeconds()
    {
        const int ClockThreadCpuTime = 3;
        if (!OperatingSystem.IsLinux() || ClockGetTime(ClockThreadCpuTime, out var ts) != 0)
            return Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds;
        return ts.Seconds + ts.Nanoseconds / 1e9;
    }

    public static void Run()
    {
        var b = new ReplayBenchmarks();
        b.Setup();
        Console.WriteLine($"sample-churn.trace.gz: {ReplayBenchmarks.Events:N0} events; best of 15 (after 3 warm-ups)");
        Measure("Parse", b.Parse);
        Measure("ParseGzip", b.ParseGzip);
        Measure("Replay", b.Replay);
        Measure("ReplayGzip", b.ReplayGzip);
    }

    private static void Measure(string name, Func<long> run)
    {
        for (int i = 0; i < 3; i++) run();
        double wall = double.MaxValue, cpu = double.MaxValue;
        for (int i = 0; i < 15; i++)
        {
            double c0 = ThreadCpuSeconds();
            long t0 = Stopwatch.GetTimestamp();
            run();
            wall = Math.Min(wall, Stopwatch.GetElapsedTime(t0).TotalSeconds);
            cpu = Math.Min(cpu, ThreadCpuSeconds() - c0);
        }
        Console.WriteLine($"{name,-11} cpu {cpu * 1e3,7:0.0} ms = {ReplayBenchmarks.Events / cpu / 1e6,5:0.00} M events/s   wall {wall * 1e3,7:0.0} ms = {ReplayBenchmarks.Events / wall / 1e6,5:0.00} M events/s");
    }
}
