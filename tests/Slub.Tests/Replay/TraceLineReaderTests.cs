using System.IO.Compression;
using System.Text;
using Slub.Trace;

namespace Slub.Tests.Replay;

public class TraceLineReaderTests
{
    /// <summary>A non-seekable stream, like a pipe on standard input.</summary>
    private sealed class PipeStream(byte[] data) : Stream
    {
        private readonly MemoryStream _inner = new(data);
        public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, Math.Min(count, 7));   // short reads
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    private static List<string> ReadAll(TraceLineReader r)
    {
        var lines = new List<string>();
        while (r.TryReadLine(out var line)) lines.Add(Encoding.UTF8.GetString(line));
        return lines;
    }

    private static byte[] Gzip(string text)
    {
        var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true)) gz.Write(Encoding.UTF8.GetBytes(text));
        return ms.ToArray();
    }

    [Fact]
    public void PlainTextFromAPipe_LastLineWithoutNewline()
    {
        using var r = new TraceLineReader(new PipeStream(Encoding.UTF8.GetBytes("one\ntwo\r\n\nthree")), "-");
        Assert.False(r.IsCompressed);
        Assert.Null(r.Length);
        Assert.Equal(["one", "two\r", "", "three"], ReadAll(r));
        Assert.Equal(4, r.LineNumber);
    }

    [Fact]
    public void GzipIsRecognisedByItsMagicBytes_EvenOnAPipe()
    {
        using var r = new TraceLineReader(new PipeStream(Gzip("a\nb\n")), "-");
        Assert.True(r.IsCompressed);
        Assert.Equal(["a", "b"], ReadAll(r));
    }

    private static string Lines(int n, string tag) =>
        string.Concat(Enumerable.Range(0, n).Select(i => $"{tag} line {i} of a trace that gzip has to work on a little\n"));

    [Theory]
    [InlineData(8)]      // the trailer (CRC and length) is missing: cut at a line end
    [InlineData(300)]    // cut inside the compressed data
    public void TruncatedGzipIsAnErrorNamingTheFile(int cut)
    {
        // GZipStream itself reports the end of a cut-off stream as a normal end of data; a replay would then
        // report on part of the trace (or fail on the cut-off last line with a misleading reason).
        byte[] whole = Gzip(Lines(2000, "x"));
        foreach (var input in new Stream[] { new MemoryStream(whole[..^cut]), new PipeStream(whole[..^cut]) })
        {
            using var r = new TraceLineReader(input, "cut.trace.gz");
            var e = Assert.Throws<InvalidDataException>(() => ReadAll(r));
            Assert.StartsWith("cut.trace.gz: ", e.Message);
            Assert.Contains("truncated", e.Message);
        }
    }

    [Fact]
    public void OnlyAGzipHeaderIsTruncatedToo()
    {
        using var r = new TraceLineReader(new MemoryStream(Gzip("a\n")[..10]), "hdr.gz");
        Assert.Throws<InvalidDataException>(() => ReadAll(r));
    }

    [Fact]
    public void ConcatenatedGzipMembersAreOneTrace()
    {
        // cat part1.gz part2.gz > all.gz is a valid gzip file.
        byte[] both = [.. Gzip(Lines(3000, "a")), .. Gzip(Lines(5, "b")), .. Gzip("")];
        foreach (var input in new Stream[] { new MemoryStream(both), new PipeStream(both) })
        {
            using var r = new TraceLineReader(input, "two.gz");
            var lines = ReadAll(r);
            Assert.Equal(3005, lines.Count);
            Assert.Equal("b line 4 of a trace that gzip has to work on a little", lines[^1]);
        }
    }

    [Fact]
    public void LinesLongerThanTheBuffer()
    {
        string longLine = new('x', 3 << 20);
        using var r = new TraceLineReader(new MemoryStream(Encoding.UTF8.GetBytes("short\n" + longLine + "\nend\n")), "mem");
        var lines = ReadAll(r);
        Assert.Equal(3, lines.Count);
        Assert.Equal(longLine.Length, lines[1].Length);
    }

    [Fact]
    public void SampleFileProgress()
    {
        using var r = TraceLineReader.Open(Fixtures.SampleTrace);
        Assert.True(r.IsCompressed);
        Assert.Equal(new FileInfo(Fixtures.SampleTrace).Length, r.Length);
        while (r.TryReadLine(out _)) { }
        Assert.Equal(r.Length, r.Position);
        Assert.Equal(202_337, r.LineNumber);
    }

    [Fact]
    public void MissingFileIsAClearError()
    {
        var e = Assert.Throws<FileNotFoundException>(() => TraceLineReader.Open("/nonexistent/x.trace"));
        Assert.Contains("/nonexistent/x.trace", e.Message);
    }
}
