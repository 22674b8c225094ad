using System.Buffers.Text;
using System.Runtime.CompilerServices;

namespace Slub.Trace;

/// <summary>
/// Parses the text ftrace prints for the <c>kmem</c> slab events (<c>trace</c> and <c>trace_pipe</c>), on UTF-8
/// bytes and without allocating except to describe a malformed line.
/// </summary>
/// <remarks>
/// The line layout is <c>TASK-PID [CPU] FLAGS TIMESTAMP: EVENT: key=value ...</c>, where the task name is
/// right-aligned and may hold blanks and dashes, a <c>(TGID)</c> column may follow the PID (the
/// <c>record-tgid</c> option), and the flags column may be missing (<c>irq-info</c> off). Values hold no blanks,
/// except that <c>call_site</c> of a module symbol ends with <c>[module]</c>, which is skipped. Lines starting
/// with '#' and blank lines are comments; <c>CPU:N [LOST M EVENTS]</c> reports a ring-buffer overflow.
/// <c>trace-cmd report</c> prints the same lines after a preamble of <c>CPU N is empty</c> and <c>cpus=N</c> lines
/// (comments here; the replayer takes the CPU count from the latter), and <c>perf script</c> prints
/// <c>TASK TID [CPU] TIMESTAMP: kmem:EVENT: ...</c> (blanks instead of the dash, the event with its system).
/// </remarks>
public static class FtraceParser
{
    /// <summary>Parses one line (without its newline). On <see cref="TraceLineKind.Malformed"/>, <paramref name="error"/> says why.</summary>
    public static TraceLineKind TryParse(ReadOnlySpan<byte> line, out TraceEvent ev, out string? error)
    {
        ev = default;
        error = null;
        line = Trim(line);
        if (line.IsEmpty || line[0] == (byte)'#') return TraceLineKind.Comment;
        // trace-cmd report's preamble: "CPU N is empty" for each CPU without events, then "cpus=N".
        if (line.StartsWith("cpus="u8) || (line.StartsWith("CPU "u8) && line.EndsWith(" is empty"u8))) return TraceLineKind.Comment;
        if (line.StartsWith("CPU:"u8))
        {
            int lost = line.IndexOf("[LOST "u8);
            if (lost > 0 && TryParseCpuLost(line, lost, ref ev)) return TraceLineKind.LostEvents;
            error = "unreadable CPU line (expected 'CPU:N [LOST M EVENTS]')";
            return TraceLineKind.Malformed;
        }

        // The CPU column: the first " [digits]".
        int open = FindCpuColumn(line, out int close);
        if (open < 0) { error = "no [CPU] column"; return TraceLineKind.Malformed; }
        if (!Utf8Parser.TryParse(line[(open + 1)..close], out ev.Cpu, out int used) || used != close - open - 1)
        { error = "unreadable CPU number"; return TraceLineKind.Malformed; }

        // TASK-PID, optionally followed by (TGID).
        var head = TrimEnd(line[..open]);
        if (!head.IsEmpty && head[^1] == (byte)')')
        {
            int tg = head.LastIndexOf((byte)'(');
            if (tg < 0) { error = "unbalanced (TGID) column"; return TraceLineKind.Malformed; }
            head = TrimEnd(head[..tg]);
        }
        int dash = head.LastIndexOf((byte)'-');
        if (dash > 0 && Utf8Parser.TryParse(head[(dash + 1)..], out ev.Pid, out used) && used == head.Length - dash - 1)
            ev.Task = head[..dash];
        else if (!TryParsePerfTaskPid(head, ref ev))
        { error = "no TASK-PID before the CPU column"; return TraceLineKind.Malformed; }

        // FLAGS (optional) and TIMESTAMP: the first token ending in ':'.
        var rest = TrimStart(line[(close + 1)..]);
        var token = NextToken(ref rest);
        if (token.IsEmpty || token[^1] != (byte)':')
        {
            token = NextToken(ref rest);
            if (token.IsEmpty || token[^1] != (byte)':') { error = "no 'TIMESTAMP:' after the CPU column"; return TraceLineKind.Malformed; }
        }
        if (!TryParseTimestamp(token[..^1], out ev.TimestampNs)) { error = "unreadable timestamp"; return TraceLineKind.Malformed; }

        // EVENT:
        token = NextToken(ref rest);
        if (token.Length < 2 || token[^1] != (byte)':') { error = "no 'EVENT:' after the timestamp"; return TraceLineKind.Malformed; }
        var name = token[..^1];
        if (name.StartsWith("kmem:"u8)) name = name[5..];   // perf script names the event with its system
        ev.EventName = name;
        bool alloc;
        if (name.SequenceEqual("kmem_cache_alloc"u8) || name.SequenceEqual("kmem_cache_alloc_node"u8)) { ev.Kind = TraceEventKind.CacheAlloc; alloc = true; }
        else if (name.SequenceEqual("kmem_cache_free"u8)) { ev.Kind = TraceEventKind.CacheFree; alloc = false; }
        else if (name.SequenceEqual("kmalloc"u8) || name.SequenceEqual("kmalloc_node"u8)) { ev.Kind = TraceEventKind.Kmalloc; alloc = true; }
        else if (name.SequenceEqual("kfree"u8)) { ev.Kind = TraceEventKind.Kfree; alloc = false; }
        else return TraceLineKind.OtherEvent;

        ev.BytesReq = ev.BytesAlloc = ev.Node = -1;
        bool havePtr = false;
        while (!rest.IsEmpty)
        {
            // Keys are told apart by their text before '=' without searching for it; tokens that are not a
            // known key (other fields, the "[module]" tail of a call_site) are skipped.
            var field = NextToken(ref rest);
            if (field.IsEmpty) continue;
            switch (field[0])
            {
                case (byte)'p' when field.StartsWith("ptr="u8):
                    if (!TryParsePointer(field[4..], out ev.Ptr)) { error = "ptr is not a hex pointer or (null)"; return TraceLineKind.Malformed; }
                    havePtr = true;
                    break;
                case (byte)'n' when field.StartsWith("name="u8):
                    ev.CacheName = field[5..];
                    break;
                case (byte)'n' when field.StartsWith("node="u8):
                    if (!TryParseInt(field[5..], out ev.Node)) { error = "unreadable node"; return TraceLineKind.Malformed; }
                    break;
                case (byte)'b' when field.StartsWith("bytes_req="u8):
                    if (!TryParseInt(field[10..], out ev.BytesReq)) { error = "unreadable bytes_req"; return TraceLineKind.Malformed; }
                    break;
                case (byte)'b' when field.StartsWith("bytes_alloc="u8):
                    if (!TryParseInt(field[12..], out ev.BytesAlloc) || ev.BytesAlloc <= 0) { error = "unreadable bytes_alloc"; return TraceLineKind.Malformed; }
                    break;
                case (byte)'c' when field.StartsWith("call_site="u8):
                    ev.CallSite = field[10..];
                    break;
                case (byte)'g' when field.StartsWith("gfp_flags="u8):
                    ev.GfpFlags = field[10..];
                    break;
                case (byte)'a' when field.StartsWith("accounted="u8):
                    ev.Accounted = field[10..].SequenceEqual("true"u8);
                    break;
            }
        }
        if (!havePtr) { error = "no ptr= field"; return TraceLineKind.Malformed; }
        if (ev.Kind is TraceEventKind.CacheAlloc or TraceEventKind.CacheFree && ev.CacheName.IsEmpty)
        {
            error = ev.Kind == TraceEventKind.CacheAlloc
                ? "kmem_cache_alloc without name= (kernels before 6.0 do not print the cache name)"
                : "kmem_cache_free without name= (kernels before 5.13 do not print the cache name)";
            return TraceLineKind.Malformed;
        }
        if (alloc && ev.BytesAlloc < 0) { error = "allocation without bytes_alloc="; return TraceLineKind.Malformed; }
        return TraceLineKind.Event;
    }

