using System.Globalization;

namespace Slub.Cli.Replay;

/// <summary>An RGB pixel buffer with the few drawing operations the replay chart needs: lines, outlines, discs, pixels.</summary>
internal sealed class Raster
{
    private const double Snap = 1e-9;

    public int Width { get; }
    public int Height { get; }
    /// <summary>Row-major, 3 bytes (R, G, B) a pixel.</summary>
    public byte[] Pixels { get; }

    public Raster(int width, int height, (byte R, byte G, byte B) background)
    {
        Width = width;
        Height = height;
        Pixels = new byte[checked(width * height * 3)];
        for (int i = 0; i < Pixels.Length; i += 3)
            (Pixels[i], Pixels[i + 1], Pixels[i + 2]) = background;
    }

    /// <summary>Parses <c>#rrggbb</c>.</summary>
    public static (byte R, byte G, byte B) Parse(string colour)
    {
        if (colour.Length != 7 || colour[0] != '#') throw new FormatException($"not a #rrggbb colour: {colour}");
        int v = int.Parse(colour.AsSpan(1), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        return ((byte)(v >> 16), (byte)(v >> 8), (byte)v);
    }

    public (byte R, byte G, byte B) Get(int x, int y)
    {
        int i = (y * Width + x) * 3;
        return (Pixels[i], Pixels[i + 1], Pixels[i + 2]);
    }

    /// <summary>Sets one pixel; points outside the image are ignored.</summary>
    public void Set(int x, int y, (byte R, byte G, byte B) c)
    {
        if ((uint)x >= (uint)Width || (uint)y >= (uint)Height) return;
        int i = (y * Width + x) * 3;
        (Pixels[i], Pixels[i + 1], Pixels[i + 2]) = c;
    }

    /// <summary>
    /// A straight line, stepped along its longer axis. <paramref name="thick"/> makes it 2 pixels wide (the SVG's
    /// 1.5); <paramref name="dashed"/> draws 4 on, 3 off like the SVG's dash array, continuing the pattern from
    /// <paramref name="dashOffset"/> so a polyline's dashes run on across its vertices. Returns the offset to continue with.
    /// </summary>
    public double Line(double x1, double y1, double x2, double y2, (byte, byte, byte) c, bool thick, bool dashed, double dashOffset = 0)
    {
        double dx = x2 - x1, dy = y2 - y1, length = Math.Sqrt(dx * dx + dy * dy);
        int steps = Math.Max(1, (int)Math.Ceiling(Math.Max(Math.Abs(dx), Math.Abs(dy))));
        bool steep = Math.Abs(dy) > Math.Abs(dx);
        for (int i = 0; i <= steps; i++)
        {
            double t = (double)i / steps;
            if (dashed && (dashOffset + t * length) % 7 >= 4) continue;
            // The nudge keeps an exact pixel boundary (60 + 350 * 177/350 evaluating to 236.99999…) from
            // landing on the pixel before and leaving a hole in a straight line.
            int x = (int)Math.Floor(x1 + dx * t + Snap), y = (int)Math.Floor(y1 + dy * t + Snap);
            Set(x, y, c);
            if (thick)
            {
                if (steep) Set(x + 1, y, c);
                else Set(x, y + 1, c);
            }
        }
        return dashOffset + length;
    }

    /// <summary>A 1-pixel rectangle outline whose edges pass through the given corners, like an SVG stroke of 1.</summary>
    public void Outline(double x, double y, double w, double h, (byte, byte, byte) c)
    {
        Line(x, y, x + w, y, c, thick: false, dashed: false);
        Line(x, y + h, x + w, y + h, c, thick: false, dashed: false);
        Line(x, y, x, y + h, c, thick: false, dashed: false);
        Line(x + w, y, x + w, y + h, c, thick: false, dashed: false);
    }

    /// <summary>A filled circle: every pixel whose centre lies within <paramref name="r"/> of (<paramref name="cx"/>, <paramref name="cy"/>).</summary>
    public void Disc(double cx, double cy, double r, (byte, byte, byte) c)
    {
        for (int y = (int)Math.Floor(cy - r); y <= (int)Math.Ceiling(cy + r); y++)
            for (int x = (int)Math.Floor(cx - r); x <= (int)Math.Ceiling(cx + r); x++)
            {
                double ddx = x + 0.5 - cx, ddy = y + 0.5 - cy;
                if (ddx * ddx + ddy * ddy <= r * r) Set(x, y, c);
            }
    }
}
