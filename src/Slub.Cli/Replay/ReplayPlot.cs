using System.Globalization;
using System.Text;
using Slub.Trace;

namespace Slub.Cli.Replay;

/// <summary>
/// The <c>--plot</c> picture, as hand-written SVG: one panel per top cache with the slabs it held and the slabs
/// its live objects needed over the trace's time, and where defrag would bring it at the end.
/// </summary>
internal static class ReplayPlot
{
    private const int PanelWidth = 520, PanelHeight = 220, Columns = 2, MaxPanels = 6;
    private const int Left = 60, Right = 110, Top = 34, Bottom = 34;

    public static string Svg(ReplayResult r)
    {
        var samples = r.Timeline;
        // Top caches: the most slabs held at any point of the trace.
        var top = r.Caches
            .Select((c, i) => (Cache: c, Index: i, Peak: samples.Where(s => i < s.Slabs.Length).Select(s => s.Slabs[i]).DefaultIfEmpty(c.Slabs).Max()))
            .Where(t => t.Peak > 0)
            .OrderByDescending(t => t.Peak).ThenBy(t => t.Cache.Name, StringComparer.Ordinal)
            .Take(MaxPanels).ToList();
        int rows = Math.Max(1, (top.Count + Columns - 1) / Columns);
        int width = PanelWidth * Columns, height = PanelHeight * rows + 40;
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"11\">\n");
        sb.Append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
        long recovered = r.Caches.Sum(c => c.AfterDefrag.Count > 0 ? c.AfterDefrag[0].PagesRecovered : 0);
        long pages = r.Caches.Sum(c => c.Pages);
        sb.Append(CultureInfo.InvariantCulture, $"<text x=\"10\" y=\"20\" font-size=\"14\" font-weight=\"bold\">{Esc(Path.GetFileName(r.FileName))}: slabs held vs. slabs needed; defrag recovers {recovered:N0} of {pages:N0} pages</text>\n");
        if (top.Count == 0)
            sb.Append("<text x=\"10\" y=\"50\">no cache held any slab</text>\n");
        for (int p = 0; p < top.Count; p++)
        {
            var (cache, index, peak) = top[p];
            double ox = (p % Columns) * PanelWidth, oy = 40 + (p / Columns) * PanelHeight;
            Panel(sb, r, cache, index, peak, ox, oy);
        }
        sb.Append("</svg>\n");
        return sb.ToString();
    }

    private static void Panel(StringBuilder sb, ReplayResult r, CacheReplayResult cache, int index, long peak, double ox, double oy)
    {
        var inv = CultureInfo.InvariantCulture;
        double w = PanelWidth - Left - Right, h = PanelHeight - Top - Bottom;
        double x0 = ox + Left, y0 = oy + Top;
        long t0 = r.FirstTimestampNs, t1 = Math.Max(r.LastTimestampNs, t0 + 1);
        double yMax = NiceCeiling(Math.Max(peak, 1));
        double X(long ts) => x0 + w * (ts - t0) / (t1 - t0);
        double Y(double v) => y0 + h - h * v / yMax;

        var outcome = cache.AfterDefrag.Count > 0 ? cache.AfterDefrag[0] : null;
        sb.Append(inv, $"<text x=\"{x0:0.#}\" y=\"{oy + 20:0.#}\" font-weight=\"bold\">{Esc(cache.Name)}</text>\n");
        sb.Append(inv, $"<text x=\"{x0 + w:0.#}\" y=\"{oy + 20:0.#}\" text-anchor=\"end\">{cache.ObjectsPerSlab} objs per order-{cache.Order} slab</text>\n");
        sb.Append(inv, $"<rect x=\"{x0:0.#}\" y=\"{y0:0.#}\" width=\"{w:0.#}\" height=\"{h:0.#}\" fill=\"none\" stroke=\"#999\"/>\n");
        for (int k = 0; k <= 4; k++)
        {
            double v = yMax * k / 4, y = Y(v);
            sb.Append(inv, $"<line x1=\"{x0 - 4:0.#}\" y1=\"{y:0.#}\" x2=\"{x0 + w:0.#}\" y2=\"{y:0.#}\" stroke=\"#eee\"/>");
            sb.Append(inv, $"<text x=\"{x0 - 6:0.#}\" y=\"{y + 4:0.#}\" text-anchor=\"end\">{v:0}</text>\n");
        }
        sb.Append(inv, $"<text x=\"{x0:0.#}\" y=\"{y0 + h + 16:0.#}\">0 s</text>");
        sb.Append(inv, $"<text x=\"{x0 + w:0.#}\" y=\"{y0 + h + 16:0.#}\" text-anchor=\"end\">{(t1 - t0) / 1e9:0.###} s</text>\n");

        var held = new StringBuilder();
        var needed = new StringBuilder();
        foreach (var s in r.Timeline)
        {
            if (index >= s.Slabs.Length) continue;
            double x = X(s.TimestampNs);
            long need = (s.LiveObjects[index] + cache.ObjectsPerSlab - 1) / cache.ObjectsPerSlab;
            held.Append(inv, $"{x:0.#},{Y(s.Slabs[index]):0.#} ");
            needed.Append(inv, $"{x:0.#},{Y(need):0.#} ");
        }
        sb.Append(inv, $"<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"{held}\"/>\n");
        sb.Append(inv, $"<polyline fill=\"none\" stroke=\"#2ca02c\" stroke-width=\"1.5\" stroke-dasharray=\"4 3\" points=\"{needed}\"/>\n");

        double lx = x0 + w + 8;
        sb.Append(inv, $"<text x=\"{lx:0.#}\" y=\"{y0 + 10:0.#}\" fill=\"#1f77b4\">held {cache.Slabs:N0}</text>\n");
        sb.Append(inv, $"<text x=\"{lx:0.#}\" y=\"{y0 + 24:0.#}\" fill=\"#2ca02c\">needed {(cache.LiveObjects + cache.ObjectsPerSlab - 1) / cache.ObjectsPerSlab:N0}</text>\n");
        if (outcome is not null)
        {
            double y = Y(outcome.Slabs);
            sb.Append(inv, $"<circle cx=\"{x0 + w:0.#}\" cy=\"{y:0.#}\" r=\"4\" fill=\"#d62728\"/>\n");
            sb.Append(inv, $"<text x=\"{lx:0.#}\" y=\"{y0 + 38:0.#}\" fill=\"#d62728\">defrag {outcome.Slabs:N0}</text>\n");
            sb.Append(inv, $"<text x=\"{lx:0.#}\" y=\"{y0 + 52:0.#}\" fill=\"#d62728\">+{outcome.PagesRecovered:N0} pages</text>\n");
            sb.Append(inv, $"<text x=\"{lx:0.#}\" y=\"{y0 + 66:0.#}\" fill=\"#d62728\">{outcome.ObjectsMoved:N0} moved</text>\n");
        }
        else sb.Append(inv, $"<text x=\"{lx:0.#}\" y=\"{y0 + 38:0.#}\" fill=\"#777\">not movable</text>\n");
    }

    private static double NiceCeiling(double v)
    {
        double mag = Math.Pow(10, Math.Floor(Math.Log10(v)));
        foreach (double m in new[] { 1, 2, 2.5, 5, 10 })
            if (m * mag >= v) return m * mag;
        return 10 * mag;
    }

    private static string Esc(string s) => s.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;").Replace("\"", "&quot;");
}
