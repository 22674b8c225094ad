using System.Net.Sockets;
using System.Text;
using Slub.Cli.Slabinfo;

namespace Slub.Tests.Slabinfo;

/// <summary>
/// A minimal server for the live endpoint protocol (LIST / READ / WRITE over a Unix socket), backed by any
/// <see cref="ISlabSource"/>. Errors can be injected per attribute to exercise the client's error handling.
/// </summary>
internal sealed class FakeLiveEndpoint : IDisposable
{
    private readonly ISlabSource _backing;
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    public FakeLiveEndpoint(ISlabSource backing, int pid)
    {
        _backing = backing;
        Pid = pid;
        SocketPath = LiveSlabSource.SocketPathFor(pid);
        File.Delete(SocketPath);
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(SocketPath));
        _listener.Listen(4);
        _loop = Task.Run(AcceptLoop);
    }

    public int Pid { get; }
    public string SocketPath { get; }

    /// <summary>"cache/attr" → "CODE message" answered as ERR instead of the backing data.</summary>
    public Dictionary<string, string> Failures { get; } = new();

    public int Connections;
    public int Requests;

    /// <summary>A pid that no test process has, with no socket left over from an earlier run.</summary>
    public static int UnusedPid() => 4_000_000 + Random.Shared.Next(100_000);

    private async Task AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(_stop.Token);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            Interlocked.Increment(ref Connections);
            _ = Task.Run(() => Serve(client));
        }
    }

    private void Serve(Socket client)
    {
        using var _ = client;
        using var stream = new NetworkStream(client);
        try
        {
            while (ReadLine(stream) is { } line)
            {
                Interlocked.Increment(ref Requests);
                var reply = Handle(line, stream);
                stream.Write(reply);
            }
        }
        catch (IOException)
        {
        }
    }

    private byte[] Handle(string line, Stream stream)
    {
        if (line == "LIST")
        {
            var sb = new StringBuilder();
            foreach (var e in _backing.ListEntries())
                sb.Append(e.Kind == SlabEntryKind.Alias ? $"l {e.Name} {e.Target}\n" : $"d {e.Name}\n");
            return Ok(sb.ToString());
        }
        if (line.StartsWith("READ ", StringComparison.Ordinal))
        {
            var path = line[5..];
            if (Failures.TryGetValue(path, out var failure))
                return Encoding.UTF8.GetBytes($"ERR {failure}\n");
            var slash = path.IndexOf('/');
            var text = _backing.ReadAttribute(path[..slash], path[(slash + 1)..]);
            return text is null ? Encoding.UTF8.GetBytes($"ERR ENOENT no such attribute {path}\n") : Ok(text);
        }
        if (line.StartsWith("WRITE ", StringComparison.Ordinal))
        {
            var parts = line.Split(' ');
            var payload = new byte[int.Parse(parts[2])];
            stream.ReadExactly(payload);
            var slash = parts[1].IndexOf('/');
            if (Failures.TryGetValue(parts[1], out var failure))
                return Encoding.UTF8.GetBytes($"ERR {failure}\n");
            try
            {
                _backing.WriteAttribute(parts[1][..slash], parts[1][(slash + 1)..], Encoding.UTF8.GetString(payload));
                return Encoding.UTF8.GetBytes("OK 0\n");
            }
            catch (SlabSourceException e)
            {
                return Encoding.UTF8.GetBytes($"ERR {e.Code} {e.Message}\n");
            }
        }
        return Encoding.UTF8.GetBytes("ERR EINVAL unknown request\n");
    }

    private static byte[] Ok(string body)
    {
        var bytes = Encoding.UTF8.GetBytes(body);
        return [.. Encoding.UTF8.GetBytes($"OK {bytes.Length}\n"), .. bytes];
    }

    private static string? ReadLine(Stream stream)
    {
        var bytes = new List<byte>();
        while (true)
        {
            var b = stream.ReadByte();
            if (b < 0)
                return null;
            if (b == '\n')
                return Encoding.UTF8.GetString(bytes.ToArray());
            bytes.Add((byte)b);
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Dispose();
        try { _loop.Wait(TimeSpan.FromSeconds(5)); } catch (AggregateException) { }
        File.Delete(SocketPath);
    }
}
