using System.Collections.Concurrent;

namespace Slub;

/// <summary>
/// The allocator's log: debug reports, traces, validation problems (the user-space dmesg). Keeps the last
/// <see cref="Capacity"/> lines. Thread-safe.
/// </summary>
public sealed class AllocatorLog
{
    public const int Capacity = 4096;
    private readonly Queue<string> _lines = new();

    /// <summary>Raised for every line written (e.g. to forward to a logger).</summary>
    public event Action<string>? LineWritten;

    public void Write(string line)
    {
        lock (_lines)
        {
            _lines.Enqueue(line);
            while (_lines.Count > Capacity) _lines.Dequeue();
        }
        LineWritten?.Invoke(line);
    }

    /// <summary>The retained lines, oldest first.</summary>
    public string[] Lines()
    {
        lock (_lines) return _lines.ToArray();
    }
}

/// <summary>Interns call-site names for store_user tracks (the kernel's stack depot, one frame deep).</summary>
internal sealed class CallSiteTable
{
    private readonly ConcurrentDictionary<string, int> _ids = new();
    private readonly List<string> _names = ["<none>"];

    public int Intern(string name) => _ids.GetOrAdd(name, n =>
    {
        lock (_names) { _names.Add(n); return _names.Count - 1; }
    });

    public string Name(int id)
    {
        lock (_names) return (uint)id < (uint)_names.Count ? _names[id] : "<unknown>";
    }
}

/// <summary>
/// failslab for this allocator: make slab allocations fail, globally or for one cache, either every N-th
/// or with a probability. Off by default. Thread-safe.
/// </summary>
public sealed class FaultInjection
{
    private long _count;

    /// <summary>Fail every N-th new-slab allocation (0 = off).</summary>
    public int FailEveryNth { get; set; }

    /// <summary>Fail new-slab allocations with this probability (0..1).</summary>
    public double FailProbability { get; set; }

    /// <summary>Only caches whose name is this fail (null = all).</summary>
    public string? CacheName { get; set; }

    /// <summary>Injected failures so far.</summary>
    public long Failures => Interlocked.Read(ref _failures);
    private long _failures;

    internal bool ShouldFailSlab(KmemCache cache)
    {
        if (FailEveryNth == 0 && FailProbability <= 0) return false;
        if (CacheName is not null && CacheName != cache.Name) return false;
        bool fail = (FailEveryNth > 0 && Interlocked.Increment(ref _count) % FailEveryNth == 0)
                    || (FailProbability > 0 && Random.Shared.NextDouble() < FailProbability);
        if (fail) Interlocked.Increment(ref _failures);
        return fail;
    }
}
