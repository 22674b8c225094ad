using System.Text.RegularExpressions;

namespace Slub.Cli.Slabinfo;

/// <summary>
/// <c>slub slabinfo</c>: the kernel's tools/vm/slabinfo, option for option and byte for byte, reading the kernel's
/// sysfs, an exported snapshot (<c>--sysfs DIR</c>) or a live Slub.NET process (<c>--pid PID</c>).
/// </summary>
public static class SlabinfoTool
{
    /// <summary>argv[0] as the C tool prints it in its messages.</summary>
    public const string ProgramName = "slabinfo";

    /// <summary>Creates the source for the settings; tests replace it.</summary>
    public delegate ISlabSource? SourceFactory(SlabinfoSettings settings);

    /// <summary>Runs the tool on <paramref name="args"/> (the words after "slabinfo") and returns the exit code.</summary>
    public static int Run(IReadOnlyList<string> args, TextWriter output, TextWriter error, SourceFactory? sources = null)
    {
        try
        {
            return RunCore(args, output, error, sources ?? DefaultSource);
        }
        catch (SlabinfoFatalException e)
        {
            output.Flush();
            error.Write(e.Message);
            return 1;
        }
        catch (SlabSourceException e)
        {
            output.Flush();
            error.Write($"{ProgramName}: {e.Message}\n");
            return 1;
        }
        finally
        {
            output.Flush();
            error.Flush();
        }
    }

    private static ISlabSource? DefaultSource(SlabinfoSettings o)
    {
        if (o.Pid is { } pid)
            return new LiveSlabSource(pid);
        if (o.SysfsDirectory is { } dir)
        {
            if (!Directory.Exists(dir))
                throw new SlabinfoFatalException($"{ProgramName}: no slab directory at '{dir}' (--sysfs expects an exported /sys/kernel/slab tree)\n");
            return new DirectorySlabSource(dir);
        }
        return DirectorySlabSource.OpenKernel();
    }

    private static int RunCore(IReadOnlyList<string> args, TextWriter output, TextWriter error, SourceFactory sources)
    {
        var o = new SlabinfoSettings();
        var rest = ExtractPortOptions(args, o);
        var getopt = new Getopt(ProgramName, rest, SlabinfoDialects.OptionString(o.Dialect),
            SlabinfoDialects.LongOptions(o.Dialect), error);
        int c;
        while ((c = getopt.Next()) != -1)
        {
            if (!Apply(o, (char)c, getopt.OptArg))
                // Like the C tool this prints optopt, which getopt sets only on errors: an option letter that is
                // in the option string but has no case (-p, or --partial in the current tool) prints a NUL byte.
                throw new SlabinfoFatalException($"{ProgramName}: Invalid option '{getopt.OptOpt}'\n");
            if (c == 'h')
            {
                output.Write(UsageText.For(o.Dialect));
                return 0;
            }
        }
        if (!o.ShowSlab && !o.ShowAlias && !o.ShowTrack && !o.ShowReport && !o.Validate && !o.Shrink && !o.SetDebug && !o.ShowOps)
            o.ShowSlab = true;
        if (getopt.Operands.Count > 0)
            o.Pattern = getopt.Operands[0];
        Regex pattern;
        try
        {
            pattern = PosixBasicRegex.Compile(o.Pattern);
        }
        catch (BrePatternException e)
        {
            throw new SlabinfoFatalException($"{ProgramName}: Invalid pattern '{o.Pattern}' code {e.Code}\n");
        }
        if (o.Json && (o.Shrink || o.Validate || o.SetDebug))
            throw new SlabinfoFatalException($"{ProgramName}: --json describes listings; it cannot be combined with -s, -v or -d\n");

        var source = sources(o) ?? throw new SlabinfoFatalException("SYSFS support for SLUB not active\n");
        try
        {
            if (o.MapCache is not null)
                return OccupancyMap.Run(o, source, output);
            var tree = new SlabTreeReader(source, o.Dialect, pattern).Read();
            var pageSize = (source as DirectorySlabSource)?.RecordedPageSize ?? Environment.SystemPageSize;
            var run = new SlabinfoRun(o, source, tree, pageSize, output, error);
            if (o.Json)
            {
                SlabinfoJson.Write(run);
                return 0;
            }
            Dispatch(run);
            return 0;
        }
        finally
        {
            (source as IDisposable)?.Dispose();
        }
    }

