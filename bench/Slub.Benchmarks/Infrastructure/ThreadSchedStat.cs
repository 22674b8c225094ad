namespace Slub.Benchmarks.Infrastructure;

/// <summary>
/// The calling thread's scheduler figures from <c>/proc/thread-self/schedstat</c>: nanoseconds on a CPU and
/// nanoseconds runnable but waiting for a CPU (run delay, i.e. preempted or not yet scheduled). Over an
/// interval, wall time minus both is time the thread slept (blocked on a futex, e.g. a contended lock). Lets a
/// benchmark tell an allocation pause caused by the machine's load from one spent spinning or blocked.
/// One instance per thread; not thread-safe.
/// </summary>
internal sealed class ThreadSchedStat : IDisposable
{
    private readonly FileStream? _file;
    private readonly byte[] _buffer = new byte[128];

    public ThreadSchedStat()
    {
        try { _file = new FileStream("/proc/thread-self/schedstat", FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1); }
        catch (IOException) { _file = null; }
        catch (UnauthorizedAccessException) { _file = null; }
    }

    public bool IsAvailable => _file is not null;

    /// <summary>(ns on CPU, ns runnable but waiting), or zeros when unavailable.</summary>
    public (long CpuNs, long RunDelayNs) Read()
    {
        if (_file is null) return (0, 0);
        _file.Seek(0, SeekOrigin.Begin);
        int n = _file.Read(_buffer, 0, _buffer.Length);
        var span = _buffer.AsSpan(0, n);
        long cpu = ParseLong(ref span), delay = ParseLong(ref span);
        return (cpu, delay);
    }

    private static long ParseLong(ref Span<byte> s)
    {
        int i = 0;
        while (i < s.Length && s[i] == (byte)' ') i++;
        long v = 0;
        while (i < s.Length && s[i] >= (byte)'0' && s[i] <= (byte)'9') v = v * 10 + (s[i++] - (byte)'0');
        s = s[i..];
        return v;
    }

    public void Dispose() => _file?.Dispose();
}
