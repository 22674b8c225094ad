using System.CommandLine;
using System.Text.RegularExpressions;
using Slub.Trace;
using Spectre.Console;

namespace Slub.Cli.Replay;

/// <summary><c>slub replay</c>: replay a kernel slab trace and show what SMO would recover.</summary>
internal static class ReplayCommand
{
    public static Command Create()
    {
        var trace = new Argument<string>("TRACE") { Description = "ftrace text of kmem:kmem_cache_alloc/free (and kmalloc/kfree): a file, a .gz, or - for standard input." };
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of tables." };
        var caches = new Option<string?>("--caches") { Description = "Replay only caches whose name matches this regular expression." };
        var geometry = new Option<string?>("--geometry") { Description = "A /sys/kernel/slab snapshot (directory per cache, or a 'cache/attribute value' file): slot size and order of the caches it has, and their cpu_partial and min_partial where it has those." };
        var ratio = NumberOptions.NullableInt("--defrag-used-ratio", "Run the reclaim-path defrag with this defrag_used_ratio (0..100) instead of kmem_cache_shrink.", min: 0, max: 100);
        var movable = new Option<string?>("--movable") { Description = "Treat only caches matching this regular expression as movable (default: all)." };
        var skipBad = new Option<bool>("--skip-bad") { Description = "Count malformed lines and report them at the end instead of stopping." };
        var plot = new Option<string?>("--plot") { Description = "Write an SVG or PNG (by the file name's extension) of slabs held vs. slabs needed over the trace for the top caches, with the pages defrag recovers." };
        var policy = new Option<string>("--policy") { Description = "Defrag policy of the what-if: fill-fullest (ours), empty-all (the series'), or both.", DefaultValueFactory = _ => "fill-fullest" };
        policy.AcceptOnlyFromAmong("fill-fullest", "empty-all", "both");
        var cpus = NumberOptions.NullableInt("--cpus", "CPUs of the traced machine, 1..4096 (default: the trace's '#P:' header or trace-cmd report's 'cpus=' line, else this machine's).", min: 1, max: 4096);
        var cpuPartial = new Option<string>("--cpu-partial") { Description = "Per-CPU partial limit: slabs (Linux 5.16+, default) or objects (older kernels, and the library's default).", DefaultValueFactory = _ => "slabs" };
        cpuPartial.AcceptOnlyFromAmong("slabs", "objects");
        var arena = NumberOptions.Int("--arena-gib", "Address space for the replayed caches, in GiB, 1..256 (only touched pages use memory).", defaultValue: 1, min: 1, max: 256);
        foreach (var o in new[] { caches, movable })
            o.Validators.Add(r =>
            {
                if (r.GetValueOrDefault<string?>() is not string s) return;
                try { _ = new Regex(s); }
                catch (ArgumentException e) { r.AddError($"{r.IdentifierToken?.Value ?? o.Name}: invalid regular expression: {e.Message}"); }
            });
        plot.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<string?>() is not string s) return;
            if (!ReplayPlot.IsSupported(s))
                r.AddError($"--plot: unsupported image format {(Path.GetExtension(s) is { Length: > 0 } ext ? $"'{ext}'" : "(no extension)")}: the file name must end in .svg or .png");
            // Checked now, not when the plot is written after a replay that may take minutes.
            else if (Path.GetDirectoryName(Path.GetFullPath(s)) is { } dir && !Directory.Exists(dir))
                r.AddError($"--plot: no directory {dir}");
        });

        var cmd = new Command("replay", "Replay a real kernel slab trace and report, per cache, the slabs held vs. needed and what SMO defrag would recover.")
        {
            trace, json, caches, geometry, ratio, movable, skipBad, plot, policy, cpus, arena, cpuPartial,
        };
        cmd.SetAction(pr =>
        {
            var args = new ReplayArguments(
                pr.GetValue(trace)!, pr.GetValue(json), pr.GetValue(caches), pr.GetValue(geometry), pr.GetValue(ratio),
                pr.GetValue(movable), pr.GetValue(skipBad), pr.GetValue(plot), pr.GetValue(policy)!, pr.GetValue(cpus), pr.GetValue(arena))
            {
                CpuPartialObjects = pr.GetValue(cpuPartial) == "objects",
            };
            return Run(args, Console.Out, Console.Error);
        });
        return cmd;
    }

    internal sealed record ReplayArguments(string Trace, bool Json, string? Caches, string? Geometry, int? DefragUsedRatio,
        string? Movable, bool SkipBad, string? Plot, string Policy, int? Cpus, int ArenaGib)
    {
        /// <summary>Use the pre-5.16 per-CPU partial limit (free objects) instead of the slab count.</summary>
        public bool CpuPartialObjects { get; init; }
    }

    /// <summary>Runs a replay and writes the report. Returns the exit code: 0, or 1 with the error on <paramref name="stderr"/>.</summary>
    internal static int Run(ReplayArguments a, TextWriter stdout, TextWriter stderr)
    {
        try
        {
            var options = new TraceReplayOptions
            {
                Caches = a.Caches is null ? null : new Regex(a.Caches, RegexOptions.CultureInvariant),
                Movable = a.Movable is null ? null : new Regex(a.Movable, RegexOptions.CultureInvariant),
                Geometry = a.Geometry is null ? null : SlabSnapshot.Load(a.Geometry),
                DefragUsedRatio = a.DefragUsedRatio,
                SkipBad = a.SkipBad,
                Cpus = a.Cpus,
                Policies = a.Policy switch
                {
                    "empty-all" => [DefragPolicy.EmptyAllCandidates],
                    "both" => [DefragPolicy.FillFullestFirst, DefragPolicy.EmptyAllCandidates],
                    _ => [DefragPolicy.FillFullestFirst],
                },
                RecordTimeline = a.Plot is not null,
                BytesPerNode = (long)a.ArenaGib << 30,
                CpuPartialCountsSlabs = !a.CpuPartialObjects,
            };
            ReplayResult result;
            using (var reader = TraceLineReader.Open(a.Trace))
            using (var replayer = new TraceReplayer(options))
                result = RunWithProgress(replayer, reader, stderr);

            if (result.Events == 0) WarnNoSlabEvents(result, stderr);
            foreach (var m in result.SizeMismatches) WarnSizeMismatch(result, m, stderr);
            if (a.Json) ReplayReportWriter.WriteJson(result, stdout);
            else ReplayReportWriter.WriteTables(result, stdout);
            if (a.Plot is not null)
            {
                ReplayPlot.Write(result, a.Plot);
                if (!a.Json) stdout.WriteLine($"plot written to {a.Plot}");
            }
            return 0;
        }
        catch (Exception e) when (e is TraceFormatException or TraceReplayException or FileNotFoundException or DirectoryNotFoundException
                                      or FormatException or InvalidDataException or IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"slub replay: {e.Message}");
            return 1;
        }
    }

    /// <summary>
    /// A trace without one slab event (an empty file, only comments, only other events) is a valid capture with
    /// nothing to replay, most likely taken without the kmem events enabled: warned about on stderr, exit code 0
    /// (an empty but valid capture is not an error to kernel tracing tools either), and the JSON report stays whole.
    /// </summary>
    private static void WarnNoSlabEvents(ReplayResult r, TextWriter stderr)
    {
        string name = r.FileName == "-" ? "standard input" : r.FileName;
        string what = r.Lines == 0 ? "the file is empty"
            : $"{Plural.Count(r.Lines, "line")} read, {Plural.Count(r.OtherEvents, "other event")}"
              + (r.BadLineCount > 0 ? $", {Plural.Count(r.BadLineCount, "malformed line")} skipped" : "");
        stderr.WriteLine($"slub replay: warning: {name} holds no slab events (kmem_cache_alloc, kmem_cache_free, kmalloc, kfree): {what}; "
                         + "nothing was replayed. Were the kmem events enabled during the capture?");
    }

    /// <summary>
    /// A cache whose events report two slot sizes (a trace joined from two boots or kernels, or an edited one): the
    /// replay keeps the first size for the whole cache, which the report would not show. Once per cache.
    /// </summary>
    private static void WarnSizeMismatch(ReplayResult r, SizeMismatch m, TextWriter stderr) =>
        stderr.WriteLine($"slub replay: warning: {r.FileName}:{m.LineNumber}: cache {m.Cache}: bytes_alloc={m.BytesAlloc}, but its first "
                         + $"event (line {m.FirstLine}) had bytes_alloc={m.FirstBytesAlloc}; the whole cache is replayed with "
                         + $"{m.FirstBytesAlloc}-byte slots (later events of other sizes in this cache are not reported)");

    private static ReplayResult RunWithProgress(TraceReplayer replayer, TraceLineReader reader, TextWriter stderr)
    {
        bool interactive = ReferenceEquals(stderr, Console.Error) && !Console.IsErrorRedirected;
        if (!interactive) return replayer.Run(reader);
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        ReplayResult? result = null;
        console.Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask($"replaying {Path.GetFileName(reader.FileName)}", maxValue: reader.Length ?? 1);
                task.IsIndeterminate = reader.Length is null;
                result = replayer.Run(reader, r =>
                {
                    if (r.Length is not null) task.Value = r.Position;
                    task.Description = $"replaying {Path.GetFileName(r.FileName)}: {r.LineNumber:N0} lines";
                });
                task.Value = task.MaxValue;
                task.StopTask();
            });
        return result!;
    }
}
