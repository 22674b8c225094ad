using System.IO.Compression;

namespace Slub.Trace;

/// <summary>
/// Reads a trace line by line as UTF-8 bytes: plain text or gzip (recognised by its magic bytes, so a
/// compressed standard input works too), from a file or from standard input ("-").
/// </summary>
/// <remarks>Lines are handed out as spans into an internal buffer, valid until the next call. Not thread-safe.</remarks>
public sealed class TraceLineReader : IDisposable
{
    private const int BlockSize = 1 << 20;
    private readonly CountingStream _raw;
    private readonly Stream _text;
    private readonly GzipEndCheck? _gzipEnd;
    private byte[] _buffer = new byte[BlockSize];
    private int _start, _end;
    private bool _eof;

    /// <summary>The name used in error messages ("-" for standard input).</summary>
    public string FileName { get; }

    /// <summary>Number of the line last returned (1-based).</summary>
    public long LineNumber { get; private set; }

    /// <summary>True if the input is gzip-compressed.</summary>
    public bool IsCompressed { get; }

    /// <summary>Bytes of the input (compressed, if it is) read so far; with <see cref="Length"/> for progress.</summary>
    public long Position => _raw.BytesRead;

    /// <summary>Size of the input in bytes, or null when unknown (a pipe).</summary>
    public long? Length { get; }

    /// <summary>Opens a file, or standard input for "-".</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="IOException">The path is a directory.</exception>
    public static TraceLineReader Open(string path)
    {
        if (path == "-") return new TraceLineReader(Console.OpenStandardInput(), "-");
        if (Directory.Exists(path)) throw new IOException($"{path} is a directory, not a trace file");
        if (!File.Exists(path)) throw new FileNotFoundException($"trace file not found: {path}", path);
        var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        return new TraceLineReader(fs, path);
    }

    /// <summary>Reads from <paramref name="input"/> (plain or gzip); disposes it with the reader.</summary>
    public TraceLineReader(Stream input, string fileName)
    {
        FileName = fileName;
        try { Length = input.CanSeek ? input.Length - input.Position : null; }
        catch (NotSupportedException) { Length = null; }
        _raw = new CountingStream(input);
        Span<byte> magic = stackalloc byte[2];
        int got = 0;
        while (got < 2)
        {
            int n = _raw.Read(magic[got..]);
            if (n == 0) break;
            got += n;
        }
        _raw.Unread(magic[..got]);
        IsCompressed = got == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
        _text = IsCompressed ? new GZipStream(_raw, CompressionMode.Decompress) : _raw;
        if (IsCompressed) _gzipEnd = new GzipEndCheck();
    }

    /// <summary>The next line without its line ending; false at the end of the input.</summary>
    /// <exception cref="InvalidDataException">The gzip data is damaged or truncated; the message starts with <see cref="FileName"/>.</exception>
    public bool TryReadLine(out ReadOnlySpan<byte> line)
    {
        while (true)
        {
            int nl = _buffer.AsSpan(_start, _end - _start).IndexOf((byte)'\n');
            if (nl >= 0)
            {
                line = _buffer.AsSpan(_start, nl);
                _start += nl + 1;
                LineNumber++;
                return true;
            }
            if (_eof)
            {
                if (_start == _end) { line = default; return false; }
                line = _buffer.AsSpan(_start, _end - _start);   // last line without a newline
                _start = _end;
                LineNumber++;
                return true;
            }
            Fill();
        }
    }

    private void Fill()
    {
        if (_start > 0)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }
        if (_end == _buffer.Length) Array.Resize(ref _buffer, _buffer.Length * 2);   // a line longer than the buffer
        int n;
        try
        {
            n = _text.Read(_buffer, _end, _buffer.Length - _end);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{FileName}: damaged gzip data after line {LineNumber}: {e.Message}", e);
        }
        _gzipEnd?.Decompressed(n);
        if (n == 0)
        {
            if (_gzipEnd is not null && !_gzipEnd.EndsAMember(_raw.InnerBytes, _raw.LastFour))
                throw new InvalidDataException(
                    $"{FileName}: the gzip data is truncated (it ends without a gzip trailer) after line {LineNumber}; the file is incomplete");
            _eof = true;
        }
        else _end += n;
    }

    /// <summary>Closes the reader and its input stream (for <see cref="Open"/>, the file or standard input).</summary>
    public void Dispose()
    {
        _text.Dispose();
        _raw.Dispose();
    }

    /// <summary>A read-only pass-through that counts bytes and can give back a few peeked bytes.</summary>
    private sealed class CountingStream(Stream inner) : Stream
    {
        private byte[] _pushed = [];
        private int _pushedAt;
        public long BytesRead;
        /// <summary>Bytes taken from the inner stream, and the last four of them (little-endian): the gzip ISIZE at the end.</summary>
        public long InnerBytes;
        public uint LastFour;

        public void Unread(ReadOnlySpan<byte> bytes)
        {
            _pushed = bytes.ToArray();
            _pushedAt = 0;
            BytesRead -= bytes.Length;
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            int n;
            if (_pushedAt < _pushed.Length)
            {
                n = Math.Min(buffer.Length, _pushed.Length - _pushedAt);
                _pushed.AsSpan(_pushedAt, n).CopyTo(buffer);
                _pushedAt += n;
            }
            else
            {
                n = inner.Read(buffer);
                InnerBytes += n;
                foreach (byte b in buffer[Math.Max(0, n - 4)..n]) LastFour = LastFour >> 8 | (uint)b << 24;
            }
            BytesRead += n;
            return n;
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => BytesRead; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }
    }
}
