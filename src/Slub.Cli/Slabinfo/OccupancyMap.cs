using System.Text;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Slub.Cli.Slabinfo;

/// <summary>
/// <c>--map CACHE</c>: draws one cell per slab of a cache, shaded by how many of its objects are in use, so
/// fragmentation can be seen rather than computed. With <c>-s</c> the cache is shrunk and drawn again.
/// The per-slab data comes from the optional attribute <c>slab_occupancy</c>: the in-use count of each slab, separated
/// by spaces, in node-list order (e.g. <c>3 21 0 17</c>). The kernel has no such file, so the map needs a snapshot
/// or a live process that provides it.
/// </summary>
public static class OccupancyMap
{
    /// <summary>The attribute holding per-slab in-use counts.</summary>
    public const string AttributeName = "slab_occupancy";

    /// <summary>Cells per row of the map.</summary>
    public const int Columns = 32;

    internal static int Run(SlabinfoSettings o, ISlabSource source, TextWriter output)
    {
        var cache = Resolve(source, o.MapCache!);
        var console = CreateConsole(output);
        Draw(console, source, cache, "Occupancy of " + cache);
        if (o.Shrink)
        {
            try
            {
                source.WriteAttribute(cache, "shrink", "1\n");
            }
            catch (SlabSourceException)
            {
                throw new SlabinfoFatalException($"Cannot write to {cache}/shrink\n");
            }
            Draw(console, source, cache, "After shrink: " + cache);
        }
        return 0;
    }

    // An alias name maps to its cache directory; anything else must be a cache directory.
    private static string Resolve(ISlabSource source, string name)
    {
        foreach (var e in source.ListEntries())
        {
            if (e.Name != name)
                continue;
            if (e.Kind == SlabEntryKind.Cache)
                return name;
            if (e.Kind == SlabEntryKind.Alias && e.Target is { } t)
                return t[(t.LastIndexOf('/') + 1)..];
        }
        throw new SlabinfoFatalException($"{SlabinfoTool.ProgramName}: no cache named '{name}' in {source.Description}\n");
    }

    /// <summary>Parses the in-use counts of <c>slab_occupancy</c>.</summary>
    public static int[] ParseOccupancy(string text, string cache)
    {
        var words = text.Split([' ', '\n', '\t'], StringSplitOptions.RemoveEmptyEntries);
        var counts = new int[words.Length];
        for (var i = 0; i < words.Length; i++)
            if (!int.TryParse(words[i], out counts[i]) || counts[i] < 0)
                throw new SlabinfoFatalException($"{SlabinfoTool.ProgramName}: {cache}/{AttributeName}: '{words[i]}' is not an object count\n");
        return counts;
    }

    /// <summary>The shade of a slab with <paramref name="inUse"/> of <paramref name="capacity"/> objects used.</summary>
    public static (char Glyph, string Color) Shade(int inUse, int capacity)
    {
        if (inUse <= 0)
            return ('·', "grey");
        if (inUse >= capacity)
            return ('█', "green");
        var third = inUse * 3 / Math.Max(capacity, 1);
        return third switch
        {
            0 => ('░', "red"),
            1 => ('▒', "orange1"),
            _ => ('▓', "yellow"),
        };
    }

    private static void Draw(IAnsiConsole console, ISlabSource source, string cache, string title)
    {
        var text = source.ReadAttribute(cache, AttributeName)
            ?? throw new SlabinfoFatalException(
                $"{SlabinfoTool.ProgramName}: {source.Description} does not expose per-slab data for {cache} (no {AttributeName} attribute)\n");
        var counts = ParseOccupancy(text, cache);
        var perSlabText = source.ReadAttribute(cache, "objs_per_slab");
        var capacity = perSlabText is null ? 0 : (int)CNumbers.Atol(perSlabText);
        if (capacity <= 0)
            capacity = counts.DefaultIfEmpty(0).Max();

        var rows = new List<IRenderable>();
        for (var start = 0; start < counts.Length; start += Columns)
        {
            var line = new StringBuilder();
            foreach (var n in counts.Skip(start).Take(Columns))
            {
                var (glyph, color) = Shade(n, capacity);
                line.Append($"[{color}]{glyph}[/]");
            }
            rows.Add(new Markup(line.ToString()));
        }
        rows.Add(new Text(""));
        foreach (var summary in Summary(counts, capacity))
            rows.Add(new Text(summary));
        rows.Add(new Markup("[grey]·[/] empty  [red]░[/] <⅓  [orange1]▒[/] <⅔  [yellow]▓[/] <full  [green]█[/] full"));
        if (counts.Length == 0)
            rows.Insert(0, new Text("(no slabs)"));
        console.Write(new Panel(new Rows(rows)) { Header = new PanelHeader(Markup.Escape(title)) });
    }

    /// <summary>The two summary lines under the map: slabs, capacity and objects in use; full, partial and empty slabs.</summary>
    internal static string[] Summary(int[] counts, int capacity)
    {
        var full = counts.Count(n => n >= capacity && capacity > 0);
        var empty = counts.Count(n => n == 0);
        var inUse = counts.Sum(n => (long)n);
        var slots = (long)counts.Length * capacity;
        return
        [
            $"{counts.Length} {Plural.Noun(counts.Length, "slab")}, {capacity} {Plural.Noun(capacity, "object")} per slab, {inUse} {Plural.Noun(inUse, "object")} in use ({(slots == 0 ? 0 : inUse * 100 / slots)}% of slots)",
            $"{full} full, {counts.Length - full - empty} partial, {empty} empty",
        ];
    }

    private static IAnsiConsole CreateConsole(TextWriter output)
    {
        var interactive = ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected;
        return AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output),
            Ansi = interactive ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = interactive ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
        });
    }
}
