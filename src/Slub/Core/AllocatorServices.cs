using System.Collections.Concurrent;

namespace Slub;

/// <summary>
/// The allocator's log: debug reports, traces, validation problems (the user-space dmesg). Keeps the last
/// <see cref="Capacity"/> lines. Thread-safe.
/// </summary>
public sealed class AllocatorLog
{
    /// <summary>Lines kept; the oldest is dropped when a new one would exceed it.</summary>
    public const int Capacity = 4096;
    private readonly Queue<string> _lines = new();

    /// <summary>
    /// Raised for every line written (e.g. to forward to a logger), on the thread that wrote it, with no lock of the
    /// allocator held (a handler may use the allocator, or wait for a thread that does). Handlers should not throw: an
    /// exception leaves the allocator call that wrote the line (a traced allocation or free, a corruption report, a
    /// validation) after that call's work is done.
    /// </summary>
    public event Action<string>? LineWritten;

    /// <summary>Appends <paramref name="line"/> (without its newline), drops the oldest lines beyond <see cref="Capacity"/>, then raises <see cref="LineWritten"/> outside the lock.</summary>
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

    /// <summary>The retained lines as one text, each ending in a newline (what a dmesg-like file reads).</summary>
    public string Text()
    {
        var sb = new System.Text.StringBuilder();
        foreach (string line in Lines()) sb.Append(line).Append('\n');
        return sb.ToString();
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
