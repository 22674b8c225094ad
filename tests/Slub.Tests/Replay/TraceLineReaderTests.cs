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
