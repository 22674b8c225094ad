using System.Net.Sockets;
using System.Text;

namespace Slub.Cli.Slabinfo;

/// <summary>
/// The slab tree of a running .NET process that uses Slub.NET, read through its live endpoint: a Unix domain socket
/// at <c>{temp}/slub-{pid}.sock</c> speaking a line protocol (UTF-8, one request per line, several per connection):
/// <list type="bullet">
/// <item><c>LIST</c> → <c>OK n</c> + n bytes of lines <c>d name</c> (cache) or <c>l name target</c> (alias).</item>
/// <item><c>READ cache/attr</c> → <c>OK n</c> + n bytes, or <c>ERR CODE message</c>.</item>
/// <item><c>WRITE cache/attr n</c> + n bytes → <c>OK 0</c> or <c>ERR CODE message</c>.</item>
/// </list>
/// One connection is opened lazily and reused for every request.
/// </summary>
public sealed class LiveSlabSource : ISlabSource, IDisposable
{
    private readonly string _socketPath;
    private Socket? _socket;
    private NetworkStream? _stream;

    public LiveSlabSource(int pid, string? socketPath = null)
    {
        Pid = pid;
        _socketPath = socketPath ?? SocketPathFor(pid);
    }

    /// <summary>The process id this source talks to.</summary>
    public int Pid { get; }

    public string Description => $"process {Pid} ({_socketPath})";

    /// <summary>Where process <paramref name="pid"/> listens.</summary>
    public static string SocketPathFor(int pid) => Path.Combine(Path.GetTempPath(), $"slub-{pid}.sock");

    public IReadOnlyList<SlabEntry> ListEntries()
    {
        var body = Request("LIST\n", null) ?? throw new SlabSourceException("EIO", $"{Description}: LIST was refused");
        var entries = new List<SlabEntry>();
        foreach (var line in body.Split('\n'))
        {
            if (line.Length == 0)
                continue;
            if (line.StartsWith("d ", StringComparison.Ordinal))
                entries.Add(new SlabEntry(line[2..], SlabEntryKind.Cache));
            else if (line.StartsWith("l ", StringComparison.Ordinal) && line.IndexOf(' ', 2) is var sp and > 2)
                entries.Add(new SlabEntry(line[2..sp], SlabEntryKind.Alias, line[(sp + 1)..]));
            else
                throw new SlabSourceException("EIO", $"{Description}: malformed LIST line '{line}'");
        }
        return entries;
    }

    public string? ReadAttribute(string cache, string attribute)
    {
        CheckPath(cache, attribute);
        return Request($"READ {cache}/{attribute}\n", null);
    }

    public void WriteAttribute(string cache, string attribute, string text)
    {
        CheckPath(cache, attribute);
        var payload = Encoding.UTF8.GetBytes(text);
        if (Request($"WRITE {cache}/{attribute} {payload.Length}\n", payload) is null)
            throw new SlabSourceException("ENOENT", $"{Description}: no attribute {cache}/{attribute}");
    }

    private static void CheckPath(string cache, string attribute)
    {
        if (cache.Contains('\n') || cache.Contains(' ') || attribute.Contains('\n') || attribute.Contains(' '))
            throw new SlabSourceException("EINVAL", $"invalid attribute path '{cache}/{attribute}'");
    }

    // Sends one request; returns the OK body, null for ERR ENOENT, and throws for any other error.
    private string? Request(string header, byte[]? payload)
    {
        var stream = Connect();
        try
        {
            stream.Write(Encoding.UTF8.GetBytes(header));
            if (payload is not null)
                stream.Write(payload);
            stream.Flush();
            var status = ReadLine(stream);
            if (status.StartsWith("OK ", StringComparison.Ordinal) && int.TryParse(status.AsSpan(3), out var n) && n >= 0)
            {
                var buffer = new byte[n];
                stream.ReadExactly(buffer);
                return Encoding.UTF8.GetString(buffer);
            }
            if (status.StartsWith("ERR ", StringComparison.Ordinal))
            {
                var rest = status[4..];
                var space = rest.IndexOf(' ');
                var code = space < 0 ? rest : rest[..space];
                var message = space < 0 ? code : rest[(space + 1)..];
                if (code == "ENOENT")
                    return null;
                // EPERM/EACCES stand for a file this peer may not open for writing; any other refusal of a WRITE
                // is the attribute refusing the value, which the C tool only sees at its unchecked fclose().
                throw new SlabSourceException(code, $"{Description}: {header.Split('\n')[0]}: {code} {message}")
                {
                    ValueRefused = payload is not null && code is not ("EPERM" or "EACCES"),
                };
            }
            throw new SlabSourceException("EIO", $"{Description}: unexpected reply '{status}'");
        }
        catch (Exception e) when (e is IOException or SocketException or EndOfStreamException)
        {
            Dispose();
            throw new SlabSourceException("EIO", $"{Description}: connection failed: {e.Message}", e);
        }
    }

    private NetworkStream Connect()
    {
        if (_stream is not null)
            return _stream;
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(_socketPath));
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new SlabSourceException("ENOENT",
                $"cannot connect to process {Pid}: no live endpoint at {_socketPath} ({e.Message})", e);
        }
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: false);
        return _stream;
    }

    // Reads one status line byte by byte, so nothing after the newline is consumed.
    private static string ReadLine(Stream stream)
    {
        var bytes = new List<byte>();
        while (true)
        {
            var b = stream.ReadByte();
            if (b < 0)
                throw new EndOfStreamException("the endpoint closed the connection");
            if (b == '\n')
                return Encoding.UTF8.GetString(bytes.ToArray());
            bytes.Add((byte)b);
        }
    }

    public void Dispose()
    {
        _stream?.Dispose();
        _socket?.Dispose();
        _stream = null;
        _socket = null;
    }
}