    /// <summary>Takes this port's own options (--sysfs, --pid, --compat, --json, --map) out of the argument list,
    /// before the C tool's options are parsed. "--" ends them as it ends getopt's options.</summary>
    private static List<string> ExtractPortOptions(IReadOnlyList<string> args, SlabinfoSettings o)
    {
        var rest = new List<string>();
        for (var i = 0; i < args.Count; i++)
        {
            var a = args[i];
            if (a == "--")
            {
                rest.AddRange(args.Skip(i));
                break;
            }
            string? Value(string name)
            {
                if (a.StartsWith(name + "=", StringComparison.Ordinal))
                    return a[(name.Length + 1)..];
                if (i + 1 < args.Count)
                    return args[++i];
                throw new SlabinfoFatalException($"{ProgramName}: option '{name}' requires an argument\n");
            }
            bool Is(string name) => a == name || a.StartsWith(name + "=", StringComparison.Ordinal);

            if (Is("--sysfs"))
                o.SysfsDirectory = Value("--sysfs");
            else if (Is("--pid"))
                o.Pid = int.TryParse(Value("--pid"), out var pid) && pid > 0 ? pid
                    : throw new SlabinfoFatalException($"{ProgramName}: --pid expects a process id\n");
            else if (Is("--compat"))
                o.Dialect = Value("--compat") switch
                {
                    "smo" => SlabinfoDialect.Smo,
                    "current" => SlabinfoDialect.Current,
                    var other => throw new SlabinfoFatalException($"{ProgramName}: unknown --compat '{other}' (use 'smo' or 'current')\n"),
                };
            else if (a == "--json")
                o.Json = true;
            else if (Is("--map"))
                o.MapCache = Value("--map");
            else
                rest.Add(a);
        }
        if (o.SysfsDirectory is not null && o.Pid is not null)
            throw new SlabinfoFatalException($"{ProgramName}: --sysfs and --pid name two different sources; give one\n");
        return rest;
    }

    // The option switch of main(). Returns false for what the C tool's default case rejects.
    private static bool Apply(SlabinfoSettings o, char c, string? arg)
    {
        var smo = o.Dialect == SlabinfoDialect.Smo;
        switch (c)
        {
            case '1': o.ShowSingleRef = true; break;
            case 'a': o.ShowAlias = true; break;
            case 'A': o.SortActive = true; break;
            case 'B': o.ShowBytes = true; break;
            case 'C' when smo: o.ShowCtor = true; break;
            case 'M' when smo: o.ShowMovable = true; break;
            case 'P' when !smo: o.SortPartial = true; break;
            case 'd':
                o.SetDebug = true;
                if (!DebugFlags.Scan(o, arg))
                    throw new SlabinfoFatalException($"Invalid debug option '{arg}'\n");
                break;
            case 'D': o.ShowActivity = true; break;
            case 'e': o.ShowEmpty = true; break;
            case 'f': o.ShowFirstAlias = true; break;
            case 'h': break;
            case 'i': o.ShowInverted = true; break;
            case 'l': o.ShowSlab = true; break;
            case 'L': o.SortLoss = true; break;
            case 'n': o.ShowNuma = true; break;
            case 'N':
                if (arg is not null)
                    o.OutputLines = Math.Max(1, unchecked((int)CNumbers.Atol(arg)));
                break;
            case 'o': o.ShowOps = true; break;
            case 'r': o.ShowReport = true; break;
            case 's': o.Shrink = true; break;
            case 'S': o.SortSize = true; break;
            case 't': o.ShowTrack = true; break;
            case 'T': o.ShowTotals = true; break;
            case 'U': o.UnreclaimOnly = true; break;
            case 'v': o.Validate = true; break;
            case 'X':
                if (o.OutputLines == -1)
                    o.OutputLines = 1;
                o.ExtendedTotals = true;
                o.ShowBytes = true;
                break;
            case 'z': o.SkipZero = false; break;
            default: return false;
        }
        return true;
    }

