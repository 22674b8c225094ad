using System.Globalization;
using System.Text;
using Slub.Trace;

namespace Slub.Cli.Replay;

/// <summary>
/// The <c>--plot</c> picture: <see cref="ReplayChart"/> rendered as hand-written SVG or as a PNG rasterized here
/// (<see cref="Raster"/>, <see cref="PngWriter"/>), with no image library.
/// </summary>
internal static class ReplayPlot
{
    /// <summary>Whether <paramref name="path"/> names a format <see cref="Write"/> can produce (.svg or .png).</summary>
    public static bool IsSupported(string path) =>
        path.EndsWith(".svg", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".png", StringComparison.OrdinalIgnoreCase);

    /// <summary>Writes the chart to <paramref name="path"/>, as PNG if it ends in .png, else as SVG.</summary>
    public static void Write(ReplayResult r, string path)
    {
        if (path.EndsWith(".png", StringComparison.OrdinalIgnoreCase)) File.WriteAllBytes(path, Png(r));
        else File.WriteAllText(path, Svg(r));
    }

    public static string Svg(ReplayResult r) => Svg(ReplayChart.Build(r));

    public static byte[] Png(ReplayResult r) => Png(ReplayChart.Build(r));

    public static string Svg(ReplayChart c)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.Append(inv, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{c.Width}\" height=\"{c.Height}\" viewBox=\"0 0 {c.Width} {c.Height}\" font-family=\"sans-serif\" font-size=\"11\">\n");
        sb.Append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
        foreach (var l in c.GridLines)
            sb.Append(inv, $"<line x1=\"{l.X1:0.#}\" y1=\"{l.Y1:0.#}\" x2=\"{l.X2:0.#}\" y2=\"{l.Y2:0.#}\" stroke=\"{l.Colour}\"/>\n");
        foreach (var f in c.Frames)
            sb.Append(inv, $"<rect x=\"{f.X:0.#}\" y=\"{f.Y:0.#}\" width=\"{f.Width:0.#}\" height=\"{f.Height:0.#}\" fill=\"none\" stroke=\"{f.Stroke}\"/>\n");
        foreach (var s in c.Series)
        {
            sb.Append(inv, $"<polyline fill=\"none\" stroke=\"{s.Colour}\" stroke-width=\"1.5\"{(s.Dashed ? " stroke-dasharray=\"4 3\"" : "")} points=\"");
            foreach (var (x, y) in s.Points) sb.Append(inv, $"{x:0.#},{y:0.#} ");
            sb.Append("\"/>\n");
        }
        foreach (var d in c.Dots)
            sb.Append(inv, $"<circle cx=\"{d.X:0.#}\" cy=\"{d.Y:0.#}\" r=\"{d.Radius:0.#}\" fill=\"{d.Colour}\"/>\n");
        foreach (var t in c.Texts)
        {
            sb.Append(inv, $"<text x=\"{t.X:0.#}\" y=\"{t.Y:0.#}\"");
            if (t.Anchor == Anchor.End) sb.Append(" text-anchor=\"end\"");
            if (t.Title) sb.Append(" font-size=\"14\"");
            if (t.Bold || t.Title) sb.Append(" font-weight=\"bold\"");
            if (t.Colour != "#000000") sb.Append(inv, $" fill=\"{t.Colour}\"");
            sb.Append(inv, $">{Esc(t.Text)}</text>\n");
        }
        sb.Append("</svg>\n");
        return sb.ToString();
    }

    public static byte[] Png(ReplayChart c)
    {
        var img = new Raster(c.Width, c.Height, Raster.Parse("#ffffff"));
        foreach (var l in c.GridLines) img.Line(l.X1, l.Y1, l.X2, l.Y2, Raster.Parse(l.Colour), thick: false, dashed: false);
        foreach (var f in c.Frames) img.Outline(f.X, f.Y, f.Width, f.Height, Raster.Parse(f.Stroke));
        foreach (var s in c.Series)
        {
            var colour = Raster.Parse(s.Colour);
            double dash = 0;
            for (int i = 1; i < s.Points.Count; i++)
                dash = img.Line(s.Points[i - 1].X, s.Points[i - 1].Y, s.Points[i].X, s.Points[i].Y, colour, thick: true, s.Dashed, dash);
        }
        foreach (var d in c.Dots) img.Disc(d.X, d.Y, d.Radius, Raster.Parse(d.Colour));
        foreach (var t in c.Texts)
        {
            bool bold = t.Bold || t.Title;
            double x = t.Anchor == Anchor.End ? t.X - BitmapFont.Width(t.Text, bold) : t.X;
            BitmapFont.Draw(img, (int)Math.Round(x), (int)Math.Round(t.Y), t.Text, Raster.Parse(t.Colour), bold);
        }
        return PngWriter.Encode(img.Width, img.Height, img.Pixels);
    }

    private static string Esc(string s) => s.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;").Replace("\"", "&quot;");
}
