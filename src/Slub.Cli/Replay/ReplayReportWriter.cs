using System.Globalization;
using System.Text.Json;
using Slub.Trace;
using Spectre.Console;

namespace Slub.Cli.Replay;

/// <summary>The report of <c>slub replay</c>: tables for people, one JSON object for scripts.</summary>
internal static class ReplayReportWriter
{
    public static string PolicyName(DefragPolicy p) => p == DefragPolicy.EmptyAllCandidates ? "empty-all" : "fill-fullest";

    /// <summary>The caches that hold slabs, most pages first.</summary>
    private static IEnumerable<CacheReplayResult> Ordered(ReplayResult r) =>
        r.Caches.OrderByDescending(c => c.Pages).ThenBy(c => c.Name, StringComparer.Ordinal);

    public static void WriteJson(ReplayResult r, TextWriter output)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("trace", r.FileName);
            w.WriteNumber("lines", r.Lines);
            w.WriteNumber("events", r.Events);
            w.WriteNumber("replayed_events", r.ReplayedEvents);
            w.WriteNumber("skipped_frees", r.SkippedFrees);
            w.WriteNumber("other_events", r.OtherEvents);
            w.WriteNumber("lost_events", r.LostEvents);
            w.WriteNumber("out_of_order_events", r.OutOfOrderEvents);
            w.WriteNumber("null_pointers", r.NullPointers);
            w.WriteNumber("large_kmallocs", r.LargeKmallocs);
            w.WriteNumber("bad_lines", r.BadLineCount);
            w.WriteStartArray("bad_line_samples");
            foreach (var b in r.BadLines)
            {
                w.WriteStartObject();
                w.WriteNumber("line", b.LineNumber);
                w.WriteString("reason", b.Reason);
                w.WriteString("text", b.Text);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("size_mismatches");
            foreach (var m in r.SizeMismatches)
            {
                w.WriteStartObject();
                w.WriteString("cache", m.Cache);
                w.WriteNumber("line", m.LineNumber);
                w.WriteNumber("bytes_alloc", m.BytesAlloc);
                w.WriteNumber("first_line", m.FirstLine);
                w.WriteNumber("first_bytes_alloc", m.FirstBytesAlloc);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteNumber("cpus", r.Cpus);
            w.WriteString("cpus_source", r.CpusSource);
            w.WriteNumber("duration_seconds", Math.Round(r.Seconds, 6));
            w.WriteString("what_if", r.DefragUsedRatio is null ? "kmem_cache_shrink" : "kmem_defrag_slabs");
            if (r.DefragUsedRatio is int ratio) w.WriteNumber("defrag_used_ratio", ratio);
            else w.WriteNull("defrag_used_ratio");
            w.WriteStartArray("policies");
            foreach (var p in r.Policies) w.WriteStringValue(PolicyName(p));
            w.WriteEndArray();

            w.WriteStartArray("caches");
            long pages = 0, recovered = 0, moved = 0, bytes = 0, cpuNs = 0;
            foreach (var c in Ordered(r))
            {
                var primary = c.AfterDefrag.Count > 0 ? c.AfterDefrag[0] : null;
                pages += c.Pages;
                recovered += primary?.PagesRecovered ?? 0;
                moved += primary?.ObjectsMoved ?? 0;
                bytes += primary?.BytesMoved ?? 0;
                cpuNs += (primary?.CpuTime.Ticks ?? 0) * 100;
                w.WriteStartObject();
                w.WriteString("name", c.Name);
                w.WriteNumber("object_size", c.ObjectSize);
                w.WriteNumber("slab_size", c.SlabSize);
                w.WriteNumber("objs_per_slab", c.ObjectsPerSlab);
                w.WriteNumber("order", c.Order);
                w.WriteNumber("cpu_partial", c.CpuPartial);
                w.WriteNumber("min_partial", c.MinPartial);
                w.WriteString("geometry", c.GeometrySource);
                if (c.GeometryNote is not null) w.WriteString("geometry_note", c.GeometryNote);
                w.WriteNumber("allocs", c.Allocs);
                w.WriteNumber("frees", c.Frees);
                w.WriteNumber("skipped_frees", c.SkippedFrees);
                w.WriteNumber("unseen_frees", c.UnseenFrees);
                w.WriteNumber("objects", c.Objects);
                w.WriteNumber("live_objects", c.LiveObjects);
                w.WriteNumber("slabs", c.Slabs);
                w.WriteNumber("partial", c.Partial);
                w.WriteNumber("cpu_slabs", c.CpuSlabs);
                w.WriteNumber("optimal_slabs", c.OptimalSlabs);
                w.WriteNumber("pages", c.Pages);
                w.WriteBoolean("movable", c.Movable);
                if (c.NotMovableReason is not null) w.WriteString("not_movable_reason", c.NotMovableReason);
                w.WritePropertyName("after_defrag");
                if (primary is null)
                {
                    // Not movable: defrag leaves the cache as it is.
                    w.WriteStartObject();
                    w.WriteNumber("slabs", c.Slabs);
                    w.WriteNumber("partial", c.Partial);
                    w.WriteNumber("cpu_slabs", c.CpuSlabs);
                    w.WriteNumber("pages", c.Pages);
                    w.WriteNumber("objects_moved", 0);
                    w.WriteNumber("pages_recovered", 0);
                    w.WriteNumber("objects", c.Objects);
                    w.WriteNumber("optimal_slabs", c.OptimalSlabs);
                    w.WriteNumber("bytes_moved", 0);
                    w.WriteNumber("cpu_ns", 0);
                    w.WriteNull("ns_per_moved_object");
                    w.WriteEndObject();
                }
                else WriteOutcome(w, primary);
                w.WriteNumber("pages_recovered", primary?.PagesRecovered ?? 0);
                w.WriteStartArray("what_if_policies");
                foreach (var o in c.AfterDefrag) WriteOutcome(w, o);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartObject("total");
            w.WriteNumber("pages", pages);
            w.WriteNumber("pages_recovered", recovered);
            w.WriteNumber("objects_moved", moved);
            w.WriteNumber("bytes_moved", bytes);
            w.WriteNumber("cpu_ns", cpuNs);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        output.WriteLine(System.Text.Encoding.UTF8.GetString(stream.ToArray()));
    }

    private static void WriteOutcome(Utf8JsonWriter w, DefragOutcome o)
    {
        w.WriteStartObject();
        w.WriteString("policy", PolicyName(o.Policy));
        w.WriteNumber("slabs", o.Slabs);
        w.WriteNumber("partial", o.Partial);
        w.WriteNumber("cpu_slabs", o.CpuSlabs);
        w.WriteNumber("pages", o.Pages);
        w.WriteNumber("objects_moved", o.ObjectsMoved);
        w.WriteNumber("pages_recovered", o.PagesRecovered);
        w.WriteNumber("objects", o.Objects);
        w.WriteNumber("optimal_slabs", o.OptimalSlabs);
        if (o.ShrinkOnlySlabs is long s) w.WriteNumber("shrink_only_slabs", s);
        w.WriteNumber("bytes_moved", o.BytesMoved);
        w.WriteNumber("cpu_ns", o.CpuTime.Ticks * 100);
        if (o.NanosecondsPerMovedObject is double ns) w.WriteNumber("ns_per_moved_object", Math.Round(ns, 1));
        else w.WriteNull("ns_per_moved_object");
        w.WriteEndObject();
    }

    /// <summary>Bytes in binary units with one decimal: 512 B, 4.0 KiB, 1.2 MiB.</summary>
    internal static string Bytes(long b) =>
        b < 1024 ? $"{b} B"
        : b < 1024 * 1024 ? (b / 1024.0).ToString("0.0 'KiB'", CultureInfo.InvariantCulture)
        : (b / (1024.0 * 1024)).ToString("0.0 'MiB'", CultureInfo.InvariantCulture);

    /// <summary>A CPU time in µs below a millisecond, else in ms with two decimals.</summary>
    internal static string Cpu(TimeSpan t) =>
        t.Ticks < TimeSpan.TicksPerMillisecond
            ? (t.Ticks / 10.0).ToString("0 'µs'", CultureInfo.InvariantCulture)
            : t.TotalMilliseconds.ToString("0.00 'ms'", CultureInfo.InvariantCulture);

    public static void WriteTables(ReplayResult r, TextWriter output)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output),
            Ansi = ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
        });
        if (!ReferenceEquals(output, Console.Out) || Console.IsOutputRedirected) console.Profile.Width = 200;
        string I(long v) => v.ToString("N0", CultureInfo.InvariantCulture);
        string N(long v, string singular, string? plural = null) => Plural.Count(v, singular, plural);

        console.MarkupLine($"[bold]{Markup.Escape(r.FileName)}[/]: {N(r.Lines, "line")}, {N(r.Events, "slab event")} over {r.Seconds.ToString("0.###", CultureInfo.InvariantCulture)} s on {N(r.Cpus, "CPU")} ({Markup.Escape(r.CpusSource)})");
        long unseen = r.Caches.Sum(c => c.UnseenFrees);
        console.MarkupLine($"replayed {N(r.ReplayedEvents, "event")}; skipped {N(r.SkippedFrees, "free")} of {Plural.Noun(r.SkippedFrees, "an object", "objects")} allocated before the capture"
            + (unseen > 0 ? $"; {N(unseen, "free")} the trace missed (a pointer allocated again while live)" : "")
            + (r.OtherEvents > 0 ? $"; ignored {N(r.OtherEvents, "other event")}" : "")
            + (r.LargeKmallocs > 0 ? $"; {N(r.LargeKmallocs, "page-sized kmalloc")} not replayed" : "")
            + (r.NullPointers > 0 ? $"; {N(r.NullPointers, "NULL pointer")}" : ""));
        if (r.LostEvents > 0)
            console.MarkupLine($"[yellow]the kernel lost {N(r.LostEvents, "event")}: some objects will not pair up[/]");
        if (r.OutOfOrderEvents > 0)
            console.MarkupLine($"[yellow]{N(r.OutOfOrderEvents, "event")} {Plural.Noun(r.OutOfOrderEvents, "is", "are")} stamped earlier than an event before {Plural.Noun(r.OutOfOrderEvents, "it", "them")} (first at line {I(r.FirstOutOfOrderLine)}): "
                + "the input is not in time order (per_cpu files joined?), and the replay pairs by line order; sort it by timestamp first[/]");

        if (r.Events == 0)
        {
            WriteBadLines(r, console);   // nothing replayed: no empty tables (the command warns on stderr)
            return;
        }

        var t = new Table().Border(TableBorder.Rounded).Title("End of trace (as /sys/kernel/slab would show it)");
        foreach (var h in new[] { "cache", "objects", "slabs", "partial", "cpu", "objs/slab", "order", "optimal", "pages" })
            t.AddColumn(new TableColumn(h).RightAligned());
        t.Columns[0].LeftAligned();
        foreach (var c in Ordered(r).Where(c => c.Slabs > 0))
            t.AddRow(Markup.Escape(c.Name), I(c.Objects), I(c.Slabs), I(c.Partial), I(c.CpuSlabs), I(c.ObjectsPerSlab), I(c.Order), I(c.OptimalSlabs), I(c.Pages));
        console.Write(t);

        string what = r.DefragUsedRatio is int ratio ? $"reclaim-path defrag, defrag_used_ratio {ratio}" : "kmem_cache_shrink with SMO";
        var d = new Table().Border(TableBorder.Rounded).Title($"What-if: {what}");
        d.AddColumn("cache");
        d.AddColumn(new TableColumn("policy"));
        foreach (var h in new[] { "slabs", "partial", "moved", "copied", "CPU", "ns/moved", "pages", "recovered", "shrink alone" })
            d.AddColumn(new TableColumn(h).RightAligned());
        var totals = new Dictionary<DefragPolicy, (long Pages, long Recovered, long Moved, long Bytes, TimeSpan Cpu)>();
        foreach (var c in Ordered(r).Where(c => c.Slabs > 0))
        {
            if (!c.Movable)
            {
                d.AddRow(Markup.Escape(c.Name), "[grey]not movable[/]", I(c.Slabs), I(c.Partial), "0", "", "", "", I(c.Pages), "0", "");
                continue;
            }
            foreach (var o in c.AfterDefrag)
            {
                long shrinkPages = o.ShrinkOnlySlabs is long s ? c.Pages - (s << c.Order) : 0;
                d.AddRow(Markup.Escape(c.Name), PolicyName(o.Policy), I(o.Slabs), I(o.Partial), I(o.ObjectsMoved), Bytes(o.BytesMoved),
                    Cpu(o.CpuTime), o.NanosecondsPerMovedObject is double ns ? I((long)Math.Round(ns)) : "", I(o.Pages), I(o.PagesRecovered),
                    o.ShrinkOnlySlabs is null ? "" : N(shrinkPages, "page"));
                var tot = totals.GetValueOrDefault(o.Policy);
                totals[o.Policy] = (tot.Pages + o.Pages, tot.Recovered + o.PagesRecovered, tot.Moved + o.ObjectsMoved, tot.Bytes + o.BytesMoved, tot.Cpu + o.CpuTime);
            }
        }
        console.Write(d);
        long before = r.Caches.Sum(c => c.Pages);
        foreach (var (p, tot) in totals)
            console.MarkupLine($"{PolicyName(p)}: {N(before, "page")} held → {I(before - tot.Recovered)} after defrag: [bold]{N(tot.Recovered, "page")} recovered[/] ({(before == 0 ? 0 : 100.0 * tot.Recovered / before).ToString("0.#", CultureInfo.InvariantCulture)}%), {N(tot.Moved, "object")} moved"
                + (tot.Moved == 0 ? "" : $" ({Bytes(tot.Bytes)}) in {Cpu(tot.Cpu)} of CPU, {I((long)Math.Round(tot.Cpu.Ticks * 100.0 / tot.Moved))} ns per object"));
        foreach (var c in r.Caches.Where(c => c.GeometryNote is not null))
            console.MarkupLine($"[yellow]{Markup.Escape(c.Name)}: {Markup.Escape(c.GeometryNote!)}[/]");
        WriteBadLines(r, console);
    }

    private static void WriteBadLines(ReplayResult r, IAnsiConsole console)
    {
        if (r.BadLineCount == 0) return;
        console.MarkupLine($"[yellow]{Plural.Count(r.BadLineCount, "malformed line")} skipped[/], the first {Plural.Noun(r.BadLines.Count, "one")}:");
        foreach (var b in r.BadLines)
            console.MarkupLine($"  {Markup.Escape(r.FileName)}:{b.LineNumber}: {Markup.Escape(b.Reason)}: {Markup.Escape(b.Text)}");
    }
}
