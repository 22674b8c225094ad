namespace Slub.Trace;

/// <summary>
/// Tells a gzip stream that ended from one that was cut off. <see cref="System.IO.Compression.GZipStream"/> reports
/// both as a plain end of data, so a truncated capture (a killed <c>gzip</c>, a partial copy) would be replayed as if
/// it were the whole trace. Every gzip member ends with the length of its data (ISIZE, mod 2^32); the last 4 bytes of
/// the input must be the length of the data since some member start. Members start at 0 and, because GZipStream
/// returns at the end of each member, at a boundary between two reads of decompressed data; a cut-off stream's last
/// bytes are compressed data that matches such a length only by chance (about one in 2^32 per boundary). A complete
/// member with wrong contents is zlib's own CRC check's business.
/// </summary>
internal sealed class GzipEndCheck
{
    // The smallest gzip member: 10 header bytes, an empty deflate block, 8 trailer bytes.
    private const int MinMemberBytes = 18;

    private readonly List<long> _readEnds = new();
    private long _output;

    /// <summary>Records one read of decompressed data of <paramref name="bytes"/> bytes (0 is ignored).</summary>
    public void Decompressed(int bytes)
    {
        if (bytes <= 0) return;
        _output += bytes;
        _readEnds.Add(_output);
    }

    /// <summary>True if <paramref name="rawBytes"/> bytes of input ending in <paramref name="lastFour"/> (little-endian ISIZE) end a gzip member.</summary>
    public bool EndsAMember(long rawBytes, uint lastFour)
    {
        if (rawBytes < MinMemberBytes) return false;
        if ((uint)_output == lastFour) return true;   // a single member, the usual case
        foreach (long start in _readEnds)
            if ((uint)(_output - start) == lastFour) return true;
        return false;
    }
}
