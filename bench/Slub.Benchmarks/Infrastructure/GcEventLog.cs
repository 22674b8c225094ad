using System.Diagnostics.Tracing;
using System.Globalization;

namespace Slub.Benchmarks.Infrastructure;

/// <summary>
/// Records every garbage collection while it is alive — generation, reason, the OS thread whose allocation
/// triggered it (by name from /proc/self/task/*/comm), the time the runtime was suspended, the GC's own
/// time and what it promoted — and the runtime's allocation samples (type and thread, one per ~100 KB),
/// from the runtime's own GC events. An allocation pause that is really a GC can then be traced to the thread that
/// caused it. Events arrive asynchronously; <see cref="Describe"/> waits briefly for stragglers.
/// </summary>
internal sealed class GcEventLog : EventListener
{
    private const int GCStart = 1, GCEnd = 2, SuspendEEStart = 9, RestartEEStop = 3, HeapStats = 4, AllocationTick = 10;
    private readonly List<(int Gen, string Reason, string Thread, DateTime Start)> _gcs = new();
    private readonly List<double> _pausesMs = new();
    private DateTime _suspendAt;
    private readonly List<string> _detail = new();
    private readonly Dictionary<string, int> _ticks = new();
    private bool _enabled;

    protected override void OnEventSourceCreated(EventSource source)
    {
        if (source.Name == "Microsoft-Windows-DotNETRuntime")
        {
            EnableEvents(source, EventLevel.Verbose, (EventKeywords)0x1);
            _enabled = true;
        }
    }

    protected override void OnEventWritten(EventWrittenEventArgs e)
    {
        lock (_gcs)
        {
            switch (e.EventId)
            {
                case GCStart:
                    int gen = Convert.ToInt32(e.Payload![e.PayloadNames!.IndexOf("Depth")], CultureInfo.InvariantCulture);
                    int reason = Convert.ToInt32(e.Payload![e.PayloadNames!.IndexOf("Reason")], CultureInfo.InvariantCulture);
                    _gcs.Add((gen, ReasonName(reason), ThreadName((ulong)e.OSThreadId), e.TimeStamp));
                    break;
                case AllocationTick:
                    string key = $"{Payload(e, "TypeName")}@{ThreadName((ulong)e.OSThreadId)}";
                    _ticks[key] = _ticks.GetValueOrDefault(key) + 1;
                    break;
                case SuspendEEStart: _suspendAt = e.TimeStamp; break;
                case GCEnd when _gcs.Count > 0: _detail.Add($"gen{_gcs[^1].Gen} {(e.TimeStamp - _gcs[^1].Start).TotalMilliseconds:F2} ms"); break;
                case HeapStats when _detail.Count > 0:
                    _detail[^1] += $" (promoted from gen0 {Payload(e, "TotalPromotedSize0")} B, from gen1 {Payload(e, "TotalPromotedSize1")} B)";
                    break;
                case RestartEEStop when _suspendAt != default:
                    _pausesMs.Add((e.TimeStamp - _suspendAt).TotalMilliseconds);
                    _suspendAt = default;
                    break;
            }
        }
    }

    private static string Payload(EventWrittenEventArgs e, string name)
    {
        int i = e.PayloadNames!.IndexOf(name);
        return i < 0 ? "?" : e.Payload![i] is string str ? str : Convert.ToInt64(e.Payload![i], CultureInfo.InvariantCulture).ToString("N0", CultureInfo.InvariantCulture);
    }

    private static string ReasonName(int r) => r switch
    {
        0 => "small alloc", 1 => "induced", 2 => "low memory", 3 => "empty", 4 => "large alloc",
        5 => "out of space (SOH)", 6 => "out of space (LOH)", 7 => "induced, not forced", 8 => "stress", 9 => "low memory (induced)",
        _ => r.ToString(CultureInfo.InvariantCulture),
    };

    private static string ThreadName(ulong tid)
    {
        try { return File.ReadAllText($"/proc/self/task/{tid}/comm").Trim(); }
        catch (IOException) { return $"tid {tid}"; }
        catch (UnauthorizedAccessException) { return $"tid {tid}"; }
    }

    /// <summary>One line per group of GCs with the same generation, reason and triggering thread, and the longest suspension.</summary>
    public string Describe()
    {
        if (!_enabled) return "GC events unavailable";
        Thread.Sleep(300); // events are delivered by a dispatcher thread
        lock (_gcs)
        {
            var groups = _gcs.GroupBy(g => (g.Gen, g.Reason, g.Thread))
                .Select(g => $"{g.Count()} x gen{g.Key.Gen} ({g.Key.Reason}) by {g.Key.Thread}");
            return $"{_gcs.Count} GCs: {string.Join("; ", groups)}; runtime suspended {_pausesMs.Sum():F1} ms in all, longest {(_pausesMs.Count == 0 ? 0 : _pausesMs.Max()):F2} ms; " +
                   $"GC work: {string.Join(", ", _detail)}; allocation samples (one per ~100 KB, type@thread): " +
                   string.Join(", ", _ticks.OrderByDescending(kv => kv.Value).Take(8).Select(kv => $"{kv.Key} {kv.Value}"));
        }
    }
}