    // perf script's "TASK TID" (the task name right-aligned, then the thread id after blanks).
    private static bool TryParsePerfTaskPid(ReadOnlySpan<byte> head, ref TraceEvent ev)
    {
        int sp = head.LastIndexOfAny((byte)' ', (byte)'\t');
        if (sp <= 0) return false;
        var task = TrimEnd(head[..sp]);
        if (task.IsEmpty || !Utf8Parser.TryParse(head[(sp + 1)..], out ev.Pid, out int used) || used != head.Length - sp - 1) return false;
        ev.Task = task;
        return true;
    }

    private static int FindCpuColumn(ReadOnlySpan<byte> line, out int close)
    {
        int from = 0;
        while (true)
        {
            int i = line[from..].IndexOf((byte)'[');
            if (i < 0) { close = -1; return -1; }
            i += from;
            int j = i + 1;
            while (j < line.Length && (uint)(line[j] - '0') <= 9) j++;
            if (i > 0 && line[i - 1] == (byte)' ' && j > i + 1 && j < line.Length && line[j] == (byte)']')
            {
                close = j;
                return i;
            }
            from = i + 1;
        }
    }

    private static bool TryParseCpuLost(ReadOnlySpan<byte> line, int lost, ref TraceEvent ev)
    {
        var cpu = TrimEnd(line[4..lost]);
        var count = line[(lost + 6)..];
        int sp = count.IndexOf((byte)' ');
        if (sp < 0 || !count[sp..].StartsWith(" EVENTS]"u8)) return false;
        return Utf8Parser.TryParse(cpu, out ev.Cpu, out int u1) && u1 == cpu.Length
            && Utf8Parser.TryParse(count[..sp], out ev.Lost, out int u2) && u2 == sp;
    }