    private static void Dispatch(SlabinfoRun run)
    {
        var o = run.Settings;
        if (o.ShowAlias)
        {
            AliasWriter.Aliases(run);
        }
        else if (o.ExtendedTotals)
        {
            ExtendedTotals(run);
        }
        else if (o.ShowTotals)
        {
            TotalsWriter.Totals(run);
        }
        else
        {
            SlabOrdering.LinkSlabs(run.Tree);
            SlabOrdering.RenameSlabs(run.Tree, o.ShowFirstAlias);
            SlabOrdering.SortSlabs(run);
            OutputSlabs(run);
        }
    }

    /// <summary>The caches output_slabs() visits: -N counts every cache looked at, shown or not.</summary>
    internal static IEnumerable<SlabCache> Visited(SlabinfoRun run)
    {
        var lines = run.Settings.OutputLines;
        foreach (var s in run.Tree.Caches)
        {
            if (lines == 0)
                yield break;
            if (lines != -1)
                lines--;
            yield return s;
        }
    }

    private static void OutputSlabs(SlabinfoRun run)
    {
        var o = run.Settings;
        foreach (var s in Visited(run))
        {
            if (o.ShowNuma) NumaWriter.Numa(run, s, report: false);
            else if (o.ShowTrack) ReportWriter.Tracking(run, s);
            else if (o.Validate) { if (s.Name != "*") run.SetObj(s, "validate", 1); }
            else if (o.Shrink) { if (s.Name != "*") run.SetObj(s, "shrink", 1); }
            else if (o.SetDebug) DebugFlags.Apply(run, s);
            else if (o.ShowOps) ReportWriter.Ops(run, s);
            else if (o.ShowSlab) ListingWriter.Row(run, s);
            else if (o.ShowReport) ReportWriter.Report(run, s);
        }
    }

    /// <summary>The sort sections of -X, in order (the current tool adds "partial").</summary>
    internal static IEnumerable<(string Heading, string Key, bool Loss, bool Size, bool Partial)> ExtendedSections(SlabinfoRun run)
    {
        yield return ("\nSlabs sorted by size\n--------------------\n", "size", false, true, false);
        yield return ("\nSlabs sorted by loss\n--------------------\n", "loss", true, false, false);
        if (!run.IsSmo)
            yield return ("\nSlabs sorted by number of partial slabs\n" + new string('-', 39) + "\n", "partial", false, false, true);
    }

    private static void ExtendedTotals(SlabinfoRun run)
    {
        TotalsWriter.Totals(run);
        SlabOrdering.LinkSlabs(run.Tree);
        SlabOrdering.RenameSlabs(run.Tree, run.Settings.ShowFirstAlias);
        var first = true;
        foreach (var section in ExtendedSections(run))
        {
            run.Out.Write(section.Heading);
            // The series' version resets the header counter only before the second section.
            if (!first || !run.IsSmo)
                run.Line = 0;
            first = false;
            SetSort(run.Settings, section.Loss, section.Size, section.Partial);
            SlabOrdering.SortSlabs(run);
            OutputSlabs(run);
        }
        run.Out.Write("\n");
    }

    internal static void SetSort(SlabinfoSettings o, bool loss, bool size, bool partial)
    {
        o.SortLoss = loss;
        o.SortSize = size;
        o.SortPartial = partial;
    }
}
