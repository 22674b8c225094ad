using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace Slub.Cli.Replay;

/// <summary>
/// A minimal PNG encoder: 8-bit truecolour (RGB), no interlace, filter type 0 (None) on every scanline, one IDAT
/// chunk compressed with zlib. Enough for a chart of flat colours, which deflate squeezes well without filters.
/// </summary>
internal static class PngWriter
{
    public static ReadOnlySpan<byte> Signature => [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>Encodes <paramref name="rgb"/> (row-major, 3 bytes a pixel, no padding) as a PNG file.</summary>
    public static byte[] Encode(int width, int height, ReadOnlySpan<byte> rgb)
    {
        if (width <= 0 || height <= 0) throw new ArgumentOutOfRangeException(nameof(width), "a PNG needs at least one pixel");
        if (rgb.Length != checked(width * height * 3)) throw new ArgumentException($"expected {width}x{height}x3 bytes, got {rgb.Length}", nameof(rgb));

        var file = new MemoryStream();
        file.Write(Signature);

        Span<byte> ihdr = stackalloc byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr[4..], height);
        ihdr[8] = 8;   // bit depth
        ihdr[9] = 2;   // colour type: truecolour
        ihdr[10] = 0;  // compression: deflate
        ihdr[11] = 0;  // filter method: adaptive (we use type 0 on every row)
        ihdr[12] = 0;  // no interlace
        WriteChunk(file, "IHDR", ihdr);

        var idat = new MemoryStream();
        using (var z = new ZLibStream(idat, CompressionLevel.Optimal, leaveOpen: true))
        {
            int stride = width * 3;
            for (int y = 0; y < height; y++)
            {
                z.WriteByte(0);
                z.Write(rgb.Slice(y * stride, stride));
            }
        }
        WriteChunk(file, "IDAT", idat.GetBuffer().AsSpan(0, (int)idat.Length));
        WriteChunk(file, "IEND", []);
        return file.ToArray();
    }

    private static void WriteChunk(Stream s, string type, ReadOnlySpan<byte> data)
    {
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(word, data.Length);
        s.Write(word);
        Span<byte> typeBytes = stackalloc byte[4];
        Encoding.ASCII.GetBytes(type, typeBytes);
        s.Write(typeBytes);
        s.Write(data);
        // The CRC covers the chunk type and data, not the length.
        uint crc = Crc32.Update(Crc32.Update(Crc32.Initial, typeBytes), data) ^ Crc32.Initial;
        BinaryPrimitives.WriteUInt32BigEndian(word, crc);
        s.Write(word);
    }
}

/// <summary>CRC-32 as PNG and zlib's <c>crc32()</c> define it: reflected polynomial 0xEDB88320, start and final XOR 0xFFFFFFFF.</summary>
internal static class Crc32
{
    public const uint Initial = 0xFFFF_FFFF;
    private static readonly uint[] Table = BuildTable();

    private static uint[] BuildTable()
    {
        var t = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1;
            t[n] = c;
        }
        return t;
    }

    /// <summary>Feeds <paramref name="data"/> into a running register (start with <see cref="Initial"/>, XOR with it at the end).</summary>
    public static uint Update(uint crc, ReadOnlySpan<byte> data)
    {
        foreach (byte b in data) crc = Table[(crc ^ b) & 0xFF] ^ (crc >> 8);
        return crc;
    }

    public static uint Compute(ReadOnlySpan<byte> data) => Update(Initial, data) ^ Initial;
}
