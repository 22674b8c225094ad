using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using Slub.Cli.Replay;
using Slub.Trace;

namespace Slub.Tests.Replay;

/// <summary>A strict little PNG reader for the tests: checks the signature, every chunk's CRC, and the IDAT size.</summary>
internal sealed record PngFile(int Width, int Height, byte ColourType, byte[] Scanlines, List<string> Chunks)
{
    public static PngFile Read(byte[] file)
    {
        Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }, file[..8]);
        var chunks = new List<string>();
        var idat = new MemoryStream();
        int width = 0, height = 0;
        byte colourType = 0;
        int p = 8;
        while (p < file.Length)
        {
            int length = BinaryPrimitives.ReadInt32BigEndian(file.AsSpan(p));
            string type = Encoding.ASCII.GetString(file, p + 4, 4);
            var data = file.AsSpan(p + 8, length);
            uint crc = BinaryPrimitives.ReadUInt32BigEndian(file.AsSpan(p + 8 + length));
            Assert.True(BitwiseCrc32(file.AsSpan(p + 4, 4 + length)) == crc, $"bad CRC on {type}");
            chunks.Add(type);
            if (type == "IHDR")
            {
                Assert.Equal(13, length);
                width = BinaryPrimitives.ReadInt32BigEndian(data);
                height = BinaryPrimitives.ReadInt32BigEndian(data[4..]);
                Assert.Equal(8, data[8]);
                colourType = data[9];
                Assert.Equal([0, 0, 0], data[10..13].ToArray());
            }
            else if (type == "IDAT") idat.Write(data);
            p += 12 + length;
        }
        Assert.Equal(file.Length, p);
        Assert.Equal("IHDR", chunks[0]);
        Assert.Equal("IEND", chunks[^1]);
        Assert.Equal(2, colourType);
        idat.Position = 0;
        using var z = new ZLibStream(idat, CompressionMode.Decompress);
        var raw = new MemoryStream();
        z.CopyTo(raw);
        Assert.Equal((long)height * (1 + width * 3), raw.Length);
        return new PngFile(width, height, colourType, raw.ToArray(), chunks);
    }

    /// <summary>The pixel at (x, y), assuming filter type 0 on every row (checked).</summary>
    public (byte R, byte G, byte B) Pixel(int x, int y)
    {
        int row = y * (1 + Width * 3);
        Assert.Equal(0, Scanlines[row]);
        int i = row + 1 + x * 3;
        return (Scanlines[i], Scanlines[i + 1], Scanlines[i + 2]);
    }

    /// <summary>CRC-32 bit by bit, independent of the encoder's table.</summary>
    public static uint BitwiseCrc32(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            c ^= b;
            for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320 & (uint)-(int)(c & 1));
        }
        return ~c;
    }
}

public class ReplayPngTests
{
    private static ReplayResult Sample()
    {
        using var reader = TraceLineReader.Open(Fixtures.SampleTrace);
        using var replayer = new TraceReplayer(new TraceReplayOptions { Cpus = 2, RecordTimeline = true, TimelinePoints = 64, Caches = new("^(dentry|shmem_inode_cache|filp)$") });
        return replayer.Run(reader);
    }

    [Fact]
    public void Crc32MatchesTheStandardCheckValue()
    {
        Assert.Equal(0xCBF43926u, Crc32.Compute("123456789"u8));
        Assert.Equal(0u, Crc32.Compute([]));
        var bytes = Enumerable.Range(0, 1000).Select(i => (byte)(i * 7 + 3)).ToArray();
        Assert.Equal(PngFile.BitwiseCrc32(bytes), Crc32.Compute(bytes));
    }

    [Fact]
    public void EncoderRoundTripsPixels()
    {
        var rgb = new byte[3 * 2 * 3];
        for (int i = 0; i < rgb.Length; i++) rgb[i] = (byte)(i * 13);
        var png = PngFile.Read(PngWriter.Encode(3, 2, rgb));
        Assert.Equal((3, 2), (png.Width, png.Height));
        Assert.Equal((rgb[15], rgb[16], rgb[17]), png.Pixel(2, 1));
        Assert.Throws<ArgumentException>(() => PngWriter.Encode(3, 2, new byte[5]));
    }

    [Fact]
    public void PngIsTheSameChartAsTheSvg()
    {
        var chart = ReplayChart.Build(Sample());
        var png = PngFile.Read(ReplayPlot.Png(chart));
        Assert.Equal((chart.Width, chart.Height), (png.Width, png.Height));
        var svg = System.Xml.Linq.XDocument.Parse(ReplayPlot.Svg(chart)).Root!;
        Assert.Equal(chart.Width.ToString(), svg.Attribute("width")!.Value);
        Assert.Equal(chart.Height.ToString(), svg.Attribute("height")!.Value);
        Assert.Equal(chart.Series.Count, svg.Elements().Count(e => e.Name.LocalName == "polyline"));

        // Every series leaves its colour at (most of) its own vertices; the held line is drawn first, so the
        // needed line may cover it where the two coincide, but not everywhere on a cache defrag can shrink.
        var held = Raster.Parse(ReplayChart.HeldColour);
        var needed = Raster.Parse(ReplayChart.NeededColour);
        Assert.Contains(chart.Series, s => s.Colour == ReplayChart.HeldColour
            && s.Points.Any(pt => png.Pixel((int)Math.Floor(pt.X), (int)Math.Floor(pt.Y)) == held));
        Assert.Contains(chart.Series, s => s.Colour == ReplayChart.NeededColour
            && s.Points.Any(pt => png.Pixel((int)Math.Floor(pt.X), (int)Math.Floor(pt.Y)) == needed));
        // The defrag dot and the background are where the model says.
        var dot = chart.Dots[0];
        Assert.Equal(Raster.Parse(ReplayChart.DefragColour), png.Pixel((int)dot.X, (int)dot.Y));
        Assert.Equal(((byte)255, (byte)255, (byte)255), png.Pixel(1, png.Height - 1));
    }

    [Fact]
    public void FramesHaveNoHoles()
    {
        var chart = ReplayChart.Build(Sample());
        var png = PngFile.Read(ReplayPlot.Png(chart));
        foreach (var f in chart.Frames)
            for (int x = (int)f.X; x <= (int)(f.X + f.Width); x++)
            {
                // Series and the defrag dot may cross the frame; grid lines and the background must not show through.
                var top = png.Pixel(x, (int)f.Y);
                Assert.True(top != Raster.Parse("#eeeeee") && top != ((byte)255, (byte)255, (byte)255), $"hole in the frame at x={x}");
            }
    }

    [Fact]
    public void TextIsDrawnWhereTheModelPutsIt()
    {
        var chart = ReplayChart.Build(Sample());
        var png = PngFile.Read(ReplayPlot.Png(chart));
        var title = chart.Texts.Single(t => t.Text == "dentry");
        int inked = 0;
        for (int y = (int)title.Y - BitmapFont.GlyphHeight; y < title.Y; y++)
            for (int x = (int)title.X; x < title.X + BitmapFont.Width("dentry", bold: true); x++)
                if (png.Pixel(x, y) == ((byte)0, (byte)0, (byte)0)) inked++;
        Assert.InRange(inked, 20, 6 * 35 * 2);
    }
}