    /// <summary>seconds[.fraction] (any number of fraction digits) or a plain counter, to nanoseconds.</summary>
    private static bool TryParseTimestamp(ReadOnlySpan<byte> s, out long ns)
    {
        ns = 0;
        int dot = s.IndexOf((byte)'.');
        var whole = dot < 0 ? s : s[..dot];
        if (!Utf8Parser.TryParse(whole, out long sec, out int used) || used != whole.Length) return false;
        if (dot < 0) { ns = sec; return true; }
        var frac = s[(dot + 1)..];
        if (frac.IsEmpty) return false;
        long f = 0;
        int digits = 0;
        foreach (byte b in frac)
        {
            uint d = (uint)(b - '0');
            if (d > 9) return false;
            if (digits < 9) { f = f * 10 + d; digits++; }
        }
        for (; digits < 9; digits++) f *= 10;
        ns = sec * 1_000_000_000 + f;
        return true;
    }

    private static bool TryParsePointer(ReadOnlySpan<byte> s, out ulong value)
    {
        value = 0;
        if (s.SequenceEqual("(null)"u8)) return true;
        if (s.Length > 2 && s[0] == (byte)'0' && (s[1] | 0x20) == (byte)'x') s = s[2..];
        if (s.IsEmpty || s.Length > 16) return false;
        ulong v = 0;
        foreach (byte b in s)
        {
            uint d = (uint)(b - '0');
            if (d > 9)
            {
                d = (uint)((b | 0x20) - 'a');
                if (d > 5) return false;
                d += 10;
            }
            v = (v << 4) | d;
        }
        value = v;
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool TryParseInt(ReadOnlySpan<byte> s, out int value) =>
        Utf8Parser.TryParse(s, out value, out int used) && used == s.Length;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ReadOnlySpan<byte> NextToken(scoped ref ReadOnlySpan<byte> rest)
    {
        int sp = rest.IndexOf((byte)' ');
        ReadOnlySpan<byte> token;
        if (sp < 0) { token = rest; rest = default; }
        else { token = rest[..sp]; rest = TrimStart(rest[(sp + 1)..]); }
        return token;
    }

    private static ReadOnlySpan<byte> Trim(ReadOnlySpan<byte> s) => TrimEnd(TrimStart(s));

    private static ReadOnlySpan<byte> TrimStart(ReadOnlySpan<byte> s)
    {
        int i = 0;
        while (i < s.Length && (s[i] == (byte)' ' || s[i] == (byte)'\t')) i++;
        return s[i..];
    }

    private static ReadOnlySpan<byte> TrimEnd(ReadOnlySpan<byte> s)
    {
        int n = s.Length;
        while (n > 0 && (s[n - 1] == (byte)' ' || s[n - 1] == (byte)'\t' || s[n - 1] == (byte)'\r')) n--;
        return s[..n];
    }
}
