using System.Globalization;
using Slub.Trace;

namespace Slub.Cli.Replay;

/// <summary>
/// The <c>--plot</c> picture as a renderer-neutral model in pixel coordinates: one panel per top cache with the
/// slabs it held and the slabs its live objects needed over the trace's time, and where defrag would bring it at
/// the end. <see cref="ReplayPlot"/> renders it as SVG and as PNG, so the two formats cannot disagree.
/// </summary>
internal sealed class ReplayChart
{
    public const string HeldColour = "#1f77b4", NeededColour = "#2ca02c", DefragColour = "#d62728";
    private const string FrameColour = "#999999", GridColour = "#eeeeee", MutedColour = "#777777", TextColour = "#000000";
    private const int PanelWidth = 520, PanelHeight = 220, Columns = 2, MaxPanels = 6;
    private const int Left = 60, Right = 110, Top = 34, Bottom = 34;

    public int Width { get; private init; }
    public int Height { get; private init; }
    /// <summary>Plot frames, drawn with a 1-pixel outline.</summary>
    public List<ChartRect> Frames { get; } = [];
    /// <summary>Horizontal grid lines with their tick, drawn under the series.</summary>
    public List<ChartLine> GridLines { get; } = [];
    /// <summary>One polyline per quantity per panel: slabs held (solid) and slabs needed (dashed).</summary>
    public List<ChartSeries> Series { get; } = [];
    /// <summary>The slabs after defrag, at the right edge of each panel.</summary>
    public List<ChartDot> Dots { get; } = [];
    /// <summary>Title, panel headings, axis labels and the legend; <see cref="ChartText.Y"/> is the baseline.</summary>
    public List<ChartText> Texts { get; } = [];

    public static ReplayChart Build(ReplayResult r)
    {
        var samples = r.Timeline;
        // Top caches: the most slabs held at any point of the trace.
        var top = r.Caches
            .Select((c, i) => (Cache: c, Index: i, Peak: samples.Where(s => i < s.Slabs.Length).Select(s => s.Slabs[i]).DefaultIfEmpty(c.Slabs).Max()))
            .Where(t => t.Peak > 0)
            .OrderByDescending(t => t.Peak).ThenBy(t => t.Cache.Name, StringComparer.Ordinal)
            .Take(MaxPanels).ToList();
        int rows = Math.Max(1, (top.Count + Columns - 1) / Columns);
        var chart = new ReplayChart { Width = PanelWidth * Columns, Height = PanelHeight * rows + 40 };
        long recovered = r.Caches.Sum(c => c.AfterDefrag.Count > 0 ? c.AfterDefrag[0].PagesRecovered : 0);
        long pages = r.Caches.Sum(c => c.Pages);
        chart.Texts.Add(new ChartText(10, 20, Invariant($"{Path.GetFileName(r.FileName)}: slabs held vs. slabs needed; defrag recovers {recovered:N0} of {Plural.Count(pages, "page")}"), TextColour, Title: true));
        if (top.Count == 0)
            chart.Texts.Add(new ChartText(10, 50, "no cache held any slab", TextColour));
        for (int p = 0; p < top.Count; p++)
        {
            var (cache, index, peak) = top[p];
            chart.Panel(r, cache, index, peak, (p % Columns) * PanelWidth, 40 + (p / Columns) * PanelHeight);
        }
        return chart;
    }

    private void Panel(ReplayResult r, CacheReplayResult cache, int index, long peak, double ox, double oy)
    {
        double w = PanelWidth - Left - Right, h = PanelHeight - Top - Bottom;
        double x0 = ox + Left, y0 = oy + Top;
        long t0 = r.FirstTimestampNs, t1 = Math.Max(r.LastTimestampNs, t0 + 1);
        double yMax = NiceCeiling(Math.Max(peak, 1));
        double X(long ts) => x0 + w * (ts - t0) / (t1 - t0);
        double Y(double v) => y0 + h - h * v / yMax;

        Texts.Add(new ChartText(x0, oy + 20, cache.Name, TextColour, Bold: true));
        Texts.Add(new ChartText(x0 + w, oy + 20, Invariant($"{Plural.Count(cache.ObjectsPerSlab, "obj")} per order-{cache.Order} slab"), TextColour, Anchor.End));
        Frames.Add(new ChartRect(x0, y0, w, h, FrameColour));
        for (int k = 0; k <= 4; k++)
        {
            double v = yMax * k / 4, y = Y(v);
            GridLines.Add(new ChartLine(x0 - 4, y, x0 + w, y, GridColour));
            Texts.Add(new ChartText(x0 - 6, y + 4, Invariant($"{v:0}"), TextColour, Anchor.End));
        }
        Texts.Add(new ChartText(x0, y0 + h + 16, "0 s", TextColour));
        Texts.Add(new ChartText(x0 + w, y0 + h + 16, Invariant($"{(t1 - t0) / 1e9:0.###} s"), TextColour, Anchor.End));

        var held = new List<(double X, double Y)>();
        var needed = new List<(double X, double Y)>();
        foreach (var s in r.Timeline)
        {
            if (index >= s.Slabs.Length) continue;
            double x = X(s.TimestampNs);
            long need = (s.LiveObjects[index] + cache.ObjectsPerSlab - 1) / cache.ObjectsPerSlab;
            held.Add((x, Y(s.Slabs[index])));
            needed.Add((x, Y(need)));
        }
        Series.Add(new ChartSeries(held, HeldColour, Dashed: false));
        Series.Add(new ChartSeries(needed, NeededColour, Dashed: true));

        double lx = x0 + w + 8;
        Texts.Add(new ChartText(lx, y0 + 10, Invariant($"held {cache.Slabs:N0}"), HeldColour));
        Texts.Add(new ChartText(lx, y0 + 24, Invariant($"needed {(cache.LiveObjects + cache.ObjectsPerSlab - 1) / cache.ObjectsPerSlab:N0}"), NeededColour));
        if (cache.AfterDefrag.Count > 0)
        {
            var outcome = cache.AfterDefrag[0];
            Dots.Add(new ChartDot(x0 + w, Y(outcome.Slabs), 4, DefragColour));
            Texts.Add(new ChartText(lx, y0 + 38, Invariant($"defrag {outcome.Slabs:N0}"), DefragColour));
            Texts.Add(new ChartText(lx, y0 + 52, $"+{Plural.Count(outcome.PagesRecovered, "page")}", DefragColour));
            Texts.Add(new ChartText(lx, y0 + 66, Invariant($"{outcome.ObjectsMoved:N0} moved"), DefragColour));
        }
        else Texts.Add(new ChartText(lx, y0 + 38, "not movable", MutedColour));
    }

    private static double NiceCeiling(double v)
    {
        double mag = Math.Pow(10, Math.Floor(Math.Log10(v)));
        foreach (double m in new[] { 1, 2, 2.5, 5, 10 })
            if (m * mag >= v) return m * mag;
        return 10 * mag;
    }

    private static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}

internal enum Anchor { Start, End }

/// <summary>A line of text; <paramref name="Y"/> is its baseline, <paramref name="X"/> its start or end per <paramref name="Anchor"/>.</summary>
internal sealed record ChartText(double X, double Y, string Text, string Colour, Anchor Anchor = Anchor.Start, bool Bold = false, bool Title = false);

internal sealed record ChartLine(double X1, double Y1, double X2, double Y2, string Colour);

internal sealed record ChartRect(double X, double Y, double Width, double Height, string Stroke);

internal sealed record ChartSeries(IReadOnlyList<(double X, double Y)> Points, string Colour, bool Dashed);

internal sealed record ChartDot(double X, double Y, double Radius, string Colour);
